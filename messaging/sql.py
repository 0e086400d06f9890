"""Plain SQL on messaging's tables, beside their models and built from their fields (core.sql).

Used where building the ORM statement cost more CPU than running it (bench/RESULTS.md): Meta's
inbound messages, and the audit row and the kept payments of every cart. Other apps reach these
tables through the functions here, never with SQL of their own.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection
from django.db.models.query import RawQuerySet
from django.utils import timezone
from psycopg import sql as pg_sql

from core import sql as core_sql
from messaging.models import Message, StatusUpdate, WebhookEvent

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
# Its columns: the given ones, then every other one the database cannot fill, with its default.
INBOUND = core_sql.insert(Message, given=INBOUND_GIVEN)


@cache
def inbound_insert_sql(rows: int) -> str:
    """The INSERT of `rows` inbound messages, row i's values named `<field>_<i>` (INBOUND_GIVEN).

    Message.objects.bulk_create([...], ignore_conflicts=True), returning the new rows' ids.
    """
    return core_sql.text(
        pg_sql.SQL("{insert} ON CONFLICT ({wamid}) DO NOTHING RETURNING {id}").format(
            insert=INBOUND.statement(rows=rows),
            wamid=core_sql.column(Message, "whatsapp_message_id"),
            id=core_sql.column(Message, "id"),
        )
    )


# WebhookEvent.objects.create(type=..., external_id=..., payload=..., processed=..., created_at=now)
EVENT_GIVEN = ("type", "external_id", "payload", "processed", "created_at")
EVENT = core_sql.insert(WebhookEvent, given=EVENT_GIVEN)
_EVENT_INSERT = core_sql.text(EVENT.statement())


def webhook_event_insert(
    *, event_type: str, external_id: str, payload: dict[str, Any], processed: bool
) -> None:
    """Keep a webhook's audit row whose id nothing reads: one INSERT, no RETURNING."""
    params = {
        "type": event_type,
        "external_id": external_id,
        "payload": connection.ops.adapt_json_value(payload, None),
        "processed": processed,
        "created_at": core_sql.db_datetime(timezone.now()),
        **EVENT.defaults(),
    }
    with connection.cursor() as cursor:
        cursor.execute(_EVENT_INSERT, params)


# WebhookEvent.objects.filter(type=PAYMENT, reference=..., processed=False,
#     external_id__isnull=False).order_by("created_at"): asked by every cart, rarely answered.
_KEPT_PAYMENTS = core_sql.text(
    pg_sql.SQL(
        "SELECT * FROM {w} WHERE {reference} = %(reference)s AND {type} = %(payment)s AND NOT {processed} "
        "AND {external_id} IS NOT NULL ORDER BY {created_at}"
    ).format(
        w=core_sql.table(WebhookEvent),
        **core_sql.named_columns(WebhookEvent, "reference", "type", "processed", "external_id", "created_at"),
    )
)


def payments_kept(*, reference: str) -> RawQuerySet[WebhookEvent]:
    """The "paid" payment events kept unprocessed for this abandonment id, oldest first."""
    return WebhookEvent.objects.raw(
        _KEPT_PAYMENTS, {"reference": reference, "payment": WebhookEvent.Type.PAYMENT}
    )


# Reads of the worker's hot path (recovery.inbound): every customer message runs them.
# Their select lists come from the model's fields.


@cache
def _inbound_select(*, lock: bool) -> str:
    # Message.objects[.select_for_update()].filter(pk=id, direction=IN)
    statement = pg_sql.SQL("SELECT {fields} FROM {m} WHERE {id} = %(id)s AND {direction} = %(in)s").format(
        fields=core_sql.columns(Message),
        m=core_sql.table(Message),
        id=core_sql.column(Message, "id"),
        direction=core_sql.column(Message, "direction"),
    )
    if lock and connection.features.has_select_for_update:
        statement = pg_sql.SQL("{} FOR UPDATE").format(statement)
    return core_sql.text(statement)


