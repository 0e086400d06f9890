"""One inbound message read and answered (SPEC §5), exactly once however often it runs."""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compliance import optout
from core import metrics
from core.db import release_connection
from core.strict_json import json_object
from messaging import pricing, statuses
from messaging import sql as messaging_sql
from messaging.handlers import AnswerLater
from messaging.locks import sender_turn
from messaging.models import Message
from messaging.services.inbound import message_change_record
from messaging.services.receipts import read_receipt_start, read_receipt_wait
from messaging.services.voice import message_transcribe
from recovery import identity, lifecycle
from recovery import sql as recovery_sql
from recovery.lifecycle import optout_register
from recovery.models import Abandonment, Conversation, Customer
from recovery.outbox import message_queue
from recovery.quotes import quote_keep
from recovery.selectors import shop_knowledge
from recovery.sequence import QuickReply
from sara import agent, rules
from sara.guardrails import Guarded
from sara.interpretation import Context, Interpretation, Turn
from sara.knowledge import ShopKnowledge

logger = logging.getLogger(__name__)

HISTORY_SIZE = 10
# How far back unprocessed messages are looked for to join a burst: a burst is a chain of
# messages each within SARA_BURST_SECONDS of the previous one, never this long in practice.
BURST_LOOKBACK = timedelta(minutes=15)


class Outcome(enum.StrEnum):
    ALREADY_PROCESSED = "already_processed"
    NO_CONVERSATION = "no_conversation"
    OPTED_OUT = "opted_out"
    OPT_OUT_REGISTERED = "opt_out_registered"
    ASKED_FOR_TEXT = "asked_for_text"
    HANDED_OFF = "handed_off"
    WAITING_FOR_HUMAN = "waiting_for_human"
    REPLIED = "replied"
    NOT_A_TURN = "not_a_turn"  # a reaction, sticker, edit...: kept, never answered nor counted
    IDENTITY_MOVED = "identity_moved"
    PREFERENCE_RECORDED = "preference_recorded"
    # A newer message of the same burst answers for this one.
    IN_BURST = "in_burst"
    # The customer wrote after a person resolved the conversation: back in the inbox.
    BACK_TO_A_PERSON = "back_to_a_person"


# Meta's marketing "stop" (the person turned marketing messages off in WhatsApp) is an opt-out.
MARKETING_STOP_REASON = "meta_marketing_stop"


def open_conversation_for(
    phone: str, *, lock: bool = True, lock_customer: bool = False
) -> Conversation | None:
    """The open conversation of the customer with this phone, if any.

    The database allows one open conversation per customer (a new cart supersedes the older
    one), so there is nothing to choose between. With `lock`, the cart and the conversation
    rows stay locked until the transaction ends; with `lock_customer`, the customer's too.
    """
    # The one lock order (recovery.lifecycle): customer, cart, conversation. The other way
    # round, a reply that counts a discount offer deadlocks with a payment arriving meanwhile.
    # Plain SQL (recovery.sql): every customer message reads it twice.
    return recovery_sql.open_conversation(phone, lock=lock, lock_customer=lock_customer)


