"""Sara's messages to a conversation: stored and sent by messaging, counted by the lifecycle.

Also what messaging's send path reads of a recipient (messaging.handlers.outbound_load): the
customer, the conversation and the cart, handed down as plain values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from compliance.lgpd import is_erased
from messaging.handlers import Recipient
from messaging.models import Message
from messaging.services import outbound
from recovery import lifecycle
from recovery import sql as recovery_sql
from recovery.models import Conversation, Customer

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def message_queue(
    *,
    conversation: Conversation,
    purpose: str,
    text: str = "",
    template: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    update_conversation: bool = True,
    sent_by: User | None = None,
) -> Message:
    """Store an outbound message (pending) and queue its send once the transaction commits.

    The conversation's message count and last message time move with it, unless the caller
    holds the conversation row and saves those itself (`update_conversation=False`).
    """
    message = outbound.message_queue(
        conversation_id=conversation.pk,
        phone=_phone_of(conversation.customer),
        purpose=purpose,
        text=text,
        template=template,
        metadata=metadata,
        sent_by=sent_by,
    )
    message.conversation = conversation
    if update_conversation:
        lifecycle.conversation_message_counted(conversation_id=conversation.pk, at=message.created_at)
    return message


def outbound_load(
    *, message_id: int, hold_customer_id: int | None = None
) -> tuple[Message, Recipient] | None:
    """The outbound message and its recipient (bound to messaging.handlers.outbound_load)."""
    if hold_customer_id is not None:
        recovery_sql.customer_hold(hold_customer_id)
    loaded = recovery_sql.outbound_message(message_id)
    if loaded is None:
        return None
    message, conversation, customer, abandonment = loaded
    return message, Recipient(
        customer_id=customer.pk,
        phone=_phone_of(customer),
        opted_out=customer.opted_out,
        erased=is_erased(customer),
        held_out=abandonment.held_out
        or recovery_sql.person_held_out_since(customer_id=customer.pk, since=abandonment.created_at),
        conversation_open=conversation.is_open,
        conversation_active=conversation.status == Conversation.Status.ACTIVE,
        needs_human=conversation.needs_human,
        last_user_message_at=conversation.last_user_message_at,
    )


def _phone_of(customer: Customer) -> str:
    # A conversation starts from a cart with a phone; a person known only by Meta's user id
    # has none, and nothing is ever queued for them.
    if customer.phone is None:
        raise ValueError(f"customer {customer.pk} has no phone to write to")
    return customer.phone
