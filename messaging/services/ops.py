"""Ops' hand on stuck work: re-drive the rows they picked in the admin, the way the sweep would."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.db import transaction
from django.db.models import QuerySet

from compliance.gate import Reason
from messaging import handlers, queue, selectors, statuses
from messaging.models import Message
from messaging.retry_advice import retry_advice

logger = logging.getLogger(__name__)


@dataclass
class Redrive:
    inbound: list[int] = field(default_factory=list)  # queued for processing
    outbound: list[int] = field(default_factory=list)  # queued for sending
    events: list[int] = field(default_factory=list)  # raw Meta batches queued for fan-out
    not_stuck: list[int] = field(default_factory=list)  # picked, but not stuck: left alone


def stuck_messages_redrive(*, message_ids: Iterable[int], now: datetime) -> Redrive:
    """Queue again the picked messages that are stuck; anything else (processed, sent) is left alone.

    Only rows the sweep's selectors call stuck are queued, so a re-drive never sends a message
    twice or reprocesses one; the tasks claim their row before acting anyway.
    """
    ids = set(message_ids)
    result = Redrive(
        inbound=sorted(
            selectors.inbound_unprocessed(now=now).filter(pk__in=ids).values_list("pk", flat=True)
        ),
        outbound=sorted(selectors.outbound_due(now=now).filter(pk__in=ids).values_list("pk", flat=True)),
    )
    result.not_stuck = sorted(ids - set(result.inbound) - set(result.outbound))
    unknown_outcome = selectors.outbound_due(now=now).filter(selectors.claim_expired(now=now), pk__in=ids)
    # As in the sweep: a send whose worker died mid-send goes once more, flagged (SPEC §6).
    unknown_outcome.update(possible_duplicate=True)
    for message_id in result.inbound:
        transaction.on_commit(partial(queue.process_inbound, message_id), robust=True)
    for message_id in result.outbound:
        transaction.on_commit(partial(queue.send_message, message_id), robust=True)
    logger.info(
        "stuck work re-driven by hand",
        extra={"inbound": len(result.inbound), "outbound": len(result.outbound)},
    )
    return result


def stuck_events_redrive(*, event_ids: Iterable[int], now: datetime) -> Redrive:
    """Queue again the fan-out of picked Meta batches that were stored but never fanned out."""
    ids = set(event_ids)
    result = Redrive(
        events=sorted(
            selectors.whatsapp_events_unprocessed(now=now).filter(pk__in=ids).values_list("pk", flat=True)
        )
    )
    result.not_stuck = sorted(ids - set(result.events))
    for event_id in result.events:
        transaction.on_commit(partial(queue.fan_out_event, event_id), robust=True)
    logger.info("stuck events re-driven by hand", extra={"events": len(result.events)})
    return result


def failed_sends_dismiss(*, message_ids: Iterable[int], now: datetime) -> list[int]:
    """Take the picked failed sends off ops' list; the message itself stays as it was (failed).

    Returns the ids dismissed now; others (not failed, or dismissed before) are left alone.
    """
    ids = sorted(selectors.failed_sends().filter(pk__in=set(message_ids)).values_list("pk", flat=True))
    Message.objects.filter(pk__in=ids, dismissed_at__isnull=True).update(dismissed_at=now)
    logger.info("failed sends dismissed", extra={"message_ids": ids})
    return ids


@dataclass
class Retry:
    queued: list[int] = field(default_factory=list)  # failed sends back to pending, queued
    accepted: list[int] = field(default_factory=list)  # Meta accepted them once: never sent again
    not_failed: list[int] = field(default_factory=list)  # pending, or inbound: left alone
    # Failed sends a retry cannot help (opted out, window closed, undeliverable...), with why.
    no_help: list[tuple[int, str]] = field(default_factory=list)


def failed_sends_retry(*, message_ids: Iterable[int]) -> Retry:
    """Put the picked failed sends back in the queue, to go out through the same claim and gate
    as any send, in a worker: nothing here waits for a send slot or for Graph.

    A message Meta already accepted (it has a wamid) is never sent again, whatever its status,
    and a failed send whose advice says a retry cannot help is left failed: retrying an opt-out
    or an undeliverable number only fails again (and a template costs money each time).
    """
    ids = set(message_ids)
    result = Retry()
    with transaction.atomic():
        picked = Message.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk")
        for message in picked:
            if message.direction != Message.Direction.OUT:
                continue
            if message.whatsapp_message_id is not None:
                result.accepted.append(message.pk)
            elif message.status == Message.Status.FAILED:
                advice = retry_advice(message, customer_wrote_at=_customer_wrote_at(message))
                if advice.helps:
                    result.queued.append(message.pk)
                else:
                    result.no_help.append((message.pk, advice.why))
        handled = {*result.queued, *result.accepted, *(pk for pk, _ in result.no_help)}
        result.not_failed = sorted(ids - handled)
        statuses.failed_requeue(result.queued)
        for message_id in result.queued:
            transaction.on_commit(partial(queue.send_message, message_id), robust=True)
    logger.info("failed sends retried by hand", extra={"message_ids": result.queued})
    return result


def _customer_wrote_at(message: Message) -> datetime | None:
    """When the customer last wrote, as the send path reads it (the recovery's to tell): only a
    closed window's advice asks, to tell "never wrote" from "wrote long ago"."""
    if message.error_code != Reason.WINDOW_CLOSED:
        return None
    loaded = handlers.outbound_load(message_id=message.pk)
    return loaded[1].last_user_message_at if loaded is not None else None


def deferred_sends() -> QuerySet[Message]:
    """Proactive messages waiting out quiet hours (first templates, follow-ups)."""
    return Message.objects.filter(
        direction=Message.Direction.OUT,
        status=Message.Status.PENDING,
        whatsapp_message_id__isnull=True,
        purpose__in=Message.PROACTIVE_PURPOSES,
        send_after__isnull=False,
        error_code="quiet_hours",
    )


def deferred_sends_now(*, message_ids: Iterable[int]) -> dict[str, int]:
    """Send deferred proactive messages now, quiet hours waived for them alone (a person decided).

    Every other check of the gate still runs: an opted-out customer or a closed conversation
    gets nothing. The waiver is recorded on the message (metadata `quiet_hours_waived`).
    """
    from messaging.services import outbound

    outcomes: dict[str, int] = {}
    for message in deferred_sends().filter(pk__in=list(message_ids)):
        message.metadata = {**message.metadata, "quiet_hours_waived": True}
        Message.objects.filter(pk=message.pk, status=Message.Status.PENDING).update(
            metadata=message.metadata, send_after=None, error_code=""
        )
        outcome = str(outbound.send_message(message_id=message.pk))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    logger.info("deferred sends sent now", extra=outcomes)
    return outcomes
