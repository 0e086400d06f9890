"""Storing what Meta's webhook delivers: inbound messages once each, statuses forward-only."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import metrics
from messaging import pricing, queue, sql, statuses
from messaging.models import Message, StatusUpdate, WebhookEvent
from messaging.services.templates import template_event_apply
from messaging.whatsapp.events import InboundEvent, Parsed, StatusEvent, parse

logger = logging.getLogger(__name__)

RANK = {"sent": 1, "failed": 2, "delivered": 3, "read": 4}


def whatsapp_webhook_receive(*, payload: Any) -> None:
    """Durably store a signed Meta body before it is answered; processing follows on commit."""
    parsed = parse(payload)
    if parsed.meta_errors:
        # Errors about the account or the webhook, not about one message: kept for ops.
        meta_errors_keep(parsed.meta_errors, payload=payload)
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
    if parsed.size <= 1 and not parsed.errors:
        # Meta's usual delivery is a single update: its one statement commits on its own
        # (autocommit), durable before the 200 without the BEGIN and COMMIT round trips of a
        # transaction, and processing is queued right after it (on_commit runs at once here).
        store_parsed(parsed)
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


def meta_errors_keep(errors: list[dict[str, Any]], *, payload: Any) -> None:
    """A change's `value.errors` kept as a processed WebhookEvent whose error says what Meta said."""
    described = "; ".join(
        " ".join(
            str(part) for part in (error.get("code"), error.get("title") or error.get("message")) if part
        )
        for error in errors
    )
    WebhookEvent.objects.create(
        type=WebhookEvent.Type.WHATSAPP,
        payload=payload if isinstance(payload, dict) else {"raw": payload},
        processed=True,
        error=f"Meta reported errors: {described}"[:2000],
    )
    logger.warning("whatsapp webhook carried errors", extra={"errors": described[:500]})


def message_change_record(*, message: Message) -> bool:
    """An edit or a revoke: noted on the customer's original message, which keeps its words.

    The edit's new words are kept beside the original (the transcript shows both); a revoke
    marks the original as deleted by the customer. False when the original is not stored.
    """
    body = (message.metadata.get("whatsapp") or {}).get(message.kind)
    original_wamid = body.get("original_message_id") if isinstance(body, dict) else None
    if not isinstance(original_wamid, str) or not original_wamid:
        return False
    original = (
        Message.objects.select_for_update()
        .filter(whatsapp_message_id=original_wamid, direction=Message.Direction.IN)
        .first()
    )
    if original is None:
        return False
    at = (message.whatsapp_timestamp or timezone.now()).isoformat()
    if message.kind == Message.Kind.EDIT:
        note = {"edited_text": message.text, "edited_at": at, "edited_by": message.pk}
    else:
        note = {"revoked_at": at, "revoked_by": message.pk}
    Message.objects.filter(pk=original.pk).update(metadata={**original.metadata, **note})
    return True


def fan_out_event(*, event_id: int) -> None:
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
    new_ids = _insert_inbound(parsed.messages)
    for status in parsed.statuses:
        status_apply(status)
    for template_event in parsed.templates:
        template_event_apply(template_event)
    if new_ids:
        transaction.on_commit(lambda: _queue_processing(new_ids), robust=True)
    return new_ids


_INSERT_CHUNK = 500  # rows per statement: 4,500 parameters, far below PostgreSQL's and SQLite's limits


