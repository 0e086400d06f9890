"""The recovery lifecycle: every change of a conversation's or a cart's status happens here.

Open, supersede, convert, expire, opt-out, hand-off, close by hand, resolve, erase: each is one
function, and nothing else in the code writes `Conversation.status`, `close_reason` or
`Abandonment.status` (tests/recovery/test_lifecycle.py checks the code for other writers).

It only writes rows: callers own the transaction, the locks and what goes out (a template, a
thank-you, a farewell), so that any service may call it without an import cycle.

One lock order for every transaction that writes a cart and its conversation: the cart, then
the conversation (`conversation_lock`). PostgreSQL re-checks a conversation's foreign key to its
cart at COMMIT when the row was written twice in one transaction, taking a share lock on the
cart: a path that held the conversation first would then wait for a cart held by someone who
waits for the conversation (docs/architecture.md, "Locks").
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from compliance.gate import Reason
from compliance.lgpd import is_erased, phone_digest
from core.db import retry_on_lock_conflict
from messaging import statuses
from messaging.models import Message
from recovery.models import Abandonment, Conversation, Customer

logger = logging.getLogger(__name__)

# A cart still being chased: the states an opt-out declines and the window sweep expires.
_CHASED = (Abandonment.Status.INITIATED, Abandonment.Status.ACTIVE)


def cart_lock(abandonment_id: int) -> None:
    """Lock a cart's row until the transaction ends: always before its conversation's.

    FOR NO KEY UPDATE, the lock an UPDATE that keeps the keys takes: it orders the writers of
    the cart and lets foreign-key checks (FOR KEY SHARE) of rows that point at it through.
    """
    list(Abandonment.objects.select_for_update(no_key=True).filter(pk=abandonment_id).values_list("pk"))


def _open_carts_lock(customer: Customer) -> list[int]:
    """Lock the carts of the customer's open conversations (before writing those conversations)."""
    ids = list(
        Conversation.objects.filter(customer=customer, status__in=Conversation.OPEN_STATUSES)
        .order_by("abandonment_id")
        .values_list("abandonment_id", flat=True)
    )
    for abandonment_id in ids:
        cart_lock(abandonment_id)
    return ids


def conversation_lock(conversation_id: int) -> Conversation:
    """The conversation, locked until the transaction ends, its cart locked first.

    Raises Conversation.DoesNotExist. The cart of a conversation never changes, so reading it
    before the locks is safe.
    """
    abandonment_id = (
        Conversation.objects.filter(pk=conversation_id).values_list("abandonment_id", flat=True).first()
    )
    if abandonment_id is None:
        raise Conversation.DoesNotExist(f"No conversation {conversation_id}.")
    cart_lock(abandonment_id)
    return (
        Conversation.objects.select_for_update(of=("self",), no_key=True)
        .select_related("customer")
        .get(pk=conversation_id)
    )


def abandonment_create(*, customer: Customer, held_out: bool = False, **fields: Any) -> Abandonment:
    """A new cart: skipped at once for a customer who opted out or was erased (SPEC §14), held
    out when the holdout draw says so (SPEC §13), otherwise initiated."""
    erased = is_erased(customer)
    # An opt-out is the older and stronger promise: it names the skip when both hold.
    skip_reason = "opted_out" if customer.opted_out else ("erased" if erased else "")
    if skip_reason:
        status = Abandonment.Status.SKIPPED
    elif held_out:
        status = Abandonment.Status.HELD_OUT
    else:
        status = Abandonment.Status.INITIATED
    return Abandonment.objects.create(
        customer=customer,
        status=status,
        skip_reason=skip_reason,
        held_out=held_out and not skip_reason,
        **fields,
    )


def conversations_supersede(*, customer: Customer, now: datetime) -> int:
    """Close the customer's open conversation: the newer cart takes its place (one open each)."""
    _open_carts_lock(customer)
    return Conversation.objects.filter(customer=customer, status__in=Conversation.OPEN_STATUSES).update(
        status=Conversation.Status.CLOSED,
        close_reason=Conversation.CloseReason.SUPERSEDED,
        closed_at=now,
        updated_at=now,
    )


def conversation_open(
    *,
    abandonment: Abandonment,
    customer: Customer,
    now: datetime,
    first_contact_queued: bool,
    sequence_step: int = 0,
) -> Conversation:
    """The cart's conversation, awaiting the customer's first answer.

    With `first_contact_queued` it is created already counting the template the caller queues
    next (the sequence's step `sequence_step`), which saves that queueing an UPDATE.
    """
    if not first_contact_queued:
        return Conversation.objects.create(abandonment=abandonment, customer=customer)
    return Conversation.objects.create(
        abandonment=abandonment,
        customer=customer,
        message_count=1,
        last_message_at=now,
        sequence_step=sequence_step,
    )