def process_inbound(*, message_id: int, wait_for_burst: bool = True) -> Outcome:
    """Process one inbound message; a repeat (retry, redelivery, sweep) changes nothing.

    Messages a customer sends in a row (a burst, SPEC §5) are read together and answered once:
    the newest answers for all, once SARA_BURST_SECONDS have passed without another one
    (`AnswerLater` until then, unless `wait_for_burst` is off); the older ones leave it to it.

    The AI is asked first, reading without locks and holding no connection during the call
    (`_interpret_ahead`). Then everything is decided and written once, in one transaction that
    locks the message row (a repeat waits, then sees "processed") and the conversation,
    re-checking everything under the locks. Should that decision need a reading the first look
    did not foresee (the conversation changed meanwhile), it stops before writing anything, the
    AI is asked, and the decision runs again.
    """
    received = messaging_sql.inbound_message(message_id)
    if received is None or received.status != Message.Status.RECEIVED:
        # Processed already (a status never goes back to received), or no such inbound message.
        return Outcome.ALREADY_PROCESSED
    with sender_turn(received.wa_id or str(received.metadata.get("user_id") or "")) as waited:
        if received.kind == Message.Kind.AUDIO:
            # A voice note becomes text first: the download and the transcription hold no lock.
            message_transcribe(message_id=message_id)
        burst = burst_of(received)
        if burst[-1][0] != message_id:
            return Outcome.IN_BURST
        due_at = burst[-1][1] + _burst_window()
        now = timezone.now()
        if wait_for_burst and len(burst) < BURST_MAX and due_at > now:
            raise AnswerLater((due_at - now).total_seconds())
        if len(burst) > 1:
            waited = True  # the look reads the burst's words together, not this message alone
        # Read again only if it may have changed: transcribed, or processed by whoever held the
        # sender's turn meanwhile (the locked decision re-checks everything in any case).
        look = _interpret_ahead(
            message_id, None if waited or received.kind == Message.Kind.AUDIO else received
        )
        decision = _decide_and_write(message_id, look)
        while isinstance(decision, Context):
            # The answer needs a reading the first look did not foresee: ask, then decide again.
            release_connection()
            decision = _decide_and_write(message_id, replace(look, interpretation=agent.interpret(decision)))
        return decision


@dataclass(frozen=True)
class _Look:
    """What the look without locks found, so that the decision does not read it again.

    The message's words do not change once it is received (a voice note is transcribed
    before the look), so neither does their opt-out match; the shop's knowledge is kept for
    the product it was read with.
    """

    interpretation: Interpretation | None = None
    # The words read (a burst's, joined): the reading stands only for these same words.
    text: str = ""
    match: optout.Match | None = None
    knowledge: ShopKnowledge | None = None
    knowledge_product_id: int | None = None

    @property
    def may_opt_out(self) -> bool:
        """Whether the decision may opt the customer out: the customer's row is then locked
        first, as an opt-out writes it before the cart (the one lock order)."""
        reading = self.interpretation
        wants_out = self.match in (optout.Match.STRONG, optout.Match.WEAK)
        return wants_out or (reading is not None and reading.intent == "opt_out")

    def knowledge_for(self, product_id: int | None) -> ShopKnowledge | None:
        return (
            self.knowledge if self.knowledge is not None and self.knowledge_product_id == product_id else None
        )


def _interpret_ahead(message_id: int, message: Message | None = None) -> _Look:
    """The interpreter's reading, when a look without locks says the answer will need one."""
    if message is None:
        message = messaging_sql.inbound_message(message_id)
    if message is None or message.status != Message.Status.RECEIVED:
        return _Look()
    joined = _read_with_burst(message, lock=False)
    _, customer, conversation, match = _situation(message, lock=False, match=joined.match)
    # An open conversation always has its customer.
    if (
        conversation is None
        or customer is None
        or customer.opted_out
        or not _wants_interpretation(conversation, message, match)
    ):
        return _Look(match=match)
    context = _context(conversation, message, weak_optout=match is optout.Match.WEAK)
    release_connection()
    # Sara takes the message: the customer sees it read and "digitando…" while the AI reads.
    started = time.monotonic()
    receipt = read_receipt_start(wamid=message.whatsapp_message_id) if message.whatsapp_message_id else None
    interpretation = agent.interpret(context)
    read_receipt_wait(
        receipt, seconds=settings.WHATSAPP_READ_RECEIPT_TIMEOUT_SECONDS - (time.monotonic() - started)
    )
    return _Look(
        interpretation=interpretation,
        text=message.text,
        match=match,
        knowledge=context.knowledge,
        knowledge_product_id=conversation.abandonment.product_id,
    )


