"""Opening a recovery when a cart is abandoned, and converting it when the customer pays."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance.lgpd import is_erased, phone_digest
from core import metrics
from core.db import retry_on_lock_conflict
from core.text import brl
from messaging import sql as messaging_sql
from messaging.models import Message, Template, WebhookEvent
from recovery import lifecycle, sequence, sql
from recovery.errors import AbandonmentNotFound, AmountMismatch, PaymentIdReused, RecoveryError
from recovery.holdout import holdout_draw
from recovery.models import Abandonment, Conversation, Customer
from recovery.outbox import message_queue
from recovery.quotes import expected_amounts
from recovery.sequence import template_parameters
from sara import agent

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


class AbandonmentOutcome(enum.StrEnum):
    RECEIVED = "received"
    ALREADY_PROCESSED = "already_processed"
    SKIPPED = "skipped"
    HELD_OUT = "held_out"


@dataclass(frozen=True)
class AbandonmentResult:
    outcome: AbandonmentOutcome
    abandonment: Abandonment
    conversation: Conversation | None = None


@retry_on_lock_conflict
def abandonment_open(
    *,
    external_id: str,
    phone: str,
    name: str,
    external_user_id: str,
    external_product_id: str,
    payment_link: str,
    value: Decimal,
    payload: dict[str, Any],
) -> AbandonmentResult:
    """Customer, abandonment, conversation and first template in one transaction (SPEC §4.1)."""
    try:
        with transaction.atomic():
            return _open(
                external_id=external_id,
                phone=phone,
                name=name,
                external_user_id=external_user_id,
                external_product_id=external_product_id,
                payment_link=payment_link,
                value=value,
                payload=payload,
            )
    except IntegrityError:
        # The unique external_id said it: this abandonment was opened by an earlier delivery.
        existing = Abandonment.objects.select_related("conversation").filter(external_id=external_id).first()
        if existing is None:
            raise
        conversation = getattr(existing, "conversation", None)
        return AbandonmentResult(AbandonmentOutcome.ALREADY_PROCESSED, existing, conversation)


def _open(**data: Any) -> AbandonmentResult:
    customer, created = _customer_for_cart(phone=data["phone"], name=data["name"])
    abandonment = _cart_store(customer, data)
    if abandonment.status == Abandonment.Status.SKIPPED:
        logger.info(
            "abandonment skipped",
            extra={"abandonment_id": abandonment.pk, "reason": abandonment.skip_reason},
        )
        return AbandonmentResult(AbandonmentOutcome.SKIPPED, abandonment)
    now = timezone.now()
    if not created:
        # One open conversation per customer: the newer cart supersedes the older one.
        lifecycle.conversations_supersede(customer=customer, now=now)
    return _recovery_start(abandonment, customer, now=now)


# What an erased person's new cart keeps of its payload: no name, phone, e-mail or link.
_NEUTRAL = ("abandonmentId", "productId", "value", "source")


def _cart_store(customer: Customer, data: dict[str, Any]) -> Abandonment:
    """The cart, drawn for the holdout group, and the audit copy of its webhook."""
    erased = is_erased(customer)
    if erased:
        # An erased person's new cart is skipped without storing their data again: the audit
        # row keeps what the figures need and nothing that names them.
        data["payload"] = {
            "erased": True,
            **{k: data["payload"][k] for k in _NEUTRAL if k in data["payload"]},
        }
        data["external_user_id"] = ""
    product = sql.active_product(data["external_product_id"])
    # Opted-out and erased customers are skipped before the draw: they are in neither group.
    blocked = customer.opted_out or erased
    draw = None if blocked else holdout_draw(external_id=data["external_id"])
    abandonment = lifecycle.abandonment_create(
        customer=customer,
        held_out=bool(draw and draw.held_out),
        holdout_percent=draw.percent if draw else None,
        external_id=data["external_id"],
        product=product,
        external_product_id=data["external_product_id"],
        external_user_id=data["external_user_id"],
        value=data["value"],
        payment_link=data["payment_link"],
    )
    messaging_sql.webhook_event_insert(
        event_type=WebhookEvent.Type.ABANDONMENT,
        external_id=data["external_id"],
        payload=data["payload"],
        processed=True,
    )
    return abandonment


def _recovery_start(abandonment: Abandonment, customer: Customer, *, now: datetime) -> AbandonmentResult:
    """The first template goes out, unless a payment for the cart came first or it is held out."""
    early_payment, refused_payment = _payment_received_before(abandonment)
    if abandonment.held_out:
        # No conversation at all: nothing can be queued, followed up or answered for this cart.
        if early_payment is not None:
            link_type = early_payment.payload.get("linkType") or "original"
            _convert(abandonment, early_payment, link_type=link_type, thank=False)
        transaction.on_commit(metrics.HOLDOUT_CARTS.inc)
        logger.info("abandonment held out", extra={"abandonment_id": abandonment.pk})
        return AbandonmentResult(AbandonmentOutcome.HELD_OUT, abandonment)
    if early_payment is None and refused_payment:
        # A "paid" payment for this cart came first and does not match it: nobody chases a
        # customer who may have paid; a person looks first, and no template goes out.
        conversation = lifecycle.conversation_open_held(
            abandonment=abandonment,
            customer=customer,
            reason=Conversation.HandoffReason.PAYMENT_MISMATCH,
            now=now,
        )
        logger.warning(
            "abandonment held: an earlier payment does not match", extra={"abandonment_id": abandonment.pk}
        )
        return AbandonmentResult(AbandonmentOutcome.RECEIVED, abandonment, conversation)
    if early_payment is not None:
        # The customer paid before the cart reached Sara: never chase someone who already paid.
        conversation = lifecycle.conversation_open(
            abandonment=abandonment, customer=customer, now=now, first_contact_queued=False
        )
        _convert(
            abandonment,
            early_payment,
            link_type=early_payment.payload.get("linkType") or "original",
            thank=False,
        )
        logger.info("abandonment converted by an earlier payment", extra={"abandonment_id": abandonment.pk})
        return AbandonmentResult(AbandonmentOutcome.RECEIVED, abandonment, conversation)

    first = sequence.step_after(sequence.sequence_steps(), 0)
    at_once = first is not None and first.delay <= timedelta(0)
    conversation = lifecycle.conversation_open(
        abandonment=abandonment,
        customer=customer,
        now=now,
        first_contact_queued=at_once,
        sequence_step=first.order if first is not None and at_once else 0,
    )
    if first is not None and at_once:
        sequence.step_queue(conversation=conversation, step=first, now=now, update_conversation=False)
    # Otherwise the first step waits its delay: the window sweep sends it (a row with a due
    # time, never a broker countdown).
    logger.info(
        "abandonment opened", extra={"abandonment_id": abandonment.pk, "conversation_id": conversation.pk}
    )
    return AbandonmentResult(AbandonmentOutcome.RECEIVED, abandonment, conversation)


def _customer_for_cart(*, phone: str, name: str) -> tuple[Customer, bool]:
    """The cart's customer, locked until the transaction ends, and whether it was just created.

    An erased person is their erased record: the phone is not stored again.
    """
    digest = phone_digest(phone)
    customer = sql.customer_insert(phone=phone, name=name, erased_phone=digest)
    if customer is not None:
        return customer, True
    # One customer's carts open one at a time: a new row is its transaction's until it commits,
    # a known one is locked here. A concurrent second cart then sees the first's conversation
    # and supersedes it instead of failing the one-open-conversation constraint.
    found = {c.phone: c for c in Customer.objects.select_for_update().filter(phone__in=[phone, digest])}
    erased = found.get(digest)
    if erased is not None:
        # Erased on request: recognised by the digest, never contacted again (SPEC §14).
        return erased, False
    customer = found[phone]
    if name and customer.name != name and not customer.opted_out:
        customer.name = name
        customer.save(update_fields=["name", "updated_at"])
    return customer, False


def template_queue(
    *,
    conversation: Conversation,
    purpose: str,
    name: str,
    update_conversation: bool = True,
    sent_by: User | None = None,
    metadata: dict[str, Any] | None = None,
) -> Message:
    """Queue one of the recovery's templates (first contact, follow-up) for the conversation's cart.

    A person may send the follow-up template too (outside the 24 h window): `sent_by` names them.
    """
    return message_queue(
        conversation=conversation,
        purpose=purpose,
        template={
            "name": name,
            "language": settings.WHATSAPP_TEMPLATE_LANGUAGE,
            "parameters": template_parameters(conversation.abandonment),
        },
        update_conversation=update_conversation,
        sent_by=sent_by,
        metadata=metadata,
    )


class PaymentOutcome(enum.StrEnum):
    CONVERTED = "converted"
    ALREADY_PROCESSED = "already_processed"
    ALREADY_CONVERTED = "already_converted"
    IGNORED = "ignored"


@dataclass(frozen=True)
class PaymentResult:
    outcome: PaymentOutcome
    abandonment: Abandonment | None = None


def payment_ignore(*, payload: dict[str, Any]) -> PaymentResult:
    """A status other than "paid": kept for the record, nothing converts."""
    WebhookEvent.objects.create(
        type=WebhookEvent.Type.PAYMENT,
        payload=payload,
        processed=True,
        reference=str(payload.get("abandonmentId", ""))[:200],
        error="ignored: not paid",
    )
    return PaymentResult(PaymentOutcome.IGNORED)


@retry_on_lock_conflict
def payment_receive(
    *, abandonment_external_id: str, payment_id: str, amount: Decimal, link_type: str, payload: dict[str, Any]
) -> PaymentResult:
    """Convert an abandonment on a "paid" webhook (SPEC §4.4).

    Raises AbandonmentNotFound, AmountMismatch, or PaymentIdReused for a paymentId already
    received for another abandonment. The event row is committed even when the answer is a 404 or a 422: a
    payment for an abandonment that has not arrived yet converts it on arrival, and a mismatch
    stays visible to ops.
    """
    with transaction.atomic():
        event, _ = WebhookEvent.objects.get_or_create(
            type=WebhookEvent.Type.PAYMENT,
            external_id=payment_id,
            defaults={"payload": payload, "reference": abandonment_external_id},
        )
        if event.reference != abandonment_external_id:
            # The platform reused a payment id: converting would break the unique payment_id.
            raise PaymentIdReused(
                "This paymentId was already received for another abandonment.",
                {"paymentId": ["Already received for another abandonment."]},
            )
        abandonment = (
            Abandonment.objects.select_for_update(of=("self",))
            .select_related("product", "customer")
            .filter(external_id=abandonment_external_id)
            .first()
        )
        error = _payment_error(abandonment, payment_id=payment_id, amount=amount, link_type=link_type)
        if isinstance(error, PaymentResult):
            if error.outcome == PaymentOutcome.ALREADY_CONVERTED and not event.error:
                event.error = "possible double payment: the abandonment was already converted"
                event.save(update_fields=["error"])
            return error
        if error is not None:
            event.error = error.message
            event.save(update_fields=["error"])
            if abandonment is not None:
                _hold_for_payment_mismatch(abandonment)
        else:
            assert abandonment is not None  # a missing cart is one of the errors
            _convert(abandonment, event, link_type=link_type, thank=True)
    if error is not None:
        raise error
    assert abandonment is not None
    logger.info("abandonment converted", extra={"abandonment_id": abandonment.pk, "link": link_type})
    return PaymentResult(PaymentOutcome.CONVERTED, abandonment)


def _payment_error(
    abandonment: Abandonment | None, *, payment_id: str, amount: Decimal, link_type: str
) -> PaymentResult | RecoveryError | None:
    if abandonment is None:
        return AbandonmentNotFound("No abandonment with this abandonmentId.", {"abandonmentId": "unknown"})
    if abandonment.payment_id is not None:
        # Converted, or a held-out cart already paid (its status stays held_out).
        if abandonment.payment_id == payment_id:
            return PaymentResult(PaymentOutcome.ALREADY_PROCESSED, abandonment)
        logger.warning("second payment for a converted abandonment", extra={"abandonment_id": abandonment.pk})
        return PaymentResult(PaymentOutcome.ALREADY_CONVERTED, abandonment)
    expected = expected_amounts(abandonment, link_type=link_type)
    if not expected:
        return AmountMismatch(
            "A discounted payment for an abandonment with no discount.",
            {"linkType": link_type, "amount": str(amount)},
        )
    if amount not in expected:
        return AmountMismatch(
            "Amount does not match the cart.",
            {
                "expected": f"{expected[-1]:.2f}",
                "accepted": [f"{value:.2f}" for value in expected],
                "amount": f"{amount:.2f}",
                "linkType": link_type,
            },
        )
    return None


def _hold_for_payment_mismatch(abandonment: Abandonment) -> None:
    """A "paid" payment refused: the chase stops until a person looks (SPEC §4.4)."""
    held = lifecycle.conversations_hold(
        abandonment=abandonment, reason=Conversation.HandoffReason.PAYMENT_MISMATCH, now=timezone.now()
    )
    if held:
        logger.warning(
            "conversation held for a person: payment mismatch", extra={"abandonment_id": abandonment.pk}
        )


def _convert(abandonment: Abandonment, event: WebhookEvent, *, link_type: str, thank: bool) -> None:
    try:
        paid_amount = Decimal(str(event.payload.get("amount")))
    except (ArithmeticError, ValueError):
        paid_amount = None
    conversation = lifecycle.abandonment_convert(
        abandonment=abandonment,
        payment_id=event.external_id or "",  # a payment event always has one
        link_type=link_type,
        paid_amount=paid_amount,
        now=timezone.now(),
    )
    # Counted once the transaction commits: a rolled-back conversion recovered nothing. A
    # held-out cart's payment was not Sara's: it is counted on its own.
    if abandonment.held_out:
        transaction.on_commit(metrics.HOLDOUT_CONVERSIONS.inc)
    else:
        transaction.on_commit(lambda: _count_conversion(link_type, abandonment.value))
    event.processed = True
    event.save(update_fields=["processed"])
    if conversation is None:
        return
    if thank and not abandonment.customer.opted_out:
        _thank_you_queue(conversation, abandonment)


def _thank_you_queue(conversation: Conversation, abandonment: Abandonment) -> Message:
    """The thank-you as a utility template once Meta approved one (SPEC §15): it reaches a
    customer whose window closed, and costs a utility rate (nothing inside the window) where
    free-form text counts against the month's free service tier. Until then, text as before."""
    text = agent.thank_you_text(abandonment.customer.name, abandonment.paid_amount)
    approved = Template.objects.filter(
        name=settings.WHATSAPP_THANK_YOU_TEMPLATE_NAME,
        language=settings.WHATSAPP_TEMPLATE_LANGUAGE,
        category=Template.Category.UTILITY,
        status__in=Template.SENDABLE,
    ).exists()
    if not approved:
        return message_queue(conversation=conversation, purpose=Message.Purpose.THANK_YOU, text=text)
    first_name = (abandonment.customer.name or "").split(" ")[0] or "cliente"
    amount = brl(abandonment.paid_amount if abandonment.paid_amount is not None else abandonment.value)
    return message_queue(
        conversation=conversation,
        purpose=Message.Purpose.THANK_YOU,
        text=text,
        template={
            "name": settings.WHATSAPP_THANK_YOU_TEMPLATE_NAME,
            "language": settings.WHATSAPP_TEMPLATE_LANGUAGE,
            "parameters": [first_name, amount],
            "category": Template.Category.UTILITY,
        },
    )


