"""Reads with logic: the due work behind the sweeps and the ops views."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from messaging.models import Conversation, Message, WebhookEvent
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
    return Message.objects.filter(direction=Message.Direction.OUT, status=Message.Status.FAILED)


def payment_mismatches() -> QuerySet[Conversation]:
    """Open conversations held for a person because a "paid" payment did not match the cart."""
    return Conversation.objects.filter(
        status__in=Conversation.OPEN_STATUSES,
        needs_human=True,
        handoff_reason=Conversation.HandoffReason.PAYMENT_MISMATCH,
    )