def _decide_and_write(message_id: int, look: _Look) -> Outcome | Context:
    """The decision, written; or, with nothing written, the Context the AI must read first."""
    with transaction.atomic():
        message = messaging_sql.inbound_message(message_id, lock=True)
        if message is None or message.status != Message.Status.RECEIVED:
            return Outcome.ALREADY_PROCESSED
        joined = _read_with_burst(message, lock=True)
        if look.text and look.text != message.text:
            # The burst changed since the look (a message joined or was answered): read again.
            look = replace(look, interpretation=None, match=None)
        if joined.match is not None:
            look = replace(look, match=joined.match)
        outcome = _process(message, look)
        if isinstance(outcome, Context):
            return outcome
        statuses.inbound_processed(message, now=timezone.now())
        message.save(
            update_fields=[
                "status",
                "processed_at",
                "conversation",
                "intent",
                "sentiment",
                "tokens_used",
                "ai_model",
            ]
        )
        if joined.ids:
            # Read and answered with the newest: one exchange for the whole burst.
            statuses.burst_processed(joined.ids, answered_by=message)
    logger.info("inbound processed", extra={"message_id": message_id, "outcome": str(outcome)})
    return outcome


# A customer pasting a long text in pieces is answered after this many, typing or not.
BURST_MAX = 10


def _burst_window() -> timedelta:
    return timedelta(seconds=settings.SARA_BURST_SECONDS)


def burst_of(message: Message) -> list[tuple[int, datetime]]:
    """The unanswered messages of the sender's burst holding `message`: (id, arrival), oldest first.

    A burst is a chain of text messages from one sender, each arriving within
    SARA_BURST_SECONDS of the one before, none answered yet. Arrival is our clock (the row's
    created_at): Meta's timestamps have whole seconds and a redelivery arrives late.
    """
    alone = [(message.pk, message.created_at)]
    window = _burst_window()
    if window <= timedelta(0) or message.kind not in Message.TEXT_KINDS or not message.wa_id:
        return alone
    rows = list(
        Message.objects.filter(
            direction=Message.Direction.IN,
            status=Message.Status.RECEIVED,
            wa_id=message.wa_id,
            kind__in=Message.TEXT_KINDS,
            created_at__gte=message.created_at - BURST_LOOKBACK,
        )
        .order_by("created_at", "pk")
        .values_list("pk", "created_at")
    )
    chains: list[list[tuple[int, datetime]]] = []
    for pk, at in rows:
        if chains and at - chains[-1][-1][1] <= window:
            chains[-1].append((pk, at))
        else:
            chains.append([(pk, at)])
    for chain in chains:
        if any(pk == message.pk for pk, _ in chain):
            return chain
    return alone


@dataclass(frozen=True)
class _Joined:
    """The burst's other messages read with the newest, and the opt-out match of them all."""

    ids: tuple[int, ...] = ()
    match: optout.Match | None = None


def _read_with_burst(message: Message, *, lock: bool) -> _Joined:
    """Give `message` the words of its whole burst (in memory only); the other messages' ids.

    Only messages before it join: a newer one answers for it instead. Each message keeps its
    own opt-out match: "PARAR" sent alone is a strong match whatever came before it.
    """
    burst = [pk for pk, _ in burst_of(message)]
    if message.pk not in burst:
        return _Joined()
    earlier = burst[: burst.index(message.pk)]
    if not earlier:
        return _Joined()
    rows = Message.objects.filter(pk__in=earlier, status=Message.Status.RECEIVED).order_by("created_at", "pk")
    if lock:
        rows = rows.select_for_update()
    found = list(rows.values_list("pk", "text"))
    if not found:
        return _Joined()
    texts = [*(text for _, text in found if text.strip()), message.text]
    matches = {optout.detect(text) for text in texts}
    message.text = "\n".join(texts)
    match = next(m for m in (optout.Match.STRONG, optout.Match.WEAK, optout.Match.NONE) if m in matches)
    return _Joined(ids=tuple(pk for pk, _ in found), match=match)