def inbound_message(message_id: int, *, lock: bool = False) -> Message | None:
    """Message.objects[.select_for_update()].filter(pk=..., direction=IN).first()"""
    return core_sql.fetch_instance(
        _inbound_select(lock=lock), {"id": message_id, "in": Message.Direction.IN}, Message
    )


# Message.objects.filter(direction=IN, status=RECEIVED, wa_id=..., kind__in=TEXT_KINDS,
#     created_at__gte=since).order_by("created_at", "pk").values_list("pk", "created_at")
_KINDS = pg_sql.SQL(", ").join(pg_sql.Placeholder(f"kind_{i}") for i in range(len(Message.TEXT_KINDS)))
_SENDER_WAITING = core_sql.text(
    pg_sql.SQL(
        "SELECT {id}, {created_at} FROM {m} WHERE {direction} = %(in)s AND {status} = %(received)s "
        "AND {wa_id} = %(wa_id)s AND {kind} IN ({kinds}) AND {created_at} >= %(since)s "
        "ORDER BY {created_at}, {id}"
    ).format(
        m=core_sql.table(Message),
        **core_sql.named_columns(Message, "id", "created_at", "direction", "status", "wa_id", "kind"),
        kinds=_KINDS,
    )
)
_SENDER_WAITING_FIELDS = (Message._meta.get_field("id"), Message._meta.get_field("created_at"))


def sender_waiting(*, wa_id: str, since: datetime) -> list[tuple[int, datetime]]:
    """The sender's text messages received since `since` and not yet processed: (id, arrival),
    oldest first. Every customer message reads it (its burst), up to three times."""
    params = {
        "in": Message.Direction.IN,
        "received": Message.Status.RECEIVED,
        "wa_id": wa_id,
        "since": core_sql.db_datetime(since),
        **{f"kind_{i}": kind for i, kind in enumerate(Message.TEXT_KINDS)},
    }
    rows = core_sql.fetch_rows(_SENDER_WAITING, params, _SENDER_WAITING_FIELDS)
    return [(pk, at) for pk, at in rows]


# Message.objects.filter(conversation_id=..., ~Q(pk=exclude), ~Q(text=""))
#     .order_by("-created_at", "-pk").values_list("direction", "text")[:size]
_HISTORY = core_sql.text(
    pg_sql.SQL(
        "SELECT {direction}, {text} FROM {m} WHERE {conversation} = %(conversation)s AND {id} <> %(exclude)s "
        "AND {text} <> %(blank)s ORDER BY {created_at} DESC, {id} DESC LIMIT %(size)s"
    ).format(
        m=core_sql.table(Message),
        **core_sql.named_columns(Message, "direction", "text", "conversation", "id", "created_at"),
    )
)


def recent_texts(*, conversation_id: int, exclude: int, size: int) -> list[tuple[str, str]]:
    """The conversation's last `size` messages with words, newest first: (direction, text)."""
    params: dict[str, Any] = {"conversation": conversation_id, "exclude": exclude, "blank": "", "size": size}
    with connection.cursor() as cursor:
        cursor.execute(_HISTORY, params)
        return cursor.fetchall()


# --- The send path and Meta's statuses ----------------------------------------------------
# Composed once from the models' `_meta` with psycopg's `sql` module; enum values and every
# other value are named parameters. Each statement has its ORM equivalent beside it, and
# tests/messaging/test_sql.py checks that both do the same.


_table, _col, _text = core_sql.table, core_sql.column, core_sql.text


def _m(name: str) -> pg_sql.Identifier:
    return _col(Message, name)


