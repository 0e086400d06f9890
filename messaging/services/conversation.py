"""One inbound message read and answered (SPEC §5), exactly once however often it runs."""

from __future__ import annotations

import enum
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from compliance import optout
from compliance.services import optout_register
from messaging.locks import sender_turn
from messaging.models import Conversation, Message
from messaging.services.outbound import message_queue
from recovery.models import Abandonment, Customer
from recovery.phones import InvalidPhone, phone_from_wa_id
from sara import agent, rules
from sara.db import release_connection
from sara.interpretation import Context, Interpretation, Turn

logger = logging.getLogger(__name__)

HISTORY_SIZE = 10


class Outcome(enum.StrEnum):
    ALREADY_PROCESSED = "already_processed"
    NO_CONVERSATION = "no_conversation"
    OPTED_OUT = "opted_out"
    OPT_OUT_REGISTERED = "opt_out_registered"
    ASKED_FOR_TEXT = "asked_for_text"
    HANDED_OFF = "handed_off"
    WAITING_FOR_HUMAN = "waiting_for_human"
    REPLIED = "replied"


def open_conversation_for(customer: Customer) -> Conversation | None:
    """The customer's open conversation: active > error > awaiting_response, newest first."""
    priority = Case(
        When(status=Conversation.Status.ACTIVE, then=Value(0)),
        When(status=Conversation.Status.ERROR, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    # Lock the cart before the conversation, in the payment webhook's order: the other way round,
    # a reply that counts a discount offer deadlocks with a payment arriving during the AI call.
    list(
        Abandonment.objects.select_for_update(of=("self",))
        .filter(conversation__customer=customer, conversation__status__in=Conversation.OPEN_STATUSES)
        .values_list("pk", flat=True)
    )
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("abandonment__product", "customer")
        .filter(customer=customer, status__in=Conversation.OPEN_STATUSES)
        .annotate(priority=priority)
        .order_by("priority", "-created_at")
        .first()
    )


class _NeedsInterpretation(Exception):
    """Raised inside the first transaction when the answer needs the interpreter."""

    def __init__(self, context: Context) -> None:
        super().__init__("interpretation needed")
        self.context = context


def inbound_process(*, message_id: int) -> Outcome:
    """Process one inbound message; a repeat (retry, redelivery, sweep) changes nothing.

    Everything is decided and written in one transaction that locks the message row (a repeat
    waits, then sees "processed") and the conversation. When the answer needs the AI, that
    transaction is rolled back untouched, the AI is asked holding no lock and no connection,
    and the same decision runs again with its answer, re-checking everything under the locks.
    """
    sender = Message.objects.filter(pk=message_id).values_list("wa_id", flat=True).first() or ""
    with sender_turn(sender):
        interpretation: Interpretation | None = None
        while True:
            try:
                return _decide_and_write(message_id, interpretation)
            except _NeedsInterpretation as need:
                release_connection()
                interpretation = agent.interpret(need.context)


def _decide_and_write(message_id: int, interpretation: Interpretation | None) -> Outcome:
    with transaction.atomic():
        message = (
            Message.objects.select_for_update().filter(pk=message_id, direction=Message.Direction.IN).first()
        )
        if message is None or message.status != Message.Status.RECEIVED:
            return Outcome.ALREADY_PROCESSED
        outcome = _process(message, interpretation)
        message.status = Message.Status.PROCESSED
        message.processed_at = timezone.now()
        message.save(
            update_fields=["status", "processed_at", "conversation", "intent", "sentiment", "tokens_used"]
        )
    logger.info("inbound processed", extra={"message_id": message_id, "outcome": str(outcome)})
    return outcome


def _process(message: Message, interpretation: Interpretation | None) -> Outcome:
    try:
        phone = phone_from_wa_id(message.wa_id)
    except InvalidPhone:
        phone = ""
    customer = Customer.objects.filter(phone=phone).first() if phone else None
    conversation = open_conversation_for(customer) if customer else None
    match = optout.detect(message.text) if message.kind in Message.TEXT_KINDS else optout.Match.NONE

    if conversation is None:
        # An opt-out from any number is honoured, even with no conversation to close. With no
        # cart to talk about, a weak match is judged by the rules alone (no AI call for it).
        wants_out = match is optout.Match.STRONG or (
            match is optout.Match.WEAK and rules.is_optout(Context(text=message.text))
        )
        if phone and wants_out:
            optout_register(phone=phone, reason="keyword")
            return Outcome.OPT_OUT_REGISTERED
        if customer is not None:
            # Kept in the customer's latest transcript, so support sees what they wrote.
            message.conversation = customer.conversations.order_by("-created_at").first()
        return Outcome.NO_CONVERSATION
    if customer.opted_out:
        message.conversation = conversation
        return Outcome.OPTED_OUT

    message.conversation = conversation
    _record_customer_message(conversation, message)

    if match is optout.Match.STRONG:
        _opt_out(conversation, reason="keyword")
        return Outcome.OPT_OUT_REGISTERED
    if conversation.needs_human or conversation.exchanges >= settings.SARA_MAX_EXCHANGES:
        # The exchange limit stops Sara selling, not the customer leaving: a weak keyword match
        # still gets the interpreter's verdict (its reply is never sent).
        if match is optout.Match.WEAK:
            interpretation = _interpret(conversation, message, interpretation, weak_optout=True)
            if interpretation.intent == "opt_out":
                _opt_out(conversation, reason=_optout_reason(interpretation))
                return Outcome.OPT_OUT_REGISTERED
        if conversation.needs_human:
            return Outcome.WAITING_FOR_HUMAN
        conversation.needs_human = True
        conversation.save(update_fields=["needs_human", "updated_at"])
        message_queue(conversation=conversation, purpose=Message.Purpose.HANDOFF, text=agent.HANDOFF)
        _count_exchange(conversation)
        return Outcome.HANDED_OFF
    if message.kind not in Message.TEXT_KINDS or not message.text.strip():
        message_queue(conversation=conversation, purpose=Message.Purpose.REPLY, text=agent.ASK_FOR_TEXT)
        _count_exchange(conversation)
        return Outcome.ASKED_FOR_TEXT

    interpretation = _interpret(conversation, message, interpretation, weak_optout=match is optout.Match.WEAK)
    if interpretation.intent == "opt_out":
        _opt_out(conversation, reason=_optout_reason(interpretation))
        return Outcome.OPT_OUT_REGISTERED

    abandonment = conversation.abandonment
    offer = agent.should_offer_discount(abandonment, interpretation)
    text = agent.compose_reply(interpretation.reply, abandonment=abandonment, offer_discount=offer)
    message_queue(
        conversation=conversation,
        purpose=Message.Purpose.REPLY,
        text=text,
        metadata={"in_reply_to": message.pk, "discount_offered": offer, "fallback": interpretation.fallback},
    )
    if offer:
        abandonment.discount_offers += 1
        abandonment.save(update_fields=["discount_offers", "updated_at"])
    _count_exchange(conversation)
    return Outcome.REPLIED


def _interpret(
    conversation: Conversation, message: Message, known: Interpretation | None, *, weak_optout: bool
) -> Interpretation:
    """The interpreter's reading of the message with the cart and the last turns; kept on the message.

    Without a known reading this raises _NeedsInterpretation: the AI is never called inside
    the transaction (see inbound_process).
    """
    abandonment = conversation.abandonment
    product = abandonment.product
    context = Context(
        text=message.text,
        customer_name=conversation.customer.name,
        product_name=product.name if product else "",
        product_description=product.description if product else "",
        value=abandonment.value,
        history=_history(conversation, exclude=message.pk),
        weak_optout=weak_optout,
    )
    if known is None:
        raise _NeedsInterpretation(context)
    interpretation = known
    message.intent = interpretation.intent
    message.sentiment = interpretation.sentiment
    message.tokens_used = interpretation.tokens_used
    return interpretation


def _optout_reason(interpretation: Interpretation) -> str:
    # A fallback opt-out was decided by the keyword rules, not by the AI.
    return "keyword" if interpretation.fallback else "ai"


def _record_customer_message(conversation: Conversation, message: Message) -> None:
    written_at = message.whatsapp_timestamp or message.created_at
    if conversation.last_user_message_at is None or written_at > conversation.last_user_message_at:
        conversation.last_user_message_at = written_at
    conversation.last_message_at = timezone.now()
    conversation.message_count += 1
    if conversation.status == Conversation.Status.AWAITING_RESPONSE:
        conversation.status = Conversation.Status.ACTIVE
    conversation.save(
        update_fields=["last_user_message_at", "last_message_at", "message_count", "status", "updated_at"]
    )
    abandonment = conversation.abandonment
    if abandonment.status == abandonment.Status.INITIATED:
        abandonment.status = abandonment.Status.ACTIVE
        abandonment.save(update_fields=["status", "updated_at"])


def _count_exchange(conversation: Conversation) -> None:
    conversation.exchanges += 1
    conversation.save(update_fields=["exchanges", "updated_at"])


def _opt_out(conversation: Conversation, *, reason: str) -> None:
    """Opt the customer out, close everything and send the one farewell allowed."""
    optout_register(phone=conversation.customer.phone, reason=reason)
    message_queue(conversation=conversation, purpose=Message.Purpose.FAREWELL, text=agent.FAREWELL)


def _history(conversation: Conversation, *, exclude: int) -> list[Turn]:
    recent = (
        conversation.messages.exclude(pk=exclude)
        .exclude(text="")
        .order_by("-created_at", "-id")
        .values_list("direction", "text")[:HISTORY_SIZE]
    )
    return [
        Turn(role="customer" if d == Message.Direction.IN else "sara", text=t) for d, t in reversed(recent)
    ]


def conversation_close(*, conversation_id: int, reason: str) -> Conversation:
    """Close a conversation by hand (support staff or an integration); its cart stops being chased."""
    now = timezone.now()
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
        if conversation.is_open:
            conversation.status = Conversation.Status.CLOSED
            conversation.close_reason = reason[:200] or Conversation.CloseReason.MANUAL
            conversation.closed_at = now
            conversation.save(update_fields=["status", "close_reason", "closed_at", "updated_at"])
            # Pending sends of a closed conversation stay pending; the gate still checks them.
    return conversation
