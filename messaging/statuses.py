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

from messaging.models import Message


def outbound_pending(**fields: Any) -> Message:
    """A new outbound message, pending until its send claims it (not stored yet)."""
    return Message(direction=Message.Direction.OUT, status=Message.Status.PENDING, **fields)


# Meta accepted the send: its wamid, and the claim released. Plain SQL: every send runs it.
SENT_SQL = (
    "UPDATE messaging_message SET whatsapp_message_id = %s, status = 'sent', sent_at = %s, "
    "claimed_at = NULL, send_after = NULL, error_code = '', error_detail = '' WHERE id = %s"
)
# The same, and whether a status for the wamid was kept before it was known: one statement.
SENT_EARLY_SQL = (
    f"WITH sent AS ({SENT_SQL} RETURNING id) "  # noqa: S608
    "SELECT EXISTS (SELECT 1 FROM messaging_statusupdate WHERE whatsapp_message_id = %s)"
)

# Which current statuses each incoming status may replace (SPEC §4.3): sent < delivered < read;
# failed only over pending and sent; delivered or read prove delivery and override failed.
FORWARD_FROM: dict[str, tuple[str, ...]] = {
    "sent": ("pending",),
    "delivered": ("pending", "sent", "failed"),
    "read": ("pending", "sent", "delivered", "failed"),
    "failed": ("pending", "sent"),
}
# Statuses are three quarters of Meta's webhooks: written in SQL because building the ORM query
# cost more CPU than PostgreSQL spends running it (bench/RESULTS.md). One statement per status,
# its columns and allowed current statuses fixed by FORWARD_FROM (never taken from the body).
# A status carrying Meta's pricing block also stores it, in the same statement, and returns
# the row's delivered_at and pricing: the first proof of delivery is when Meta bills.
PRICING_COLUMNS = ("pricing_billable", "pricing_category", "pricing_model", "pricing_type")


def _forward_sql(status: str, *, priced: bool) -> str:
    columns = ["status", f"{status}_at", *(("error_code", "error_detail") if status == "failed" else ())]
    if priced:
        columns += PRICING_COLUMNS
    returning = f" RETURNING delivered_at, {', '.join(PRICING_COLUMNS)}" if priced else ""
    return (
        f"UPDATE messaging_message SET {', '.join(f'{c} = %s' for c in columns)} "  # noqa: S608
        f"WHERE whatsapp_message_id = %s AND direction = 'out' "
        f"AND status IN ({', '.join(['%s'] * len(FORWARD_FROM[status]))}){returning}"
    )


FORWARD_SQL = {
    (status, priced): _forward_sql(status, priced=priced)
    for status in FORWARD_FROM
    for priced in (False, True)
}


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
        conversation=answered_by.conversation,
        intent=answered_by.intent,
        sentiment=answered_by.sentiment,
    )
