"""Opt-out registration (LGPD): once registered, nothing but the farewell ever goes out."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging.models import Conversation, Message
from recovery.models import Abandonment, Customer

logger = logging.getLogger(__name__)


@transaction.atomic
def optout_register(*, phone: str, reason: str) -> Customer:
    """Opt a phone out (creating the customer if Sara never met them) and close what is open."""
    now = timezone.now()
    customer, _ = Customer.objects.get_or_create(phone=phone)
    Customer.objects.filter(pk=customer.pk, opted_out=False).update(
        opted_out=True, opted_out_at=now, opted_out_reason=reason[:50]
    )
    open_conversations = Conversation.objects.filter(customer=customer, status__in=Conversation.OPEN_STATUSES)
    abandonment_ids = list(open_conversations.values_list("abandonment_id", flat=True))
    open_conversations.update(
        status=Conversation.Status.CLOSED,
        close_reason=Conversation.CloseReason.OPTED_OUT,
        closed_at=now,
        updated_at=now,
    )
    Abandonment.objects.filter(
        pk__in=abandonment_ids, status__in=[Abandonment.Status.INITIATED, Abandonment.Status.ACTIVE]
    ).update(status=Abandonment.Status.DECLINED, updated_at=now)
    customer.refresh_from_db()
    logger.info("customer opted out", extra={"customer_id": customer.pk, "reason": reason})
    return customer


@transaction.atomic
def customer_opt_out_by_support(*, customer: Customer, note: str) -> Customer:
    """Support opts a person out at their request; the note says how they asked (kept on the row)."""
    customer = optout_register(phone=customer.phone, reason="support")
    Customer.objects.filter(pk=customer.pk).update(opt_out_note=note)
    customer.refresh_from_db()
    return customer


def windows_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """One follow-up to the silent, expiry for the long silent (SPEC §7). Safe to run twice."""
    from compliance import selectors
    from messaging.services.outbound import message_queue
    from recovery.services import template_parameters

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
            message_queue(
                conversation=conversation,
                purpose=Message.Purpose.FOLLOWUP,
                template={
                    "name": settings.WHATSAPP_FOLLOWUP_TEMPLATE_NAME,
                    "language": settings.WHATSAPP_TEMPLATE_LANGUAGE,
                    "parameters": template_parameters(conversation.abandonment),
                },
            )
            followups += 1

    expired = 0
    for conversation_id, abandonment_id in selectors.conversations_due_expiry(now=now).values_list(
        "pk", "abandonment_id"
    )[:1000]:
        with transaction.atomic():
            closed = Conversation.objects.filter(
                pk=conversation_id, status__in=Conversation.OPEN_STATUSES
            ).update(
                status=Conversation.Status.CLOSED,
                close_reason=Conversation.CloseReason.EXPIRED,
                closed_at=now,
                updated_at=now,
            )
            if closed:
                Abandonment.objects.filter(
                    pk=abandonment_id, status__in=[Abandonment.Status.INITIATED, Abandonment.Status.ACTIVE]
                ).update(status=Abandonment.Status.EXPIRED, updated_at=now)
                expired += closed
    if followups or expired:
        logger.info("windows swept", extra={"followups": followups, "expired": expired})
    return {"followups": followups, "expired": expired}
