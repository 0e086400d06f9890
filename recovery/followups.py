"""The window sweep (SPEC §7): one follow-up to the silent, expiry for the long silent."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compliance import selectors
from messaging.models import Conversation, Message
from recovery import lifecycle
from recovery.services import template_queue

logger = logging.getLogger(__name__)


def windows_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """One follow-up to the silent, expiry for the long silent (SPEC §7). Safe to run twice."""
    now = now or timezone.now()
    followups = 0
    for conversation in selectors.conversations_due_followup(now=now).select_related(
        "customer", "abandonment__product", "abandonment__customer"
    )[:1000]:
        with transaction.atomic():
            # The conditional UPDATE is the claim: of two sweeps, one wins and one sends.
            won = Conversation.objects.filter(
                pk=conversation.pk, followup_sent=False, status=Conversation.Status.AWAITING_RESPONSE
            ).update(followup_sent=True, updated_at=now)
            if not won:
                continue
            template_queue(
                conversation=conversation,
                purpose=Message.Purpose.FOLLOWUP,
                name=settings.WHATSAPP_FOLLOWUP_TEMPLATE_NAME,
            )
            followups += 1

    expired = 0
    for conversation_id, abandonment_id in selectors.conversations_due_expiry(now=now).values_list(
        "pk", "abandonment_id"
    )[:1000]:
        with transaction.atomic():
            expired += lifecycle.conversation_expire(
                conversation_id=conversation_id, abandonment_id=abandonment_id, now=now
            )
    if followups or expired:
        logger.info("windows swept", extra={"followups": followups, "expired": expired})
    return {"followups": followups, "expired": expired}
