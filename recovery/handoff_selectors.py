"""Reads behind the support desk: conversations waiting for a person, payments that did not match."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Min, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from messaging.models import Message
from recovery.models import Conversation


def handoff_inbox() -> QuerySet[Conversation]:
    """Open conversations waiting for a person, the longest-waiting customer first.

    The wait starts when the conversation was handed off; one flagged before the hand-off
    time was recorded counts from the customer's last message.
    """
    last_in = Message.objects.filter(conversation=OuterRef("pk"), direction=Message.Direction.IN).order_by(
        "-created_at", "-id"
    )
    return (
        Conversation.objects.filter(needs_human=True, status__in=Conversation.OPEN_STATUSES)
        .select_related("customer", "assigned_to", "abandonment__product")
        .annotate(
            waiting_since=_waiting_since(),
            last_customer_text=Subquery(last_in.values("text")[:1]),
            last_customer_at=Subquery(last_in.values("created_at")[:1]),
        )
        .order_by("waiting_since", "pk")
    )


def handoff_waiting() -> tuple[int, datetime | None]:
    """How many conversations wait for a person, and since when the longest has waited."""
    figures = Conversation.objects.filter(needs_human=True, status__in=Conversation.OPEN_STATUSES).aggregate(
        count=Count("pk"), oldest=Min(_waiting_since())
    )
    return figures["count"], figures["oldest"]


def _waiting_since() -> Coalesce:
    return Coalesce("handoff_at", "last_user_message_at", "created_at")


def payment_mismatches() -> QuerySet[Conversation]:
    """Open conversations held for a person because a "paid" payment did not match the cart."""
    return Conversation.objects.filter(
        status__in=Conversation.OPEN_STATUSES,
        needs_human=True,
        handoff_reason=Conversation.HandoffReason.PAYMENT_MISMATCH,
    )
