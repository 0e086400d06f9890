"""The window sweep (SPEC §7): one follow-up to the silent, expiry for the long silent, and the
due work it finds."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from core.db import retry_on_lock_conflict
from messaging.models import Conversation, Message
from recovery import lifecycle
from recovery.models import SourceCheckout
from recovery.services import template_queue

logger = logging.getLogger(__name__)


def sweep_windows(*, now: datetime | None = None) -> dict[str, int]:
    """One follow-up to the silent, expiry for the long silent (SPEC §7). Safe to run twice."""
    now = now or timezone.now()
    followups = 0
    for conversation in conversations_due_followup(now=now).select_related(
        "customer", "abandonment__product", "abandonment__customer"
    )[:1000]:
        followups += _followup_send(conversation, now=now)

    expired = 0
    for conversation_id, abandonment_id in conversations_due_expiry(now=now).values_list(
        "pk", "abandonment_id"
    )[:1000]:
        expired += _expire(conversation_id=conversation_id, abandonment_id=abandonment_id, now=now)
    if followups or expired:
        logger.info("windows swept", extra={"followups": followups, "expired": expired})
    return {"followups": followups, "expired": expired}


@retry_on_lock_conflict
def _followup_send(conversation: Conversation, *, now: datetime) -> int:
    """The one follow-up template for a silent customer; 0 if another sweep sent it."""
    with transaction.atomic():
        # The cart first (the one lock order, recovery.lifecycle): the claim and the queued
        # template write the conversation twice, and a customer's turn or a payment holds the
        # cart while it waits for the conversation.
        lifecycle.cart_lock(conversation.abandonment_id)
        # The conditional UPDATE is the claim: of two sweeps, one wins and one sends.
        won = Conversation.objects.filter(
            pk=conversation.pk, followup_sent=False, status=Conversation.Status.AWAITING_RESPONSE
        ).update(followup_sent=True, updated_at=now)
        if not won:
            return 0
        template_queue(
            conversation=conversation,
            purpose=Message.Purpose.FOLLOWUP,
            name=settings.WHATSAPP_FOLLOWUP_TEMPLATE_NAME,
        )
        return 1


@retry_on_lock_conflict
def _expire(*, conversation_id: int, abandonment_id: int, now: datetime) -> int:
    with transaction.atomic():
        return lifecycle.conversation_expire(
            conversation_id=conversation_id, abandonment_id=abandonment_id, now=now
        )


def conversations_due_followup(*, now: datetime) -> QuerySet[Conversation]:
    """Awaiting a first reply, no follow-up yet, first template sent FOLLOWUP_AFTER_HOURS ago."""
    first_contact_sent = Message.objects.filter(
        conversation=OuterRef("pk"),
        purpose=Message.Purpose.FIRST_CONTACT,
        sent_at__lte=now - timedelta(hours=settings.FOLLOWUP_AFTER_HOURS),
    )
    # A platform said the cart was paid and the order is still being read: not chased meanwhile.
    payment_pending = SourceCheckout.objects.filter(abandonment=OuterRef("abandonment"), payment_pending=True)
    return (
        Conversation.objects.filter(
            status=Conversation.Status.AWAITING_RESPONSE,
            followup_sent=False,
            customer__opted_out=False,
            # Waiting for a person (a payment that did not match, say): Sara chases no one meanwhile.
            needs_human=False,
        )
        .filter(Exists(first_contact_sent))
        .exclude(Exists(payment_pending))
    )


def conversations_due_expiry(*, now: datetime) -> QuerySet[Conversation]:
    """Open, and no customer message for SARA_EXPIRE_AFTER_HOURS (counted from the start if none).

    One waiting for a person stays in the inbox until someone resolves it or gives it back.
    """
    cutoff = now - timedelta(hours=settings.SARA_EXPIRE_AFTER_HOURS)
    return Conversation.objects.filter(status__in=Conversation.OPEN_STATUSES, needs_human=False).filter(
        Q(last_user_message_at__lt=cutoff) | Q(last_user_message_at__isnull=True, created_at__lt=cutoff)
    )