def _situation(
    message: Message, *, lock: bool, match: optout.Match | None = None, lock_customer: bool = False
) -> tuple[str, Customer | None, Conversation | None, optout.Match]:
    """The sender's phone, customer and open conversation, and the message's opt-out match
    (`match` when the caller has it already).

    The sender is matched by phone, else by the BSUID Meta sends in its place; the open
    conversation is always found through the customer's phone (the one replies go to).
    """
    phone = identity.sender_phone(message.wa_id)
    conversation = open_conversation_for(phone, lock=lock, lock_customer=lock_customer) if phone else None
    customer: Customer | None
    if conversation is not None:
        customer = conversation.customer
    else:
        customer = identity.customer_find(phone=phone, user_id=_user_id(message))
        if customer is not None and customer.phone and customer.phone != phone:
            conversation = open_conversation_for(customer.phone, lock=lock)
            customer = conversation.customer if conversation is not None else customer
    if match is None:
        match = optout.detect(message.text) if _reads_as_text(message) else optout.Match.NONE
    return phone, customer, conversation, match


def _at_limit(conversation: Conversation) -> bool:
    return conversation.needs_human or conversation.exchanges >= settings.SARA_MAX_EXCHANGES


def _reads_as_text(message: Message) -> bool:
    # A transcribed voice note is read like the text it says, opt-out keywords included; so is
    # the caption of a picture, a video or a document.
    return (
        message.kind in Message.TEXT_KINDS
        or bool(message.metadata.get("transcribed"))
        or (message.kind in Message.CAPTIONED_KINDS and bool(message.text.strip()))
    )


def _user_id(message: Message) -> str:
    return str(message.metadata.get("user_id") or "")


def _is_wordless(message: Message) -> bool:
    """Media, a location or a contact card with no words to read (SPEC §4.5)."""
    return message.kind in Message.WORDLESS_KINDS and not _reads_as_text(message)


def _is_readable(message: Message) -> bool:
    return _reads_as_text(message) and bool(message.text.strip())


def _quick_reply(message: Message) -> str:
    """Which of the first template's quick-reply buttons the customer tapped, if any (SPEC §15)."""
    if message.kind != Message.Kind.BUTTON:
        return ""
    body = (message.metadata.get("whatsapp") or {}).get("button")
    if not isinstance(body, dict):
        return ""
    return QuickReply.read(payload=str(body.get("payload") or ""), text=str(body.get("text") or ""))


def _wants_interpretation(conversation: Conversation, message: Message, match: optout.Match) -> bool:
    if match is optout.Match.STRONG:
        return False
    if _quick_reply(message) and not _at_limit(conversation):
        return False  # the tap says what the customer wants: no model needed
    if _at_limit(conversation):
        # The exchange limit stops Sara selling, not the customer leaving: a weak keyword match
        # still gets the interpreter's verdict (its reply is never sent).
        return match is optout.Match.WEAK
    return _is_readable(message)


def _process(message: Message, look: _Look) -> Outcome | Context:
    """Decide and write, under the locks; or, with nothing written, the Context to read first."""
    if message.kind in (Message.Kind.PREFERENCES, Message.Kind.USER_ID_UPDATE, Message.Kind.SYSTEM):
        return _identity_update(message)
    phone, customer, conversation, match = _situation(
        message, lock=True, match=look.match, lock_customer=look.may_opt_out
    )
    interpretation = look.interpretation
    if customer is not None and (_user_id(message) or message.metadata.get("username")):
        identity.customer_identity_note(
            customer, user_id=_user_id(message), username=str(message.metadata.get("username") or "")
        )
    if message.kind in Message.NOT_TURN_KINDS:
        return _not_a_turn(message, customer=customer, conversation=conversation)
    if conversation is None:
        return _without_conversation(message, phone=phone, customer=customer, match=match)
    message.conversation = conversation
    if customer is not None and customer.opted_out:  # an open conversation always has its customer
        return Outcome.OPTED_OUT
    if _is_wordless(message):
        return _wordless(message, conversation)
    tap = _quick_reply(message)
    if tap and match is not optout.Match.STRONG and not _at_limit(conversation):
        return _quick_reply_answer(message, conversation, tap)
    reads = _wants_interpretation(conversation, message, match)
    if reads and interpretation is None:
        # Nothing is written yet: the transaction ends untouched and the AI is asked.
        return _context(conversation, message, weak_optout=match is optout.Match.WEAK)
    if reads and interpretation is not None:
        _reading_keep(message, interpretation)
    turn = _Turn(conversation)
    turn.customer_wrote(message)
    knowledge = look.knowledge_for(conversation.abandonment.product_id)
    return _answer(turn, message, match=match, reading=interpretation if reads else None, knowledge=knowledge)