# Message.objects.filter(pk=id, direction=OUT, status=PENDING, whatsapp_message_id=None)
#     .filter(Q(claimed_at=None) | Q(claimed_at__lt=stale)) [.filter(Q(send_after=None) | Q(send_after__lte=now))]
#     .update(claimed_at=now, attempts=F("attempts") + 1,
#             possible_duplicate=Q(claimed_at__isnull=False) | Q(possible_duplicate=True))
_CLAIM = pg_sql.SQL(
    "UPDATE {m} SET {claimed_at} = %(now)s, {attempts} = {attempts} + 1, "
    "{possible_duplicate} = ({claimed_at} IS NOT NULL OR {possible_duplicate}) "
    "WHERE {id} = %(id)s AND {direction} = %(out)s AND {status} = %(pending)s AND {wamid} IS NULL "
    "AND ({claimed_at} IS NULL OR {claimed_at} < %(stale)s)"
).format(
    m=_table(Message),
    wamid=_m("whatsapp_message_id"),
    **core_sql.named_columns(
        Message, "claimed_at", "attempts", "possible_duplicate", "id", "direction", "status"
    ),
)
CLAIM_SQL = _text(_CLAIM)
CLAIM_DUE_SQL = _text(
    pg_sql.SQL("{claim} AND ({send_after} IS NULL OR {send_after} <= %(now)s)").format(
        claim=_CLAIM, send_after=_m("send_after")
    )
)


def send_claim(*, message_id: int, now: datetime, stale: datetime, due_only: bool) -> bool:
    """Claim a pending outbound send for this worker: True when this statement took it."""
    params = {
        "now": core_sql.db_datetime(now),
        "stale": core_sql.db_datetime(stale),
        "id": message_id,
        "out": Message.Direction.OUT,
        "pending": Message.Status.PENDING,
    }
    with connection.cursor() as cursor:
        cursor.execute(CLAIM_DUE_SQL if due_only else CLAIM_SQL, params)
        return bool(cursor.rowcount)


# Message.objects.filter(pk=id).update(whatsapp_message_id=wamid, status=SENT, sent_at=at,
#     claimed_at=None, send_after=None, error_code="", error_detail="")
_SENT = pg_sql.SQL(
    "UPDATE {m} SET {wamid} = %(wamid)s, {status} = %(sent)s, {sent_at} = %(sent_at)s, "
    "{claimed_at} = NULL, {send_after} = NULL, {error_code} = %(blank)s, {error_detail} = %(blank)s "
    "WHERE {id} = %(id)s"
).format(
    m=_table(Message),
    wamid=_m("whatsapp_message_id"),
    **core_sql.named_columns(
        Message, "status", "sent_at", "claimed_at", "send_after", "error_code", "error_detail", "id"
    ),
)
SENT_SQL = _text(_SENT)
# The same and, in one statement, StatusUpdate.objects.filter(whatsapp_message_id=wamid).exists()
SENT_EARLY_SQL = _text(
    pg_sql.SQL(
        "WITH sent AS ({sent} RETURNING {id}) SELECT EXISTS (SELECT 1 FROM {s} WHERE {s_wamid} = %(wamid)s)"
    ).format(
        sent=_SENT,
        id=_m("id"),
        s=_table(StatusUpdate),
        s_wamid=_col(StatusUpdate, "whatsapp_message_id"),
    )
)


def _sent_params(*, message_id: int, wamid: str, sent_at: datetime) -> dict[str, Any]:
    return {
        "wamid": wamid,
        "sent": Message.Status.SENT,
        "sent_at": core_sql.db_datetime(sent_at),
        "blank": "",
        "id": message_id,
    }


def message_sent(*, message_id: int, wamid: str, sent_at: datetime) -> int:
    """Meta accepted the send: its wamid, status sent, the claim released; rows changed."""
    with connection.cursor() as cursor:
        cursor.execute(SENT_SQL, _sent_params(message_id=message_id, wamid=wamid, sent_at=sent_at))
        return int(cursor.rowcount)


def message_sent_early(*, message_id: int, wamid: str, sent_at: datetime) -> bool:
    """`message_sent` and whether a status for the wamid was kept before it (PostgreSQL only)."""
    with connection.cursor() as cursor:
        cursor.execute(SENT_EARLY_SQL, _sent_params(message_id=message_id, wamid=wamid, sent_at=sent_at))
        return bool(cursor.fetchone()[0])


# Meta's status forward (SPEC §4.3), one statement per (status, priced):
# Message.objects.filter(whatsapp_message_id=wamid, direction=OUT, status__in=allowed)
#     .update(status=status, <status>_at=at[, error_code=..., error_detail=...][, pricing_...=...])
# returning, when priced, delivered_at and the pricing columns of the rows it moved.
PRICING_FIELDS = ("pricing_billable", "pricing_category", "pricing_model", "pricing_type")
FAILED_FIELDS = ("error_code", "error_detail")


