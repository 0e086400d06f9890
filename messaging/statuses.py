"""A message's status moves here and nowhere else (SPEC §12: one owner per piece of state).

Outbound: pending when queued; sent when Meta accepts it; failed when the send fails for good or
is cancelled (an opt-out, an erasure, a changed number); pending again when ops retry it; then
forward only with Meta's statuses (sent < delivered < read). Inbound: received when stored (the
webhook's batch INSERT), processed once read and answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from messaging import sql
from messaging.models import Message


def outbound_pending(**fields: Any) -> Message:
    """A new outbound message, pending until its send claims it (not stored yet)."""
    return Message(direction=Message.Direction.OUT, status=Message.Status.PENDING, **fields)


# Which current statuses each incoming status may replace (SPEC §4.3): sent < delivered < read;
# failed only over pending and sent; delivered or read prove delivery and override failed.
_S = Message.Status
FORWARD_FROM: dict[str, tuple[str, ...]] = {
    _S.SENT: (_S.PENDING,),
    _S.DELIVERED: (_S.PENDING, _S.SENT, _S.FAILED),
    _S.READ: (_S.PENDING, _S.SENT, _S.DELIVERED, _S.FAILED),
    _S.FAILED: (_S.PENDING, _S.SENT),
}
# Statuses are three quarters of Meta's webhooks and every send records one: their statements
# are plain SQL (messaging.sql) because building the ORM query cost more CPU than PostgreSQL
# spends running it (bench/RESULTS.md). They are called from here only.


def inbound_stored(rows: list[list[Any]]) -> list[int]:
    """Meta's inbound messages stored as received (rows in the order of sql.INBOUND_GIVEN, the
    status left out); the ids of those not stored before."""
    at = sql.INBOUND_GIVEN.index("status")
    return sql.inbound_insert([[*row[:at], Message.Status.RECEIVED, *row[at:]] for row in rows])


def sent(*, message_id: int, wamid: str, sent_at: datetime) -> None:
    """Meta accepted the send: its wamid, status sent, the claim released."""
    sql.message_sent(message_id=message_id, wamid=wamid, sent_at=sent_at)


def sent_early(*, message_id: int, wamid: str, sent_at: datetime) -> bool:
    """`sent`, and whether a status for the wamid was kept before it was known (PostgreSQL)."""
    return sql.message_sent_early(message_id=message_id, wamid=wamid, sent_at=sent_at)


def forward(*, wamid: str, status: str, values: dict[str, Any], priced: bool) -> list[tuple[Any, ...]] | int:
    """Meta's status for an outbound message, if it moves it forward (see messaging.sql)."""
    return sql.message_forward(
        wamid=wamid, status=status, allowed=FORWARD_FROM[status], values=values, priced=priced
    )


def send_failed(*, message_id: int, code: str, detail: str, now: datetime) -> int:
    """The pending send failed for good; 0 when it was no longer pending."""
    return Message.objects.filter(pk=message_id, status=Message.Status.PENDING).update(
        status=Message.Status.FAILED,
        error_code=code[:50],
        error_detail=detail[:2000],
        failed_at=now,
        claimed_at=None,
    )


def pending_cancel(messages: QuerySet[Message], *, code: str, detail: str, now: datetime) -> int:
    """Outbound messages still pending among these will never go: failed with why."""
    return messages.filter(direction=Message.Direction.OUT, status=Message.Status.PENDING).update(
        status=Message.Status.FAILED,
        error_code=code[:50],
        error_detail=detail,
        failed_at=now,
        claimed_at=None,
    )


def failed_requeue(message_ids: Iterable[int]) -> int:
    """Failed sends back to pending, for ops' retry: the same claim and gate as any send."""
    return Message.objects.filter(pk__in=list(message_ids)).update(
        status=Message.Status.PENDING, failed_at=None, claimed_at=None, send_after=None
    )


def inbound_processed(message: Message, *, now: datetime) -> None:
    """The customer's message was read (and answered): set on the instance; the caller saves it."""
    message.status = Message.Status.PROCESSED
    message.processed_at = now


def burst_processed(message_ids: Sequence[int], *, answered_by: Message) -> int:
    """Older messages of a burst, read and answered with the newest (`answered_by`)."""
    return Message.objects.filter(pk__in=message_ids, status=Message.Status.RECEIVED).update(
        status=Message.Status.PROCESSED,
        processed_at=answered_by.processed_at,
        conversation_id=answered_by.conversation_id,
        intent=answered_by.intent,
        sentiment=answered_by.sentiment,
    )