def _without_conversation(
    message: Message, *, phone: str, customer: Customer | None, match: optout.Match
) -> Outcome:
    """A message from a number with no open conversation: kept, unanswered, an opt-out honoured.

    With no cart to talk about, a weak keyword match is judged by the rules alone (no AI call).
    """
    wants_out = match is optout.Match.STRONG or (
        match is optout.Match.WEAK and rules.is_optout(Context(text=message.text))
    )
    user_id = _user_id(message)
    if (phone or user_id) and wants_out:
        # Also from a sender known only by BSUID: an unknown one becomes an opted-out identity.
        optout_register(phone=phone or None, whatsapp_user_id=user_id or None, reason="keyword")
        return Outcome.OPT_OUT_REGISTERED
    latest = _latest_conversation(customer)
    message.conversation = latest
    if latest is not None and customer is not None and _resolved_by_a_person(latest, customer):
        return _back_to_the_inbox(message, latest)
    return Outcome.NO_CONVERSATION


def _resolved_by_a_person(conversation: Conversation, customer: Customer) -> bool:
    return conversation.resolved_by_staff and not customer.opted_out and customer.erased_at is None


def _back_to_the_inbox(message: Message, resolved: Conversation) -> Outcome:
    """The customer wrote after a person resolved their conversation: it opens again, waiting
    for a person ("cliente voltou a escrever"). Sara stays silent: a person was the last to
    speak with this customer, and her sales pitch would start over from nothing."""
    conversation = lifecycle.conversation_lock(resolved.pk)
    if conversation.is_open:
        return Outcome.WAITING_FOR_HUMAN
    turn = _Turn(conversation)
    turn.fields |= lifecycle.conversation_reopen(
        conversation, reason=Conversation.HandoffReason.CUSTOMER_WROTE_AGAIN, now=timezone.now()
    )
    turn.customer_wrote(message)
    turn.save()
    message.conversation = conversation
    logger.info(
        "resolved conversation reopened: the customer wrote again", extra={"conversation_id": conversation.pk}
    )
    return Outcome.BACK_TO_A_PERSON


def _latest_conversation(customer: Customer | None) -> Conversation | None:
    # Kept in the customer's latest transcript, so support sees it where they read.
    return customer.conversations.order_by("-created_at").first() if customer is not None else None


# The intent each quick-reply button reads as.
_TAP_INTENT = {
    QuickReply.FINISH: "confirmation",
    QuickReply.QUESTION: "question",
    QuickReply.NOT_INTERESTED: "objection",
}


def _quick_reply_answer(message: Message, conversation: Conversation, tap: str) -> Outcome:
    """A tap on one of the first template's buttons: the customer answered (the window opens and
    the sequence stops), and the tap gets its own answer. "Não tenho interesse" pushes nothing:
    it ends this cart's sequence and offers PARAR; the customer may still write and be answered."""
    message.intent = _TAP_INTENT[tap]
    message.sentiment = "negative" if tap == QuickReply.NOT_INTERESTED else "positive"
    turn = _Turn(conversation)
    turn.customer_wrote(message)
    metadata = {"in_reply_to": message.pk, "quick_reply": tap}
    if tap == QuickReply.NOT_INTERESTED:
        turn.answer(purpose=Message.Purpose.REPLY, text=agent.QUICK_NOT_INTERESTED, metadata=metadata)
        return Outcome.REPLIED
    words = agent.QUICK_FINISH if tap == QuickReply.FINISH else agent.QUICK_QUESTION
    text = agent.compose_reply(words, cart=cart_figures(conversation.abandonment), offer_discount=False)
    turn.answer(purpose=Message.Purpose.REPLY, text=text, metadata=metadata)
    return Outcome.REPLIED