def abandonment_convert(
    *, abandonment: Abandonment, payment_id: str, link_type: str, paid_amount: Decimal | None, now: datetime
) -> Conversation | None:
    """The cart is paid: converted, and its conversation (if any, locked here) closed.

    A held-out cart keeps status held_out: its payment is a conversion "without Sara", recorded
    for the comparison (payment_id, converted_at, paid_amount) and never counted as recovered.
    """
    abandonment.payment_id = payment_id
    abandonment.conversion_link = link_type
    abandonment.converted_at = now
    abandonment.paid_amount = paid_amount
    fields = ["payment_id", "conversion_link", "converted_at", "paid_amount", "updated_at"]
    if abandonment.held_out:
        abandonment.save(update_fields=fields)
        return None
    abandonment.status = Abandonment.Status.CONVERTED
    abandonment.save(update_fields=["status", *fields])
    conversation = (
        Conversation.objects.select_for_update(of=("self",), no_key=True)
        .filter(abandonment=abandonment)
        .first()
    )
    if conversation is None:
        return None
    conversation.status = Conversation.Status.CLOSED
    conversation.close_reason = Conversation.CloseReason.CONVERTED
    conversation.closed_at = now
    conversation.save(update_fields=["status", "close_reason", "closed_at", "updated_at"])
    return conversation


def conversation_expire(*, conversation_id: int, abandonment_id: int, now: datetime) -> int:
    """Close a conversation silent for too long and expire its cart; 0 if it closed meanwhile."""
    cart_lock(abandonment_id)
    closed = Conversation.objects.filter(pk=conversation_id, status__in=Conversation.OPEN_STATUSES).update(
        status=Conversation.Status.CLOSED,
        close_reason=Conversation.CloseReason.EXPIRED,
        closed_at=now,
        updated_at=now,
    )
    if closed:
        Abandonment.objects.filter(pk=abandonment_id, status__in=_CHASED).update(
            status=Abandonment.Status.EXPIRED, updated_at=now
        )
    return closed


@transaction.atomic
def optout_register(
    *, phone: str | None = None, whatsapp_user_id: str | None = None, reason: str, note: str = ""
) -> Customer:
    """Opt a person out (creating the customer if Sara never met them) and close what is open.

    The person is found by phone, else by WhatsApp user id (BSUID): Meta may send only the
    latter, and an unknown BSUID becomes an opted-out identity that nothing is ever sent to.
    Once registered, nothing but the farewell (queued by the caller) ever goes out (LGPD).
    `note` is what support typed when opting a person out by hand (how they asked).
    """
    customer = _customer_by_identity(phone=phone, whatsapp_user_id=whatsapp_user_id)
    # Locked first, and the time taken after: a send already leaving holds the row (see
    # messaging.services.outbound), so nothing reaches Meta after `opted_out_at`.
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    now = timezone.now()
    Customer.objects.filter(pk=customer.pk, opted_out=False).update(
        opted_out=True, opted_out_at=now, opted_out_reason=reason[:50], opt_out_note=note
    )
    _customer_close(
        customer,
        abandonment_ids=_open_carts_lock(customer),
        reason=Conversation.CloseReason.OPTED_OUT,
        cart_status=Abandonment.Status.DECLINED,
        now=now,
    )
    # Replies still queued (some waiting for a send slot) are cancelled with the opt-out, in its
    # transaction: they never take a slot, and the send-time gate is the second line, not the only one.
    statuses.pending_cancel(
        Message.objects.filter(conversation__customer=customer).exclude(purpose=Message.Purpose.FAREWELL),
        code=Reason.OPTED_OUT,
        detail="The customer opted out before this message went out.",
        now=now,
    )
    customer.refresh_from_db()
    logger.info("customer opted out", extra={"customer_id": customer.pk, "reason": reason})
    return customer


def _customer_close(
    customer: Customer, *, abandonment_ids: list[int], reason: str, cart_status: str, now: datetime
) -> int:
    """The customer's open conversations close for `reason` and the carts still chased among
    `abandonment_ids` take `cart_status`. Returns how many conversations closed."""
    closed = Conversation.objects.filter(customer=customer, status__in=Conversation.OPEN_STATUSES).update(
        status=Conversation.Status.CLOSED, close_reason=reason, closed_at=now, updated_at=now
    )
    Abandonment.objects.filter(pk__in=abandonment_ids, status__in=_CHASED).update(
        status=cart_status, updated_at=now
    )
    return closed


def customer_find(*, phone: str, user_id: str) -> Customer | None:
    """The customer with this phone, else the one with this BSUID; an erased person's record
    too (it keeps their identities as digests, so they stay blocked). A live record wins over
    an erased one."""
    live_first = F("erased_at").asc(nulls_first=True)
    for field, value in (("phone", phone), ("whatsapp_user_id", user_id)):
        if value:
            lookup = {f"{field}__in": [value, phone_digest(value)]}
            found = Customer.objects.filter(**lookup).order_by(live_first).first()
            if found is not None:
                return found
    return None