def _count_conversion(link_type: str, value: Decimal) -> None:
    metrics.CONVERSIONS.labels(link_type).inc()
    metrics.RECOVERED_VALUE.inc(float(value))


def _payment_received_before(abandonment: Abandonment) -> tuple[WebhookEvent | None, bool]:
    """A "paid" event kept for this abandonment that converts it, and whether any was kept at all."""
    kept = False
    for event in messaging_sql.payments_kept(reference=abandonment.external_id):
        kept = True
        link_type = event.payload.get("linkType") or "original"
        try:
            amount = Decimal(str(event.payload.get("amount")))
        except (ArithmeticError, ValueError):
            continue
        if amount in expected_amounts(abandonment, link_type=link_type):
            return event, kept
    return None, kept


def early_payments_reconcile(*, older_than: datetime) -> int:
    """Convert carts whose payment came first and was kept (404) while the cart was in flight.

    The cart's own check for an earlier payment misses one whose 404 committed a moment after
    that check ran; this pass, run by the stuck-work sweep, closes that race.
    """
    waiting = WebhookEvent.objects.filter(
        type=WebhookEvent.Type.PAYMENT,
        processed=False,
        external_id__isnull=False,
        created_at__lt=older_than,
        reference__in=Abandonment.objects.filter(payment_id__isnull=True).values("external_id"),
    )
    converted = 0
    for event in waiting[:200]:
        payload = event.payload or {}
        try:
            amount = Decimal(str(payload.get("amount")))
            payment_receive(
                abandonment_external_id=event.reference,
                payment_id=event.external_id or "",  # a payment event always has one
                amount=amount,
                link_type=payload.get("linkType") or "original",
                payload=payload,
            )
            converted += 1
        except (RecoveryError, ArithmeticError, ValueError):
            continue  # a mismatch stays an error for ops to look at
    return converted
