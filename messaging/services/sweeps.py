"""Re-driving work whose task never ran: the row is the truth, the queue only a trigger."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from messaging import queue, selectors
from messaging.models import Message, StatusUpdate, WebhookEvent
from messaging.services.inbound import orphan_statuses_apply

logger = logging.getLogger(__name__)

BATCH = 1000

# Meta retries a webhook for up to 7 days: a status for a wamid still unknown after that is
# for a message Sara never sent (another app on the number, a fuzzer) and will never apply.
STATUS_RETRY_HORIZON = timedelta(days=7)


def unknown_statuses_purge(*, older_than: datetime) -> int:
    """Delete kept statuses for unknown wamids older than Meta's retry horizon, a batch at a time."""
    ids = list(
        StatusUpdate.objects.filter(created_at__lt=older_than).values_list("pk", flat=True)[: BATCH * 10]
    )
    if not ids:
        return 0
    deleted, _ = StatusUpdate.objects.filter(pk__in=ids).delete()
    return deleted


def sweep_stuck() -> dict[str, int]:
    """Queue again what is stuck. Safe to run twice at once: every task claims its row first."""
    now = timezone.now()
    inbound_ids = list(
        selectors.inbound_unprocessed(now=now).order_by("created_at").values_list("pk", flat=True)[:BATCH]
    )
    for message_id in inbound_ids:
        queue.process_inbound(message_id)

    due = selectors.outbound_due(now=now).order_by("created_at")
    unknown_outcome = list(due.filter(selectors.claim_expired(now=now)).values_list("pk", flat=True)[:BATCH])
    if unknown_outcome:
        # Sent once more on purpose: a possible duplicate beats silence in a sale (SPEC §6).
        Message.objects.filter(pk__in=unknown_outcome).update(possible_duplicate=True)
        logger.warning("re-sending sends of unknown outcome", extra={"count": len(unknown_outcome)})
    outbound_ids = list(due.values_list("pk", flat=True)[:BATCH])
    for message_id in outbound_ids:
        queue.send_message(message_id)

    event_ids = list(selectors.whatsapp_events_unprocessed(now=now).values_list("pk", flat=True)[:BATCH])
    for event_id in event_ids:
        queue.fan_out_event(event_id)

    statuses = orphan_statuses_apply(older_than=now)
    purged = unknown_statuses_purge(older_than=now - STATUS_RETRY_HORIZON)
    counts = {
        "inbound": len(inbound_ids),
        "outbound": len(outbound_ids),
        "events": len(event_ids),
        "statuses": statuses,
        "statuses_purged": purged,
    }
    if any(counts.values()):
        logger.info("stuck work re-driven", extra=counts)
    return counts


PURGED = {"purged": True}


def raw_payloads_purge(*, now: datetime) -> dict[str, int]:
    """Drop raw webhook payloads older than SARA_RAW_RETENTION_DAYS (SPEC §14), a batch at a time.

    The event rows stay (their ids dedup a platform's retry, their outcome shows on the Sources
    page); only the payload goes. An event still to be acted on (a batch not fanned out, a
    payment waiting for its cart, an order to fetch) keeps its payload until it is processed.
    Inbound messages lose the copy of Meta's message they kept beside their text.
    """
    cutoff = now - timedelta(days=settings.SARA_RAW_RETENTION_DAYS)
    events = 0
    while True:
        ids = list(
            WebhookEvent.objects.filter(created_at__lt=cutoff, processed=True)
            .exclude(payload=PURGED)
            .values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            break
        events += WebhookEvent.objects.filter(pk__in=ids).update(payload=PURGED)
    messages = 0
    while True:
        batch = list(
            Message.objects.filter(created_at__lt=cutoff, direction=Message.Direction.IN)
            .exclude(status=Message.Status.RECEIVED)
            .filter(metadata__has_key="whatsapp")
            .only("pk", "metadata")[:BATCH]
        )
        if not batch:
            break
        for message in batch:
            message.metadata.pop("whatsapp", None)
        messages += Message.objects.bulk_update(batch, ["metadata"])
    if events or messages:
        logger.info("raw payloads purged", extra={"events": events, "messages": messages})
    return {"events": events, "messages": messages}
