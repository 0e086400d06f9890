"""Reads with logic: the due work behind the sweeps and the ops views."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from messaging.models import Conversation, Message, Template, WebhookEvent
from messaging.services.outbound import claim_lease


def stuck_after() -> timedelta:
    return timedelta(seconds=settings.SARA_STUCK_AFTER_SECONDS)


def inbound_unprocessed(*, now: datetime) -> QuerySet[Message]:
    """Received and never processed: the task was lost (Redis, a killed worker, a crash)."""
    return Message.objects.filter(
        direction=Message.Direction.IN, status=Message.Status.RECEIVED, created_at__lt=now - stuck_after()
    )


def outbound_due(*, now: datetime) -> QuerySet[Message]:
    """Pending sends whose task never ran, whose quiet-hours wait is over, or whose claim expired."""
    never_ran = Q(claimed_at__isnull=True, send_after__isnull=True, created_at__lt=now - stuck_after())
    deferred_and_due = Q(claimed_at__isnull=True, send_after__lte=now)
    return Message.objects.filter(
        direction=Message.Direction.OUT, status=Message.Status.PENDING, whatsapp_message_id__isnull=True
    ).filter(never_ran | deferred_and_due | claim_expired(now=now))


def claim_expired(*, now: datetime) -> Q:
    """Claimed, no wamid, and the worker is gone: did Meta get it? Nobody knows."""
    return Q(claimed_at__lt=now - claim_lease())


def whatsapp_events_unprocessed(*, now: datetime) -> QuerySet[WebhookEvent]:
    return WebhookEvent.objects.filter(
        type=WebhookEvent.Type.WHATSAPP, processed=False, created_at__lt=now - timedelta(seconds=30)
    )


def failed_sends() -> QuerySet[Message]:
    """Failed sends ops still have to look at: a dismissed one has been decided on."""
    return Message.objects.filter(
        direction=Message.Direction.OUT, status=Message.Status.FAILED, dismissed_at__isnull=True
    )


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


def sends_waiting_for_template() -> tuple[int, list[str]]:
    """The templates Meta does not accept now and how many sequence steps wait for one (SPEC §15).

    One query: a step only waits while some template is refused, so with none refused there is
    nothing to count.
    """
    waiting = (
        Message.objects.filter(
            direction=Message.Direction.OUT, status=Message.Status.PENDING, error_code="template_unavailable"
        )
        .order_by()
        .values("error_code")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    rows = list(
        Template.objects.exclude(status__in=Template.SENDABLE)
        .annotate(waiting=Subquery(waiting))
        .order_by("name")
        .values_list("name", "waiting")
    )
    return (rows[0][1] or 0 if rows else 0), [name for name, _ in rows]
