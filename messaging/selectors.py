"""Reads with logic: the due work behind the sweeps and the ops views."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Subquery

from messaging.models import Message, Template, WebhookEvent
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