def _insert_inbound(events: list[InboundEvent]) -> list[int]:
    """One round trip per 500 messages: INSERT … ON CONFLICT DO NOTHING RETURNING id; repeats return nothing.

    The ids come back sorted, which is the order of the body: a sender's messages are queued in
    the order they were written.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    new_ids: list[int] = []
    for start in range(0, len(events), _INSERT_CHUNK):
        chunk = events[start : start + _INSERT_CHUNK]
        rows: list[list[Any]] = []
        for event in chunk:
            metadata: dict[str, Any] = {"whatsapp": event.raw}
            if event.profile_name:
                metadata["profile_name"] = event.profile_name
            if event.user_id:
                metadata["user_id"] = event.user_id
            if event.username:
                metadata["username"] = event.username
            rows.append(  # sql.INBOUND_GIVEN's order, the status left out (statuses)
                [
                    Message.Direction.IN,
                    event.kind,
                    event.wa_id,
                    event.text,
                    event.wamid,
                    json.dumps(metadata),
                    connection.ops.adapt_datetimefield_value(event.timestamp),
                    now,
                ]
            )
        new_ids += statuses.inbound_stored(rows)
    return new_ids


def status_apply(status: StatusEvent) -> bool:
    """Move an outbound message forward; keep a status whose wamid is not known yet."""
    values: dict[str, Any] = {f"{status.status}_at": status.timestamp or timezone.now()}
    if status.status == Message.Status.FAILED:
        first = status.errors[0] if status.errors else {}
        details = (
            first.get("error_data", {}).get("details") if isinstance(first.get("error_data"), dict) else ""
        )
        values["error_code"] = str(first.get("code", ""))[:50]
        values["error_detail"] = " — ".join(
            str(p) for p in (first.get("title") or first.get("message"), details) if p
        )
    if status.pricing:
        values.update(_pricing_values(status.pricing))
    if _move_forward(status, values):
        return True
    if not sql.wamid_known(status.wamid):
        # Meta can report a status before the send that got this wamid has committed it.
        StatusUpdate.objects.bulk_create(
            [
                StatusUpdate(
                    whatsapp_message_id=status.wamid,
                    status=status.status,
                    timestamp=status.timestamp,
                    errors=status.errors,
                    pricing=status.pricing,
                )
            ],
            ignore_conflicts=True,
        )
    return False


def _pricing_values(pricing: dict[str, Any]) -> dict[str, Any]:
    return {
        "pricing_billable": pricing.get("billable"),
        "pricing_category": pricing.get("category", ""),
        "pricing_model": pricing.get("pricing_model", ""),
        "pricing_type": pricing.get("type", ""),
    }


def _move_forward(status: StatusEvent, values: dict[str, Any]) -> bool:
    """One conditional UPDATE: the outbound message with this wamid, if its status may move."""
    priced = bool(status.pricing)
    rows = statuses.forward(wamid=status.wamid, status=status.status, values=values, priced=priced)
    if isinstance(rows, int):
        return rows > 0
    for delivered_at, billable, category, _model, pricing_type in rows:
        # Delivered, or read with no delivered before it (Meta skips it for an open chat).
        first_delivery = status.status == "delivered" or (status.status == "read" and delivered_at is None)
        if first_delivery and pricing.meta_charged(pricing_billable=billable, pricing_type=pricing_type):
            transaction.on_commit(partial(_count_billed, category))
    return bool(rows)


def _count_billed(category: str) -> None:
    metrics.META_BILLABLE.labels(category).inc()
    metrics.META_COST.labels(category).inc(float(pricing.meta_price_brl(category)))


def pending_statuses_apply(*, wamid: str) -> None:
    """Apply statuses that arrived before this wamid was stored, lowest first."""
    # Every send asks; almost always there is none, and a plain SELECT answers that cheaply.
    if not sql.status_kept(wamid):
        return
    pending = sorted(StatusUpdate.objects.filter(whatsapp_message_id=wamid), key=lambda s: RANK[s.status])
    for update in pending:
        status_apply(
            StatusEvent(
                wamid=wamid,
                status=update.status,
                timestamp=update.timestamp,
                errors=update.errors,
                pricing=update.pricing,
            )
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
    # A batch's publishes go to the broker together, in the body's order (core.broker).
    queue.processing_each(message_ids)


def _queue_event(event_id: int) -> None:
    queue.fan_out_event(event_id)
