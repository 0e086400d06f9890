"""Storing what Meta's webhook delivers: inbound messages once each, statuses forward-only."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from messaging.models import Message, StatusUpdate, WebhookEvent
from messaging.whatsapp.events import InboundEvent, Parsed, StatusEvent, parse

logger = logging.getLogger(__name__)

# Which current statuses each incoming status may replace (SPEC §4.3): sent < delivered < read;
# failed only over pending and sent; delivered or read prove delivery and override failed.
FORWARD_FROM: dict[str, tuple[str, ...]] = {
    "sent": ("pending",),
    "delivered": ("pending", "sent", "failed"),
    "read": ("pending", "sent", "delivered", "failed"),
    "failed": ("pending", "sent"),
}
RANK = {"sent": 1, "failed": 2, "delivered": 3, "read": 4}


def whatsapp_webhook_receive(*, payload: Any) -> None:
    """Durably store a signed Meta body before it is answered; processing follows on commit."""
    parsed = parse(payload)
    if parsed.errors and not parsed.size:
        WebhookEvent.objects.create(
            type=WebhookEvent.Type.WHATSAPP,
            # Wrapped: a JSON null would be stored as SQL NULL, which the column refuses.
            payload=payload if isinstance(payload, dict) else {"raw": payload},
            processed=True,
            error="; ".join(parsed.errors)[:2000],
        )
        logger.warning("unusable whatsapp webhook stored", extra={"errors": parsed.errors[:5]})
        return
    if parsed.size > settings.SARA_INLINE_BATCH_LIMIT:
        # A large batch is one INSERT now; a task fans it out (the sweep re-drives it if lost).
        with transaction.atomic():
            event = WebhookEvent.objects.create(type=WebhookEvent.Type.WHATSAPP, payload=payload)
            transaction.on_commit(lambda: _queue_event(event.pk), robust=True)
        return
    with transaction.atomic():
        store_parsed(parsed)
        if parsed.errors:
            WebhookEvent.objects.create(
                type=WebhookEvent.Type.WHATSAPP,
                payload=payload,
                processed=True,
                error="; ".join(parsed.errors)[:2000],
            )


def whatsapp_event_fan_out(*, event_id: int) -> None:
    """Store the messages and statuses of a large batch kept raw by the webhook."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(pk=event_id, processed=False).first()
        if event is None:
            return
        parsed = parse(event.payload)
        store_parsed(parsed)
        event.processed = True
        event.error = "; ".join(parsed.errors)[:2000]
        event.save(update_fields=["processed", "error"])


def store_parsed(parsed: Parsed) -> list[int]:
    """Insert new inbound messages, apply statuses; queue processing of the new messages on commit."""
    new_ids = [message_id for event in parsed.messages if (message_id := _insert_inbound(event))]
    for status in parsed.statuses:
        status_apply(status)
    if new_ids:
        transaction.on_commit(lambda: _queue_processing(new_ids), robust=True)
    return new_ids


def _insert_inbound(event: InboundEvent) -> int | None:
    """One round trip: INSERT … ON CONFLICT DO NOTHING RETURNING id; a repeat returns None."""
    now = timezone.now()
    metadata = {"whatsapp": event.raw}
    if event.profile_name:
        metadata["profile_name"] = event.profile_name
    sql = (
        "INSERT INTO messaging_message (direction, kind, purpose, wa_id, text, whatsapp_message_id, status, "
        "error_code, error_detail, attempts, intent, sentiment, tokens_used, metadata, "
        "possible_duplicate, whatsapp_timestamp, created_at) "
        "VALUES (%s, %s, '', %s, %s, %s, %s, '', '', 0, '', '', 0, %s, %s, %s, %s) "
        "ON CONFLICT (whatsapp_message_id) DO NOTHING RETURNING id"
    )
    params = [
        Message.Direction.IN,
        event.kind,
        event.wa_id,
        event.text,
        event.wamid,
        Message.Status.RECEIVED,
        json.dumps(metadata),
        False,
        connection.ops.adapt_datetimefield_value(event.timestamp),
        connection.ops.adapt_datetimefield_value(now),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def status_apply(status: StatusEvent) -> bool:
    """Move an outbound message forward; keep a status whose wamid is not known yet."""
    fields: dict[str, Any] = {"status": status.status}
    fields[f"{status.status}_at"] = status.timestamp or timezone.now()
    if status.status == "failed":
        first = status.errors[0] if status.errors else {}
        details = (
            first.get("error_data", {}).get("details") if isinstance(first.get("error_data"), dict) else ""
        )
        fields["error_code"] = str(first.get("code", ""))[:50]
        fields["error_detail"] = " — ".join(
            str(p) for p in (first.get("title") or first.get("message"), details) if p
        )
    updated = Message.objects.filter(
        whatsapp_message_id=status.wamid,
        direction=Message.Direction.OUT,
        status__in=FORWARD_FROM[status.status],
    ).update(**fields)
    if updated:
        return True
    if not Message.objects.filter(whatsapp_message_id=status.wamid).exists():
        # Meta can report a status before the send that got this wamid has committed it.
        StatusUpdate.objects.bulk_create(
            [
                StatusUpdate(
                    whatsapp_message_id=status.wamid,
                    status=status.status,
                    timestamp=status.timestamp,
                    errors=status.errors,
                )
            ],
            ignore_conflicts=True,
        )
    return False


def pending_statuses_apply(*, wamid: str) -> None:
    """Apply statuses that arrived before this wamid was stored, lowest first."""
    pending = sorted(StatusUpdate.objects.filter(whatsapp_message_id=wamid), key=lambda s: RANK[s.status])
    for update in pending:
        status_apply(
            StatusEvent(wamid=wamid, status=update.status, timestamp=update.timestamp, errors=update.errors)
        )
    if pending:
        StatusUpdate.objects.filter(pk__in=[u.pk for u in pending]).delete()


def orphan_statuses_apply(*, older_than: datetime) -> int:
    """Statuses whose wamid appeared after they were kept (a race with the send's commit)."""
    wamids = set(
        StatusUpdate.objects.filter(
            created_at__lt=older_than,
            whatsapp_message_id__in=Message.objects.filter(whatsapp_message_id__isnull=False).values(
                "whatsapp_message_id"
            ),
        ).values_list("whatsapp_message_id", flat=True)
    )
    for wamid in wamids:
        with transaction.atomic():
            pending_statuses_apply(wamid=wamid)
    return len(wamids)


def _queue_processing(message_ids: list[int]) -> None:
    from messaging.tasks import process_inbound

    for message_id in message_ids:
        process_inbound.delay(message_id)


def _queue_event(event_id: int) -> None:
    from messaging.tasks import fan_out_event

    fan_out_event.delay(event_id)