def _not_a_turn(message: Message, *, customer: Customer | None, conversation: Conversation | None) -> Outcome:
    """A reaction, a sticker, an edit, a revoke, an unsupported message: kept in the transcript,
    never answered, never counted as an exchange; an edit's words and a revoke are noted on the
    message they change."""
    message.conversation = conversation or _latest_conversation(customer)
    if message.kind in (Message.Kind.EDIT, Message.Kind.REVOKE):
        message_change_record(message=message)
    return Outcome.NOT_A_TURN


def _wordless(message: Message, conversation: Conversation) -> Outcome:
    """Media, a location or a contact card without words: at most one short question per
    conversation about what the customer needs, and never an exchange.

    The customer still wrote (their 24 h window opens). The question already sent is found on
    the outbound messages, under the conversation's lock, so two pictures at once ask once.
    """
    turn = _Turn(conversation)
    turn.customer_wrote(message)
    asked = Message.objects.filter(
        conversation=conversation, direction=Message.Direction.OUT, metadata__asks_for_text=True
    ).exists()
    if asked or conversation.needs_human:
        turn.save()
        return Outcome.NOT_A_TURN
    turn.answer(
        purpose=Message.Purpose.REPLY,
        text=agent.ASK_WHAT_YOU_NEED,
        metadata={"in_reply_to": message.pk, "asks_for_text": True},
        exchange=False,
    )
    return Outcome.ASKED_FOR_TEXT


def _identity_update(message: Message) -> Outcome:
    """Meta's news about the person: marketing stopped or resumed, a new number, a new BSUID."""
    raw = message.metadata.get("whatsapp") or {}
    phone = identity.sender_phone(message.wa_id)
    user_id = _user_id(message)
    if message.kind == Message.Kind.PREFERENCES:
        customer = identity.customer_find(phone=phone, user_id=user_id)
        if raw.get("value") == "stop" and (phone or user_id):
            customer = optout_register(
                phone=phone or None, whatsapp_user_id=user_id or None, reason=MARKETING_STOP_REASON
            )
        # "resume" is recorded and changes nothing: an opt-out is lifted by a person, not by Meta.
        message.conversation = _latest_conversation(customer)
        return Outcome.PREFERENCE_RECORDED
    if message.kind == Message.Kind.USER_ID_UPDATE:
        ids = json_object(raw.get("user_id"))
        customer = identity.user_id_change(
            previous=str(ids.get("previous") or ""), current=str(ids.get("current") or ""), phone=phone
        )
        message.conversation = _latest_conversation(customer)
        return Outcome.IDENTITY_MOVED
    notice = json_object(raw.get("system"))
    if notice.get("type") in ("user_changed_number", "customer_changed_number"):
        customer = identity.number_change(
            old_phone=phone,
            new_phone=identity.sender_phone(str(notice.get("wa_id") or notice.get("new_wa_id") or "")),
            new_user_id=str(notice.get("user_id") or ""),
            previous_user_id=str(notice.get("previous_user_id") or user_id),
        )
    elif notice.get("type") == "user_changed_user_id":
        customer = identity.user_id_change(
            previous=str(notice.get("previous_user_id") or ""),
            current=str(notice.get("user_id") or ""),
            phone=phone,
        )
    else:
        customer = identity.customer_find(phone=phone, user_id=user_id)
    message.conversation = _latest_conversation(customer)
    return Outcome.IDENTITY_MOVED


def _reading_keep(message: Message, interpretation: Interpretation) -> None:
    """The interpreter's reading, kept on the message (its model's cost counted once committed)."""
    message.intent = interpretation.intent
    message.sentiment = interpretation.sentiment
    message.tokens_used = interpretation.tokens_used
    if interpretation.tokens_used:
        message.ai_model = settings.OPENAI_MODEL
        transaction.on_commit(lambda: _count_model_cost(message.ai_model, message.tokens_used))