@cache
def forward_sql(status: str, *, priced: bool, allowed: int) -> str:
    """The UPDATE moving a message to `status`; its parameters are named by field, the allowed
    current statuses `from_0` … `from_<allowed - 1>`."""
    fields = ["status", f"{status}_at", *(FAILED_FIELDS if status == Message.Status.FAILED else ())]
    if priced:
        fields += PRICING_FIELDS
    statement = pg_sql.SQL(
        "UPDATE {m} SET {assignments} WHERE {wamid} = %(wamid)s AND {direction} = %(out)s "
        "AND {status} IN ({allowed})"
    ).format(
        m=_table(Message),
        assignments=pg_sql.SQL(", ").join(
            pg_sql.SQL("{} = {}").format(_m(name), pg_sql.Placeholder(name)) for name in fields
        ),
        wamid=_m("whatsapp_message_id"),
        direction=_m("direction"),
        status=_m("status"),
        allowed=pg_sql.SQL(", ").join(pg_sql.Placeholder(f"from_{i}") for i in range(allowed)),
    )
    if priced:
        statement = pg_sql.SQL("{} RETURNING {}").format(
            statement, pg_sql.SQL(", ").join(_m(name) for name in ("delivered_at", *PRICING_FIELDS))
        )
    return _text(statement)


def message_forward(
    *, wamid: str, status: str, allowed: tuple[str, ...], values: dict[str, Any], priced: bool
) -> list[tuple[Any, ...]] | int:
    """Move the outbound message with this wamid to `status` if its status is in `allowed`.

    `values` holds `<status>_at` and, as the status needs, the failure's and pricing's fields.
    Priced: the moved rows' (delivered_at, *PRICING_FIELDS); otherwise the number moved.
    """
    params = {"wamid": wamid, "out": Message.Direction.OUT, "status": status, **values}
    params[f"{status}_at"] = core_sql.db_datetime(params[f"{status}_at"])
    params.update({f"from_{i}": value for i, value in enumerate(allowed)})
    with connection.cursor() as cursor:
        cursor.execute(forward_sql(status, priced=priced, allowed=len(allowed)), params)
        if priced:
            return cursor.fetchall()
        return int(cursor.rowcount)


# Message.objects.filter(whatsapp_message_id=wamid).exists()
_WAMID_KNOWN = _text(
    pg_sql.SQL("SELECT 1 FROM {m} WHERE {wamid} = %(wamid)s LIMIT 1").format(
        m=_table(Message), wamid=_m("whatsapp_message_id")
    )
)
# StatusUpdate.objects.filter(whatsapp_message_id=wamid).exists()
_STATUS_KEPT = _text(
    pg_sql.SQL("SELECT 1 FROM {s} WHERE {wamid} = %(wamid)s LIMIT 1").format(
        s=_table(StatusUpdate), wamid=_col(StatusUpdate, "whatsapp_message_id")
    )
)


def _exists(statement: str, params: dict[str, Any]) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone() is not None


def wamid_known(wamid: str) -> bool:
    """A message with this wamid is stored."""
    return _exists(_WAMID_KNOWN, {"wamid": wamid})


def status_kept(wamid: str) -> bool:
    """A status for this wamid was kept before the wamid was stored."""
    return _exists(_STATUS_KEPT, {"wamid": wamid})


def inbound_insert(rows: list[list[Any]]) -> list[int]:
    """Insert inbound messages (each row in the order of INBOUND_GIVEN); ids of the new ones."""
    with connection.cursor() as cursor:
        params = {
            f"{name}_{i}": value
            for i, row in enumerate(rows)
            for name, value in zip(INBOUND_GIVEN, row, strict=True)
        }
        cursor.execute(inbound_insert_sql(len(rows)), {**params, **INBOUND.defaults()})
        return sorted(row[0] for row in cursor.fetchall())