def _customer_by_identity(*, phone: str | None, whatsapp_user_id: str | None) -> Customer:
    # An erased person's phone or BSUID is their erased record (a digest): the opt-out lands
    # there and the identity is not stored again.
    if not phone and not whatsapp_user_id:
        raise ValueError("An opt-out needs a phone or a WhatsApp user id.")
    found = customer_find(phone=phone or "", user_id=whatsapp_user_id or "")
    if found is None:
        customer, _ = Customer.objects.get_or_create(
            phone=phone or None, whatsapp_user_id=whatsapp_user_id or None
        )
        return customer
    if phone and not found.phone:
        # Known by BSUID alone, and the phone is free (no customer has it): now known by both.
        Customer.objects.filter(pk=found.pk).update(phone=phone)
    return found


def customer_number_retire(*, customer: Customer, now: datetime) -> int:
    """The person moved to a number another customer record already holds: this record's open
    conversations close and its queued messages are cancelled, so nothing more reaches the old
    number. Returns how many conversations closed."""
    open_conversations = Conversation.objects.filter(customer=customer, status__in=Conversation.OPEN_STATUSES)
    closed = _customer_close(
        customer,
        abandonment_ids=list(open_conversations.values_list("abandonment_id", flat=True)),
        reason=Conversation.CloseReason.NUMBER_CHANGED,
        cart_status=Abandonment.Status.EXPIRED,
        now=now,
    )
    statuses.pending_cancel(
        Message.objects.filter(conversation__customer=customer),
        code="number_changed",
        detail="The customer moved to another WhatsApp number before this message went out.",
        now=now,
    )
    return closed


def conversation_customer_wrote(conversation: Conversation) -> tuple[set[str], set[str]]:
    """A customer's message makes a waiting conversation and a new cart active (in memory).

    Returns the conversation's and the cart's changed fields: the caller saves its turn once.
    """
    fields: set[str] = set()
    cart_fields: set[str] = set()
    if conversation.status == Conversation.Status.AWAITING_RESPONSE:
        conversation.status = Conversation.Status.ACTIVE
    fields.add("status")
    abandonment = conversation.abandonment
    if abandonment.status == Abandonment.Status.INITIATED:
        abandonment.status = Abandonment.Status.ACTIVE
        cart_fields.add("status")
    return fields, cart_fields


def conversation_open_held(
    *, abandonment: Abandonment, customer: Customer, reason: str, now: datetime
) -> Conversation:
    """The cart's conversation, opened already waiting for a person: nothing goes out until one looks."""
    return Conversation.objects.create(
        abandonment=abandonment, customer=customer, needs_human=True, handoff_reason=reason, handoff_at=now
    )


def conversations_hold(*, abandonment: Abandonment, reason: str, now: datetime) -> int:
    """Stop chasing the cart until a person looks: its open conversation waits for one (SPEC §4.4)."""
    return Conversation.objects.filter(
        abandonment=abandonment, status__in=Conversation.OPEN_STATUSES, needs_human=False
    ).update(needs_human=True, handoff_reason=reason, handoff_at=now, updated_at=now)


def conversation_hand_off(conversation: Conversation, *, reason: str, now: datetime) -> set[str]:
    """Flag the conversation for a person: Sara stays silent until one takes it (in memory)."""
    conversation.needs_human = True
    conversation.handoff_reason = reason
    conversation.handoff_at = now
    return {"needs_human", "handoff_reason", "handoff_at"}


@retry_on_lock_conflict
def conversation_close(*, conversation_id: int, reason: str) -> Conversation:
    """Close a conversation by hand (support staff or an integration); its cart stops being chased.

    The staff's words are kept as the reason (the transcript shows why); none given is MANUAL.
    A closed conversation waits for nobody and belongs to nobody: it leaves the inbox and the
    person's list (the hand-off's reason and time stay, as history).
    """
    now = timezone.now()
    with transaction.atomic():
        conversation = conversation_lock(conversation_id)
        if conversation.is_open:
            conversation.status = Conversation.Status.CLOSED
            conversation.close_reason = reason[:200] or Conversation.CloseReason.MANUAL
            conversation.closed_at = now
            conversation.needs_human = False
            conversation.assigned_to = None
            conversation.assigned_at = None
            fields = ["status", "close_reason", "closed_at", "needs_human", "assigned_to", "assigned_at"]
            conversation.save(update_fields=[*fields, "updated_at"])
            # Pending sends of a closed conversation stay pending; the gate still checks them.
    return conversation


