"""The hand-off to a person (SPEC §8): flag, take, reply, resolve and give back to Sara.

While a conversation waits for a person (`needs_human`), Sara reads the customer's messages but
answers none of them; the person who took it answers through the same send path and gate as
Sara. These functions are the only writers of the assignment; closing (resolve) and the hand-off flag
itself go through the recovery lifecycle, like every status change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from compliance.gate import in_service_window
from compliance.lgpd import is_erased
from core.db import retry_on_lock_conflict
from core.errors import DomainError
from core.staff import staff_name
from messaging.models import Message
from recovery import lifecycle
from recovery.models import Conversation
from recovery.outbox import message_queue
from recovery.services import template_queue

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django_stubs_ext import StrOrPromise

logger = logging.getLogger(__name__)


class HandoffError(DomainError):
    """A hand-off step that cannot be done in the conversation's present state."""

    code = "CONFLICT"
    # Each error's words, translated when a view shows them (the class's, not the instance's).
    # DomainError types its message as str; a lazy translation is a str once rendered.
    message: StrOrPromise = _("The conversation cannot do that now.")  # type: ignore[assignment]

    def __init__(self, conversation_id: int) -> None:
        Exception.__init__(self, f"{self.code}: conversation {conversation_id}")
        self.details = {"conversation_id": conversation_id}
        self.conversation_id = conversation_id


class HeldByAnother(HandoffError):
    """Taking a conversation a colleague holds needs the staff member's confirmation first."""

    code = "HELD_BY_ANOTHER"
    message = _("A colleague holds this conversation: confirm to take it over.")


class NotResolved(HandoffError):
    code = "NOT_RESOLVED"
    message = _("Only a resolved conversation can be reopened.")


class CustomerHasAnotherConversation(HandoffError):
    code = "ANOTHER_OPEN"
    message = _("The customer has a newer open conversation: answer them there.")


class ConversationNotOpen(HandoffError):
    code = "CONVERSATION_CLOSED"
    message = _("The conversation is closed.")


class WindowClosed(HandoffError):
    code = "WINDOW_CLOSED"
    message = _(
        "The customer has not written in the last 24 hours: WhatsApp only lets an approved template go out."
    )


class CustomerOptedOut(HandoffError):
    code = "OPTED_OUT"
    message = _("The customer opted out: nothing may be sent to them.")


class CustomerErased(HandoffError):
    code = "ERASED"
    message = _("The customer's personal data was erased: nothing may be sent to them.")


def _locked(conversation_id: int) -> Conversation:
    # The cart first, then the conversation: the one lock order (recovery.lifecycle).
    return lifecycle.conversation_lock(conversation_id)


def _locked_open(conversation_id: int) -> Conversation:
    conversation = _locked(conversation_id)
    if not conversation.is_open:
        raise ConversationNotOpen(conversation_id)
    return conversation


def _wait_for_a_person(conversation: Conversation, *, reason: str, now: datetime) -> list[str]:
    """Flag the conversation for a person, keeping the first reason and wait if already flagged."""
    if conversation.needs_human:
        return []
    return sorted(lifecycle.conversation_hand_off(conversation, reason=reason, now=now))


def _assign(conversation: Conversation, *, user: User, now: datetime) -> list[str]:
    if conversation.assigned_to_id == user.pk:
        return []
    conversation.assigned_to = user
    conversation.assigned_at = now
    return ["assigned_to", "assigned_at"]


def _save(conversation: Conversation, fields: list[str]) -> None:
    if fields:
        conversation.save(update_fields=[*fields, "updated_at"])


@retry_on_lock_conflict
def conversation_flag(
    *,
    conversation_id: int,
    reason: str = Conversation.HandoffReason.MANUAL,
    now: datetime | None = None,
) -> Conversation:
    """Put a conversation in the inbox: Sara stops answering until a person gives it back."""
    now = now or timezone.now()
    with transaction.atomic():
        conversation = _locked_open(conversation_id)
        _save(conversation, _wait_for_a_person(conversation, reason=reason, now=now))
    logger.info("conversation flagged for a person", extra={"conversation_id": conversation_id})
    return conversation