def _answer(
    turn: _Turn,
    message: Message,
    *,
    match: optout.Match,
    reading: Interpretation | None,
    knowledge: ShopKnowledge | None = None,
) -> Outcome:
    """What Sara does with the customer's message: let them go, wait for a person, or answer.

    `reading` is None when the message was not for the interpreter (no words to read, or a
    conversation at its limit with no opt-out to judge).
    """
    conversation = turn.conversation
    intent = reading.intent if reading is not None else ""
    if match is optout.Match.STRONG or intent == "opt_out":
        turn.save()
        # Not the keyword: the interpreter's reading said opt_out.
        reason = "keyword" if match is optout.Match.STRONG or reading is None else _optout_reason(reading)
        _opt_out(conversation, reason=reason)
        return Outcome.OPT_OUT_REGISTERED
    if _at_limit(conversation):
        if conversation.needs_human:
            turn.save()
            return Outcome.WAITING_FOR_HUMAN
        _hand_off(turn, reason=Conversation.HandoffReason.EXCHANGE_LIMIT)
        return Outcome.HANDED_OFF
    if intent == "human":
        # The customer asked for a person: one short note, and Sara is silent from now on.
        _hand_off(turn, reason=Conversation.HandoffReason.ASKED_FOR_PERSON)
        return Outcome.HANDED_OFF
    if reading is None:
        turn.answer(purpose=Message.Purpose.REPLY, text=agent.ASK_FOR_TEXT)
        return Outcome.ASKED_FOR_TEXT
    _reply(turn, message, reading, weak_optout=match is optout.Match.WEAK, knowledge=knowledge)
    return Outcome.REPLIED


def _reply(
    turn: _Turn,
    message: Message,
    interpretation: Interpretation,
    *,
    weak_optout: bool,
    knowledge: ShopKnowledge | None = None,
) -> None:
    """Sara's answer: the discount rule decides the offer, the guardrails check the words."""
    conversation = turn.conversation
    abandonment = conversation.abandonment
    cart = cart_figures(abandonment)
    # The last turns too: an unclear message right after a complaint is no moment to sell.
    context = _context(conversation, message, weak_optout=weak_optout, knowledge=knowledge)
    judgement = agent.judge(context, interpretation)
    offer = agent.should_offer_discount(cart, interpretation, judgement)
    if offer:
        abandonment.discount_offers += 1
        quote_keep(abandonment=abandonment, at=timezone.now())
        turn.cart_fields |= {"discount_offers", "quotes"}
    guarded = agent.guarded_reply(context, interpretation, offer_discount=offer)
    metadata = _reply_metadata(message, interpretation, offer=offer, guarded=guarded)
    if not judgement.push:
        metadata["judgement"] = "no_links" if not judgement.links else "no_push"
    turn.answer(
        purpose=Message.Purpose.REPLY,
        text=agent.compose_reply(guarded.text, cart=cart, offer_discount=offer, judgement=judgement),
        metadata=metadata,
    )


def _reply_metadata(
    message: Message, interpretation: Interpretation, *, offer: bool, guarded: Guarded
) -> dict[str, object]:
    """What the reply keeps for ops: what it answers, the offer, the tokens, any guardrail."""
    metadata: dict[str, object] = {
        "in_reply_to": message.pk,
        "discount_offered": offer,
        "fallback": interpretation.fallback,
    }
    if interpretation.ai_error:
        # The model failed (timeout, error, refusal, filter, cut-off answer): the rules answered.
        metadata["ai_error"] = interpretation.ai_error
    if interpretation.tokens_used:
        metadata["tokens"] = {
            "in": interpretation.tokens_in,
            "out": interpretation.tokens_out,
            "cached": interpretation.tokens_cached,
        }
    if guarded.violations:
        metadata["guardrail"] = {
            "violations": list(guarded.violations),
            "dropped_sentences": guarded.dropped,
            "action": "replaced" if guarded.replaced else "dropped",
        }
    return metadata


def _hand_off(turn: _Turn, *, reason: str) -> None:
    """Flag the conversation for a person and send the one short note saying so."""
    turn.fields |= lifecycle.conversation_hand_off(turn.conversation, reason=reason, now=timezone.now())
    turn.answer(purpose=Message.Purpose.HANDOFF, text=agent.HANDOFF)


