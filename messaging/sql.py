"""Plain SQL on messaging's tables, beside their models and built from their fields (core.sql).

Used where building the ORM statement cost more CPU than running it (bench/RESULTS.md): Meta's
inbound messages, and the audit row and the kept payments of every cart. Other apps reach these
tables through the functions here, never with SQL of their own.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connection
from django.db.models.query import RawQuerySet
from django.utils import timezone

from core import sql as core_sql
from core.sql import insert_parts
from messaging.models import Message, WebhookEvent

# One inbound message per row, N rows per statement; a repeated wamid inserts nothing
# (ON CONFLICT DO NOTHING RETURNING id). The parameters of a row, in this order:
INBOUND_GIVEN = (
    "direction",
    "kind",
    "wa_id",
    "text",
    "whatsapp_message_id",
    "status",
    "metadata",
    "whatsapp_timestamp",
    "created_at",
)
INBOUND = insert_parts(Message, given=INBOUND_GIVEN)
INBOUND_ROW = f"({INBOUND.values})"


def inbound_insert_sql(rows: int) -> str:
    """The INSERT of `rows` inbound messages, each with the parameters of INBOUND_GIVEN."""
    return (
        f"INSERT INTO {INBOUND.table} ({INBOUND.columns}) VALUES {', '.join([INBOUND_ROW] * rows)} "  # noqa: S608
        "ON CONFLICT (whatsapp_message_id) DO NOTHING RETURNING id"
    )


EVENT = insert_parts(WebhookEvent, given=("type", "external_id", "payload", "processed", "created_at"))
_EVENT_INSERT = f"INSERT INTO {EVENT.table} ({EVENT.columns}) VALUES ({EVENT.values})"  # noqa: S608


def webhook_event_insert(
    *, event_type: str, external_id: str, payload: dict[str, Any], processed: bool
) -> None:
    """Keep a webhook's audit row whose id nothing reads: one INSERT, no RETURNING."""
    params: list[Any] = [
        event_type,
        external_id,
        connection.ops.adapt_json_value(payload, None),
        processed,
        connection.ops.adapt_datetimefield_value(timezone.now()),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_EVENT_INSERT, params)


# WebhookEvent.objects.filter(type=PAYMENT, reference=..., processed=False,
# external_id__isnull=False).order_by("created_at"): asked by every cart, rarely answered.
_KEPT_PAYMENTS = (
    f"SELECT * FROM {WebhookEvent._meta.db_table} "  # noqa: S608
    "WHERE reference = %s AND type = %s AND NOT processed AND external_id IS NOT NULL "
    "ORDER BY created_at"
)


def payments_kept(*, reference: str) -> RawQuerySet[WebhookEvent]:
    """The "paid" payment events kept unprocessed for this abandonment id, oldest first."""
    return WebhookEvent.objects.raw(_KEPT_PAYMENTS, [reference, WebhookEvent.Type.PAYMENT])


# Reads of the worker's hot path (recovery.conversation): every customer message runs them.
# Their select lists come from the model's fields (core.sql).


@cache
def _inbound_select(*, lock: bool) -> str:
    table = Message._meta.db_table
    sql = f"SELECT {core_sql.columns(Message, 'm')} FROM {table} m WHERE m.id = %s AND m.direction = 'in'"  # noqa: S608
    return sql + (" FOR UPDATE" if lock and connection.features.has_select_for_update else "")


def inbound_message(message_id: int, *, lock: bool = False) -> Message | None:
    """Message.objects[.select_for_update()].filter(pk=..., direction=IN).first()"""
    return core_sql.fetch_instance(_inbound_select(lock=lock), [message_id], Message)


@cache
def _history_select() -> str:
    return (
        f"SELECT direction, text FROM {Message._meta.db_table} "  # noqa: S608
        "WHERE conversation_id = %s AND id <> %s AND text <> '' ORDER BY created_at DESC, id DESC LIMIT %s"
    )


def recent_texts(*, conversation_id: int, exclude: int, size: int) -> list[tuple[str, str]]:
    """The conversation's last `size` messages with words, newest first: (direction, text)."""
    with connection.cursor() as cursor:
        cursor.execute(_history_select(), [conversation_id, exclude, size])
        return cursor.fetchall()
