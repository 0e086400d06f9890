"""Due work of the window sweep."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet

from messaging.models import Conversation, Message


def conversations_due_followup(*, now: datetime) -> QuerySet[Conversation]:
    """Awaiting a first reply, no follow-up yet, first template sent FOLLOWUP_AFTER_HOURS ago."""
    first_contact_sent = Message.objects.filter(
        conversation=OuterRef("pk"),
        purpose=Message.Purpose.FIRST_CONTACT,
        sent_at__lte=now - timedelta(hours=settings.FOLLOWUP_AFTER_HOURS),
    )
    return Conversation.objects.filter(
        status=Conversation.Status.AWAITING_RESPONSE,
        followup_sent=False,
        customer__opted_out=False,
        # Waiting for a person (a payment that did not match, say): Sara chases no one meanwhile.
        needs_human=False,
    ).filter(Exists(first_contact_sent))


def conversations_due_expiry(*, now: datetime) -> QuerySet[Conversation]:
    """Open, and no customer message for SARA_EXPIRE_AFTER_HOURS (counted from the start if none)."""
    cutoff = now - timedelta(hours=settings.SARA_EXPIRE_AFTER_HOURS)
    return Conversation.objects.filter(status__in=Conversation.OPEN_STATUSES).filter(
        Q(last_user_message_at__lt=cutoff) | Q(last_user_message_at__isnull=True, created_at__lt=cutoff)
    )