class _Turn:
    """The changes one customer message makes to its locked conversation and cart, saved once."""

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self.fields: set[str] = set()
        self.cart_fields: set[str] = set()

    def customer_wrote(self, message: Message) -> None:
        conversation = self.conversation
        self.fields |= lifecycle.conversation_customer_message(
            conversation, written_at=message.whatsapp_timestamp or message.created_at, now=timezone.now()
        )
        fields, cart_fields = lifecycle.conversation_customer_wrote(conversation)
        self.fields |= fields
        self.cart_fields |= cart_fields

    def answer(self, *, purpose: str, text: str, metadata: dict | None = None, exchange: bool = True) -> None:
        """Queue Sara's answer (one exchange, unless `exchange` is false) and save the turn."""
        conversation = self.conversation
        reply = message_queue(
            conversation=conversation,
            purpose=purpose,
            text=text,
            metadata=metadata,
            update_conversation=False,
        )
        self.fields |= lifecycle.conversation_message_queued(
            conversation, at=reply.created_at, exchange=exchange
        )
        self.save()

    def save(self) -> None:
        # One UPDATE of the fields named per row: one turn per customer message.
        self.conversation.save(update_fields=[*sorted(self.fields), "updated_at"])
        if self.cart_fields:
            self.conversation.abandonment.save(update_fields=[*sorted(self.cart_fields), "updated_at"])


def cart_figures(abandonment: Abandonment) -> agent.CartFigures:
    """The cart as the agent reads it: figures, not the model."""
    product = abandonment.product
    discounted = abandonment.discounted_value()
    return agent.CartFigures(
        value=abandonment.value,
        payment_link=abandonment.payment_link,
        offers_so_far=abandonment.discount_offers,
        discount_percent=product.discount_percent if product is not None and discounted is not None else None,
        discounted_value=discounted,
        discount_link=product.discount_link if product is not None else "",
    )


def _context(
    conversation: Conversation,
    message: Message,
    *,
    weak_optout: bool,
    history: bool = True,
    knowledge: ShopKnowledge | None = None,
) -> Context:
    """What the interpreter reads: the message, the cart, the shop's knowledge and the last turns."""
    abandonment = conversation.abandonment
    product = abandonment.product
    cart = cart_figures(abandonment)
    return Context(
        text=message.text,
        customer_name=conversation.customer.name,
        product_name=product.name if product else "",
        product_description=product.description if product else "",
        value=abandonment.value,
        history=_history(conversation, exclude=message.pk) if history else [],
        weak_optout=weak_optout,
        knowledge=knowledge or shop_knowledge(product=product),
        payment_link=cart.payment_link,
        discount_link=cart.discount_link if cart.discount_available else "",
        discount_percent=cart.discount_percent,
        discounted_value=cart.discounted_value,
    )


def _optout_reason(interpretation: Interpretation) -> str:
    # A fallback opt-out was decided by the keyword rules, not by the AI.
    return "keyword" if interpretation.fallback else "ai"


def _opt_out(conversation: Conversation, *, reason: str) -> None:
    """Opt the customer out, close everything and send the one farewell allowed."""
    customer = conversation.customer
    optout_register(phone=customer.phone, whatsapp_user_id=customer.whatsapp_user_id, reason=reason)
    message_queue(conversation=conversation, purpose=Message.Purpose.FAREWELL, text=agent.FAREWELL)


def _history(conversation: Conversation, *, exclude: int) -> list[Turn]:
    recent = messaging_sql.recent_texts(conversation_id=conversation.pk, exclude=exclude, size=HISTORY_SIZE)
    return [
        Turn(role="customer" if d == Message.Direction.IN else "sara", text=t) for d, t in reversed(recent)
    ]


def _count_model_cost(model: str, tokens: int) -> None:
    metrics.MODEL_COST.labels(model).inc(float(pricing.model_cost_brl(model=model, tokens=tokens)))