@retry_on_lock_conflict
def conversation_take(
    *,
    conversation_id: int,
    user: User,
    now: datetime | None = None,
    confirmed: bool = False,
) -> Conversation:
    """A staff member owns the conversation; one not yet waiting is flagged by hand on the way.

    Taking one a colleague holds is refused unless `confirmed`: two people must not answer the
    same customer without knowing it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        conversation = _locked_open(conversation_id)
        if conversation.assigned_to_id not in (None, user.pk) and not confirmed:
            raise HeldByAnother(conversation_id)
        fields = _wait_for_a_person(conversation, reason=Conversation.HandoffReason.MANUAL, now=now)
        fields += _assign(conversation, user=user, now=now)
        _save(conversation, fields)
    logger.info("conversation taken", extra={"conversation_id": conversation_id, "user_id": user.pk})
    return conversation


@retry_on_lock_conflict
def conversation_reply(
    *,
    conversation_id: int,
    user: User,
    text: str,
    now: datetime | None = None,
    metadata: dict[str, object] | None = None,
) -> Message:
    """A person's free-form reply, queued for the same send path and gate as Sara's.

    Refused up front when the gate would refuse it anyway (opted out, outside the 24 h window),
    so the person is told at once instead of finding a failed send later. The gate still runs
    right before the send: the window may close while the reply waits.
    """
    now = now or timezone.now()
    with _staff_writes(conversation_id, user=user, now=now, free_form=True) as conversation:
        message = message_queue(
            conversation=conversation,
            purpose=Message.Purpose.STAFF_REPLY,
            text=text,
            # Kept on the message: the transcript still names the person if their account goes.
            metadata={"staff_name": staff_name(user), **(metadata or {})},
            sent_by=user,
            update_conversation=False,
        )
    logger.info("staff reply queued", extra={"conversation_id": conversation_id, "message_id": message.pk})
    return message


@retry_on_lock_conflict
def conversation_reply_template(*, conversation_id: int, user: User, now: datetime | None = None) -> Message:
    """Outside the 24 h window a person may only send the approved follow-up template."""
    now = now or timezone.now()
    with _staff_writes(conversation_id, user=user, now=now, free_form=False) as conversation:
        message = template_queue(
            conversation=conversation,
            purpose=Message.Purpose.STAFF_REPLY,
            name=settings.WHATSAPP_FOLLOWUP_TEMPLATE_NAME,
            metadata={"staff_name": staff_name(user)},
            sent_by=user,
            update_conversation=False,
        )
    logger.info("staff template queued", extra={"conversation_id": conversation_id, "message_id": message.pk})
    return message


@contextmanager
def _staff_writes(
    conversation_id: int, *, user: User, now: datetime, free_form: bool
) -> Iterator[Conversation]:
    """The locked, open conversation a person writes in, taken over by them; refused up front
    for an opted-out customer, and for free-form text outside the 24 h window.

    The caller queues one message without touching the conversation; the take-over and the
    message's count are then written in one UPDATE (one write per transaction: see
    recovery.lifecycle on the lock order).
    """
    with transaction.atomic():
        # Who the customer is comes first: an opt-out closes the conversation too, and the
        # answer must say why nothing may be sent (OPTED_OUT), not only that it is closed.
        conversation = _locked(conversation_id)
        if conversation.customer.opted_out:
            raise CustomerOptedOut(conversation_id)
        if is_erased(conversation.customer):
            raise CustomerErased(conversation_id)
        if not conversation.is_open:
            raise ConversationNotOpen(conversation_id)
        if free_form and not in_service_window(conversation.last_user_message_at, now):
            raise WindowClosed(conversation_id)
        fields = _take_over(conversation, user=user, now=now)
        yield conversation
        _save(conversation, [*fields, *lifecycle.conversation_message_queued(conversation, at=now)])


def _take_over(conversation: Conversation, *, user: User, now: datetime) -> list[str]:
    # Whoever writes to the customer owns the conversation: Sara must not answer beside them.
    fields = _wait_for_a_person(conversation, reason=Conversation.HandoffReason.MANUAL, now=now)
    return fields + _assign(conversation, user=user, now=now)


@retry_on_lock_conflict
def conversation_resolve(*, conversation_id: int, user: User, now: datetime | None = None) -> Conversation:
    """A person finished the conversation: closed with reason resolved, out of the inbox."""
    now = now or timezone.now()
    with transaction.atomic():
        conversation = _locked_open(conversation_id)
        # Whoever resolves it is the last owner: the history and the page name them. One
        # UPDATE for both (one write per transaction: see recovery.lifecycle on the lock order).
        fields = _assign(conversation, user=user, now=now)
        _save(conversation, [*fields, *sorted(lifecycle.conversation_resolve(conversation, now=now))])
    logger.info("conversation resolved", extra={"conversation_id": conversation_id, "user_id": user.pk})
    return conversation


@retry_on_lock_conflict
def conversation_assign(*, conversation_id: int, assignee: User, now: datetime | None = None) -> Conversation:
    """Hand the conversation to a colleague: they hold it (Sara stays silent) and see it as theirs."""
    now = now or timezone.now()
    with transaction.atomic():
        conversation = _locked_open(conversation_id)
        fields = _wait_for_a_person(conversation, reason=Conversation.HandoffReason.MANUAL, now=now)
        fields += _assign(conversation, user=assignee, now=now)
        _save(conversation, fields)
    logger.info("conversation assigned", extra={"conversation_id": conversation_id, "user_id": assignee.pk})
    return conversation


@retry_on_lock_conflict
def conversation_reopen(*, conversation_id: int, user: User, now: datetime | None = None) -> Conversation:
    """Staff open a resolved conversation again: it waits for a person, held by whoever reopened it."""
    now = now or timezone.now()
    with transaction.atomic():
        conversation = _locked(conversation_id)
        if not conversation.resolved_by_staff:
            raise NotResolved(conversation_id)
        if Conversation.objects.filter(
            customer_id=conversation.customer_id, status__in=Conversation.OPEN_STATUSES
        ).exists():
            raise CustomerHasAnotherConversation(conversation_id)
        fields = sorted(
            lifecycle.conversation_reopen(conversation, reason=Conversation.HandoffReason.MANUAL, now=now)
        )
        fields += _assign(conversation, user=user, now=now)
        _save(conversation, sorted(set(fields)))
    logger.info("conversation reopened", extra={"conversation_id": conversation_id, "user_id": user.pk})
    return conversation


@retry_on_lock_conflict
def conversation_handback(*, conversation_id: int) -> Conversation:
    """Give the conversation back to Sara: she answers the customer's next message again.

    The exchange count starts over, or a conversation handed off at the exchange limit would
    be handed off again by the very next message.
    """
    with transaction.atomic():
        conversation = _locked_open(conversation_id)
        conversation.needs_human = False
        conversation.handoff_reason = ""
        conversation.handoff_at = None
        conversation.assigned_to = None
        conversation.assigned_at = None
        _save(
            conversation,
            [
                "needs_human",
                "handoff_reason",
                "handoff_at",
                "assigned_to",
                "assigned_at",
                *lifecycle.conversation_exchanges_reset(conversation),
            ],
        )
    logger.info("conversation handed back to Sara", extra={"conversation_id": conversation_id})
    return conversation
