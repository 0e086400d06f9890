"""The window sweep (SPEC §7, §15): the recovery sequence's due steps, expiry for the long silent,
and the due work it finds."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, DateTimeField, Exists, F, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.db import retry_on_lock_conflict
from messaging.models import Message
from recovery import lifecycle, sequence
from recovery.models import Conversation, SourceCheckout

logger = logging.getLogger(__name__)


def sweep_windows(*, now: datetime | None = None) -> dict[str, int]:
    """The sequence's due steps, expiry for the long silent (SPEC §7, §15). Safe to run twice."""
    now = now or timezone.now()
    steps = sequence.sequence_steps()
    followups = 0
    for step, conversation_ids in conversations_due_step(now=now, steps=steps):
        for conversation_id in conversation_ids:
            followups += _step_send(conversation_id=conversation_id, step=step, steps=steps, now=now)

    expired = 0
    for conversation_id, abandonment_id in conversations_due_expiry(now=now).values_list(
        "pk", "abandonment_id"
    )[:1000]:
        expired += _expire(conversation_id=conversation_id, abandonment_id=abandonment_id, now=now)
    if followups or expired:
        logger.info("windows swept", extra={"followups": followups, "expired": expired})
    return {"followups": followups, "expired": expired}


@retry_on_lock_conflict
def _step_send(
    *, conversation_id: int, step: sequence.Step, steps: list[sequence.Step], now: datetime
) -> int:
    """Queue the conversation's next step; 0 if another sweep did, or the customer answered meanwhile."""
    with transaction.atomic():
        abandonment_id = (
            Conversation.objects.filter(pk=conversation_id).values_list("abandonment_id", flat=True).first()
        )
        if abandonment_id is None:
            return 0
        # The cart first (the one lock order, recovery.lifecycle): the claim and the queued
        # message write the conversation twice, and a customer's turn or a payment holds the
        # cart while it waits for the conversation.
        lifecycle.cart_lock(abandonment_id)
        previous = [s.order for s in steps if s.order < step.order]
        place = Q(sequence_step__lt=step.order, sequence_step__gte=previous[-1] if previous else 0)
        if len(previous) == 1:
            place |= Q(sequence_step=0)  # a first contact from before steps were counted
        # The conditional UPDATE is the claim: of two sweeps, one wins and one sends; and a
        # customer who answered since the look (status active) is chased no more.
        won = Conversation.objects.filter(
            place,
            pk=conversation_id,
            status=Conversation.Status.AWAITING_RESPONSE,
            needs_human=False,
        ).update(
            sequence_step=step.order,
            followup_sent=True if not step.first else F("followup_sent"),
            updated_at=now,
        )
        if not won:
            return 0
        conversation = Conversation.objects.select_related(
            "customer", "abandonment__product", "abandonment__customer"
        ).get(pk=conversation_id)
        sequence.step_queue(conversation=conversation, step=step, now=now)
        return 1


@retry_on_lock_conflict
def _expire(*, conversation_id: int, abandonment_id: int, now: datetime) -> int:
    with transaction.atomic():
        return lifecycle.conversation_expire(
            conversation_id=conversation_id, abandonment_id=abandonment_id, now=now
        )


# The base of a step's delay: when the step before it left (sent), or when Meta refused it for
# its per-user marketing limit (131049): that step is over, and the sequence goes on after the
# next delay. A step still pending (quiet hours, a paused template) or failed otherwise is no base.
_STEP_LEFT = (Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ)
MARKETING_LIMIT_CODE = "131049"


def conversations_due_step(
    *, now: datetime, steps: list[sequence.Step]
) -> list[tuple[sequence.Step, list[int]]]:
    """For each step, the conversations whose wait for it is over (at most 1000 a step).

    Still awaiting the customer's first answer (any answer stops the sequence), not waiting for
    a person, customer not opted out, no platform payment being confirmed; the previous step
    left at least the step's delay ago (the cart opened that long ago, for the first step).
    """
    latest_step = Message.objects.filter(
        conversation=OuterRef("pk"),
        direction=Message.Direction.OUT,
        purpose__in=Message.PROACTIVE_PURPOSES,
    ).order_by("-created_at", "-pk")
    left_at = latest_step.annotate(
        base=Case(
            When(status__in=_STEP_LEFT, then=F("sent_at")),
            When(
                status=Message.Status.FAILED,
                error_code=MARKETING_LIMIT_CODE,
                then=Coalesce("sent_at", "failed_at"),
            ),
            default=None,
            output_field=DateTimeField(),
        )
    ).values("base")[:1]
    # A platform said the cart was paid and the order is still being read: not chased meanwhile.
    payment_pending = SourceCheckout.objects.filter(abandonment=OuterRef("abandonment"), payment_pending=True)
    waiting = (
        Conversation.objects.annotate(stepped=Exists(latest_step))
        .filter(
            status=Conversation.Status.AWAITING_RESPONSE,
            customer__opted_out=False,
            # Waiting for a person (a payment that did not match, say): Sara chases no one meanwhile.
            needs_human=False,
        )
        .exclude(Exists(payment_pending))
        .annotate(
            step_base=Case(
                When(sequence_step=0, stepped=False, then=F("created_at")),
                default=Subquery(left_at),
                output_field=DateTimeField(),
            )
        )
    )
    due: list[tuple[sequence.Step, list[int]]] = []
    previous = 0
    for step in steps:
        if step.first:
            # A conversation that has a step's message and still counts 0 had its first contact
            # before steps were counted: it is past the first step, never sent it again.
            place = Q(sequence_step=0, stepped=False)
        else:
            place = Q(sequence_step__gte=previous, sequence_step__lt=step.order)
            if previous == steps[0].order:
                place |= Q(sequence_step=0, stepped=True)
        ids = list(
            waiting.filter(place, step_base__lte=now - step.delay)
            .order_by("pk")
            .values_list("pk", flat=True)[:1000]
        )
        if ids:
            due.append((step, ids))
        previous = step.order
    return due


def conversations_due_expiry(*, now: datetime) -> QuerySet[Conversation]:
    """Open, and no customer message for SARA_EXPIRE_AFTER_HOURS (counted from the start if none).

    One waiting for a person stays in the inbox until someone resolves it or gives it back. A
    sequence step due after this never goes: the recovery is over (the admin says so).
    """
    cutoff = now - timedelta(hours=settings.SARA_EXPIRE_AFTER_HOURS)
    return Conversation.objects.filter(status__in=Conversation.OPEN_STATUSES, needs_human=False).filter(
        Q(last_user_message_at__lt=cutoff) | Q(last_user_message_at__isnull=True, created_at__lt=cutoff)
    )