def conversation_resolve(conversation: Conversation, *, now: datetime) -> set[str]:
    """A person finished the open, locked conversation: closed (resolved), no one waits (in
    memory; the hand-off saves it with the resolver, in one UPDATE)."""
    conversation.status = Conversation.Status.CLOSED
    conversation.close_reason = Conversation.CloseReason.RESOLVED
    conversation.closed_at = now
    conversation.needs_human = False
    return {"status", "close_reason", "closed_at", "needs_human"}


def conversation_reopen(conversation: Conversation, *, reason: str, now: datetime) -> set[str]:
    """A resolved, locked conversation opens again, waiting for a person (in memory).

    The customer wrote after a person resolved it, or staff reopened it by hand: it goes back
    to the inbox, never to Sara's sales pitch (she stays silent while it waits for a person).
    Nobody holds it until someone takes it. The caller checks that the customer has no other
    open conversation (one open each).
    """
    conversation.status = Conversation.Status.ACTIVE
    conversation.close_reason = ""
    conversation.closed_at = None
    conversation.assigned_to = None
    conversation.assigned_at = None
    return {
        "status",
        "close_reason",
        "closed_at",
        "assigned_to",
        "assigned_at",
        *conversation_hand_off(conversation, reason=reason, now=now),
    }


def conversations_erase(*, conversation_ids: list[int], now: datetime) -> int:
    """Close what is open of an erased person's conversations (LGPD erasure)."""
    return Conversation.objects.filter(pk__in=conversation_ids, status__in=Conversation.OPEN_STATUSES).update(
        status=Conversation.Status.CLOSED, close_reason=Conversation.CloseReason.ERASED, closed_at=now
    )


def conversation_customer_message(
    conversation: Conversation, *, written_at: datetime, now: datetime
) -> set[str]:
    """A customer message joined the held conversation: counted, the customer's last word dated.
    Returns the fields changed; the caller saves them with the rest of its turn."""
    if conversation.last_user_message_at is None or written_at > conversation.last_user_message_at:
        conversation.last_user_message_at = written_at
    conversation.last_message_at = now
    conversation.message_count += 1
    return {"last_user_message_at", "last_message_at", "message_count"}


def conversation_message_queued(
    conversation: Conversation, *, at: datetime, exchange: bool = False
) -> set[str]:
    """A message was queued in the held conversation: counted, and one exchange more when it is
    Sara's answer to the customer. Returns the fields changed; the caller saves them."""
    conversation.message_count += 1
    conversation.last_message_at = at
    fields = {"message_count", "last_message_at"}
    if exchange:
        conversation.exchanges += 1
        fields.add("exchanges")
    return fields


def conversation_exchanges_reset(conversation: Conversation) -> set[str]:
    """Sara takes the conversation back from a person: her count of exchanges starts again."""
    conversation.exchanges = 0
    return {"exchanges"}


def conversation_message_counted(*, conversation_id: int, at: datetime) -> int:
    """A message was queued in the conversation: its count and last message time move."""
    return Conversation.objects.filter(pk=conversation_id).update(
        message_count=F("message_count") + 1, last_message_at=at
    )


def first_contact_settled(*, conversation_id: int, sent: bool, now: datetime) -> int:
    """The first template went out or failed for good (called by the send path, in its transaction)."""
    if sent:
        return first_contact_delivered(conversation_id=conversation_id, now=now)
    return first_contact_failed(conversation_id=conversation_id)


def first_contact_failed(*, conversation_id: int) -> int:
    """The first template failed for good: the recovery never started, ops see an error."""
    return Conversation.objects.filter(
        pk=conversation_id, status=Conversation.Status.AWAITING_RESPONSE
    ).update(status=Conversation.Status.ERROR)


def first_contact_delivered(*, conversation_id: int, now: datetime) -> int:
    """An ops retry delivered a failed first contact: the recovery starts after all."""
    return Conversation.objects.filter(pk=conversation_id, status=Conversation.Status.ERROR).update(
        status=Conversation.Status.AWAITING_RESPONSE, updated_at=now
    )


def customer_erased(*, customer: Customer, digests: dict[str, str], reason: str, now: datetime) -> None:
    """The erased record: each identity replaced by its keyed digest, the name and the note gone.

    The reason (the request's channel and date, a ticket number) stays on the record with the
    time, so support can tell why a number they search for is an erased record.
    """
    for name, digest in digests.items():
        setattr(customer, name, digest)
    customer.name = ""
    customer.whatsapp_username = ""
    customer.opt_out_note = ""
    customer.erased_at = now
    customer.erasure_reason = reason
    customer.save(
        update_fields=[
            *digests,
            "name",
            "whatsapp_username",
            "opt_out_note",
            "erased_at",
            "erasure_reason",
            "updated_at",
        ]
    )
