"""Platform events → carts: store the raw event once, then open, wait, convert or skip."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance.lgpd import phone_digest
from core import broker
from core.phones import InvalidPhone, normalize_phone
from messaging.models import WebhookEvent
from recovery.errors import PayloadUnusable
from recovery.models import Customer, Product, SourceCheckout
from recovery.sources import lifecycle
from recovery.sources.base import HTTPS_ONLY, INVALID_LINK, CheckoutEvent, Kind
from recovery.sources.nuvemshop import NuvemshopClient, NuvemshopError, checkout_event, order_event
from recovery.sources.registry import source as source_named

logger = logging.getLogger(__name__)

# The Celery name of the order fetch (recovery.sources.tasks), queued when a paid order waits.
ORDER_FETCH_TASK = "recovery.tasks.nuvemshop_order_fetch"

# 20 pages of 200: the 30 days of checkouts Nuvemshop keeps, for a busy store.
MAX_POLL_PAGES = 20
SWEEP_BATCH = 200
# Nuvemshop retries an order webhook for three days; Sara keeps trying a failed fetch longer,
# long enough for a person to restore a revoked token after a weekend.
RETRY_FOR = timedelta(days=7)
# A cart whose paid order is still being fetched waits this long before it is looked at again.
PAYMENT_CHECK_WAIT = timedelta(minutes=10)


class Outcome(enum.StrEnum):
    OPENED = "opened"
    WAITING = "waiting"
    CONVERTED = "converted"
    COMPLETED = "completed"  # paid before Sara wrote: never chased
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    IGNORED = "ignored"
    PENDING = "pending"  # an order to fetch before it converts
    INVALID = "invalid"
    FAILED = "failed"


@dataclass(frozen=True)
class SourceResult:
    outcome: Outcome
    detail: str = ""
    conversation_id: int | None = None


def source_event_receive(*, event: CheckoutEvent, payload: dict[str, Any]) -> SourceResult:
    """One platform event: kept as a WebhookEvent (type source) and acted on, in one transaction."""
    with transaction.atomic():
        stored = _event_store(
            external_id=event.key, reference=_reference(event), payload=payload, outcome=Outcome.PENDING
        )
        if stored is None:
            stored = _retryable(event)
            if stored is None:
                return SourceResult(Outcome.DUPLICATE, "delivery already received")
            # The platform's own retry of work that failed here: attempted again, not a duplicate.
            result = SourceResult(Outcome.PENDING, "retrying: " + (stored.error or "order to fetch"))
        else:
            result = _act(event, stored)
            if result.detail == "erased" or _from_erased(event):
                # The buyer's data was erased on request: their new event is not kept either.
                stored.payload = {"erased": True}
                stored.save(update_fields=["payload"])
            _event_close(stored, result)
    if result.outcome == Outcome.PENDING:
        # Queued by its name: the task module imports this one (core.broker.task).
        transaction.on_commit(lambda: broker.task(ORDER_FETCH_TASK).delay(stored.pk))
    logger.info(
        "source event",
        extra={"platform": event.platform, "event_key": event.key, "outcome": str(result.outcome)},
    )
    return result


def _from_erased(event: CheckoutEvent) -> bool:
    """Whether the event's buyer is a person erased on request (SPEC §14), whatever the outcome."""
    try:
        phone = normalize_phone(event.phone)
    except InvalidPhone:
        return False
    return Customer.objects.filter(phone=phone_digest(phone)).exists()


def source_event_reject(*, platform: str, external_id: str, payload: dict[str, Any], error: str) -> None:
    """An authentic event Sara cannot use: kept (once) for ops, with why."""
    with transaction.atomic():
        stored = _event_store(
            external_id=f"{platform}:{external_id}" if external_id else None,
            reference=f"{platform}:",
            payload=payload,
            outcome=Outcome.INVALID,
        )
        if stored is not None:
            _event_close(stored, SourceResult(Outcome.INVALID, error))


def source_failure_record(*, platform: str, what: str, status: int | None, error: str) -> None:
    """A failure ops must see on the Sources page (once a day per kind, not every poll)."""
    today = timezone.localdate().isoformat()
    with transaction.atomic():
        stored = _event_store(
            external_id=f"{platform}:{what}-failed:{today}:{status or 'error'}",
            reference=f"{platform}:",
            payload={"status": status, "error": error},
            outcome=Outcome.FAILED,
        )
        if stored is not None:
            _event_close(stored, SourceResult(Outcome.FAILED, error))


def source_event_fail(*, event_id: int, error: str) -> None:
    """Work that failed for a reason a person can fix (a refused token, a platform that was
    down): failed, with why, for ops, and still due (processed stays false) so the sweep and
    the platform's retries attempt it again."""
    WebhookEvent.objects.filter(pk=event_id, processed=False).filter(
        outcome__in=(Outcome.PENDING, Outcome.FAILED)
    ).update(outcome=Outcome.FAILED, error=error[:1000])


def _retryable(event: CheckoutEvent) -> WebhookEvent | None:
    """The stored event of this delivery when it is work still due (an order not yet fetched)."""
    if not event.needs_fetch:
        return None
    stored = (
        WebhookEvent.objects.select_for_update()
        .filter(type=WebhookEvent.Type.SOURCE, external_id=event.key, processed=False)
        .first()
    )
    return stored if stored is not None and stored.outcome in (Outcome.PENDING, Outcome.FAILED) else None


def _act(event: CheckoutEvent, stored: WebhookEvent) -> SourceResult:
    if event.kind == Kind.IGNORED:
        return SourceResult(Outcome.IGNORED, event.note)
    if event.needs_fetch:
        # Nuvemshop: a checkout becomes its order, keeping its id. Until the order is read, the
        # cart it paid is not chased.
        SourceCheckout.objects.filter(platform=event.platform, checkout_id=event.order_id).update(
            payment_pending=True
        )
        return SourceResult(Outcome.PENDING, "order to fetch")
    if event.kind == Kind.ABANDONED:
        return _abandoned(event)
    return _paid(event, stored)


def _abandoned(event: CheckoutEvent) -> SourceResult:
    if not event.checkout_id:
        return SourceResult(Outcome.SKIPPED, "no_cart_id")
    row, created = SourceCheckout.objects.select_for_update().get_or_create(
        platform=event.platform, checkout_id=event.checkout_id
    )
    if not created and row.status != SourceCheckout.Status.WAITING:
        return SourceResult(Outcome.DUPLICATE, f"cart already {row.status}")
    if _stale(row, event):
        # Webhooks arrive in any order: an older state of the cart changes nothing, not even
        # the wait.
        return SourceResult(Outcome.DUPLICATE, "an older state of the cart: ignored")
    _fill(row, event)
    if created and _paid_since(row, event):
        # The payment arrived first (platforms deliver in any order): never chased.
        return _settle(
            row,
            SourceCheckout.Status.COMPLETED,
            SourceResult(Outcome.COMPLETED, "paid before Sara wrote: never chased"),
        )
    source = source_named(event.platform)
    assert source is not None  # the event was parsed by this source
    delay = source.abandoned_after()
    if delay:
        # Every change restarts the wait: abandoned means unchanged for the whole delay.
        row.status = SourceCheckout.Status.WAITING
        row.due_at = timezone.now() + delay
        row.save()
        return SourceResult(
            Outcome.WAITING, f"opens at {timezone.localtime(row.due_at):%d/%m/%Y %H:%M} unless paid"
        )
    return checkout_open(row=row)


def _stale(row: SourceCheckout, event: CheckoutEvent) -> bool:
    return (
        row.source_updated_at is not None
        and event.updated_at is not None
        and event.updated_at < row.source_updated_at
    )


def _paid_since(row: SourceCheckout, event: CheckoutEvent) -> bool:
    """Whether the buyer paid for this product after this cart was made (platforms that name no
    cart: the payment is matched by the buyer and product)."""
    if not row.token or event.updated_at is None:
        return False
    return (
        SourceCheckout.objects.filter(
            platform=row.platform,
            token=row.token,
            status=SourceCheckout.Status.COMPLETED,
            updated_at__gte=event.updated_at,
        )
        .exclude(pk=row.pk)
        .exists()
    )


def _fill(row: SourceCheckout, event: CheckoutEvent) -> None:
    for field in ("token", "phone", "name", "product_id", "link"):
        value = getattr(event, field)
        if value:
            setattr(row, field, value)
    if event.value is not None:
        row.value = event.value
    if event.updated_at is not None:
        row.source_updated_at = event.updated_at
    if event.phone_problem and not event.phone:
        # Kept so that the skip says why: no phone given, or none a valid mobile.
        row.skip_reason = event.phone_problem


def checkout_open(*, row: SourceCheckout) -> SourceResult:
    """Open the recovery of a (locked) source cart, or skip it and say why."""
    if row.payment_pending or _order_being_fetched(row):
        # A paid order for this cart is still being read from the platform: look again later.
        row.status = SourceCheckout.Status.WAITING
        row.due_at = timezone.now() + PAYMENT_CHECK_WAIT
        row.save()
        return SourceResult(Outcome.WAITING, "a payment for this cart is being confirmed")
    # Only a valid mobile reaches the row (the adapters read each phone in its own country).
    phone = row.phone
    if not phone:
        return _settle(
            row, SourceCheckout.Status.SKIPPED, SourceResult(Outcome.SKIPPED, row.skip_reason or "no_phone")
        )
    product = (
        Product.objects.filter(product_id=row.product_id, active=True).first() if row.product_id else None
    )
    value = row.value if row.value is not None else (product.price if product else None)
    link = row.link or (product.payment_link if product else "")
    if link and not _https(link):
        # A link the customer would tap: anything but https (javascript:, http:) is refused.
        return _settle(row, SourceCheckout.Status.SKIPPED, SourceResult(Outcome.SKIPPED, "invalid_link"))
    if value is None or value <= 0 or not link:
        # Kept with its event for ops: mapping the product in the admin lets the next cart open.
        reason = (
            "unknown_product"
            if product is None
            else ("no_price" if value is None or value <= 0 else "no_link")
        )
        return _settle(row, SourceCheckout.Status.SKIPPED, SourceResult(Outcome.SKIPPED, reason))
    opened = lifecycle.cart_open(
        external_id=f"{row.platform}:{row.checkout_id}"[:100],
        phone=phone,
        name=row.name,
        product_id=row.product_id,
        payment_link=link,
        value=value,
        payload={
            "source": row.platform,
            "checkoutId": row.checkout_id,
            "productId": row.product_id,
            "value": f"{value:.2f}",
            "paymentLink": link,
            "phone": phone,
            "name": row.name,
        },
    )
    row.abandonment = opened.abandonment
    if opened.outcome == "skipped":
        reason = opened.abandonment.skip_reason or "opted_out"
        return _settle(row, SourceCheckout.Status.SKIPPED, SourceResult(Outcome.SKIPPED, reason))
    if opened.outcome == "already_processed":
        return _settle(
            row, SourceCheckout.Status.OPENED, SourceResult(Outcome.DUPLICATE, "cart already opened")
        )
    return _settle(
        row,
        SourceCheckout.Status.OPENED,
        SourceResult(Outcome.OPENED, conversation_id=opened.conversation_id),
    )


def _https(link: str) -> bool:
    if link == INVALID_LINK:
        return False
    try:
        HTTPS_ONLY(link)
    except ValidationError:
        return False
    return True


def _order_being_fetched(row: SourceCheckout) -> bool:
    """A Nuvemshop order/paid for this checkout whose order is not yet read (or failed to be)."""
    if row.platform != "nuvemshop":
        return False
    return WebhookEvent.objects.filter(
        type=WebhookEvent.Type.SOURCE,
        external_id=f"nuvemshop:order/paid:{row.checkout_id}",
        processed=False,
        outcome__in=(Outcome.PENDING, Outcome.FAILED),
    ).exists()


def _settle(row: SourceCheckout, status: str, result: SourceResult) -> SourceResult:
    was_waiting = row.status == SourceCheckout.Status.WAITING and row.pk is not None
    row.status = status
    row.due_at = None
    row.payment_pending = False
    if status == SourceCheckout.Status.SKIPPED:
        row.skip_reason = result.detail
    elif row.skip_reason in ("no_phone", "invalid_phone"):
        row.skip_reason = ""
    if was_waiting and status == SourceCheckout.Status.COMPLETED:
        # The events that started the wait said "opens at ... unless paid": now they say paid.
        _waiting_events_close(row, result)
    # Contact data is needed only while a cart waits; the customer row holds it from here.
    row.phone = row.name = ""
    row.save()
    return result


def _paid(event: CheckoutEvent, stored: WebhookEvent) -> SourceResult:
    row = _cart_for(event)
    if row is None:
        remembered_as = event.checkout_id or event.paid_id
        if not remembered_as:
            return SourceResult(Outcome.IGNORED, "no cart matches this order")
        # Paid before the cart ever reached Sara: remembered, so the cart is never chased.
        row, _ = SourceCheckout.objects.select_for_update().get_or_create(
            platform=event.platform, checkout_id=remembered_as, defaults={"token": event.token}
        )
    if row.status == SourceCheckout.Status.COMPLETED:
        return SourceResult(Outcome.DUPLICATE, "cart already paid")
    if row.status == SourceCheckout.Status.SKIPPED and row.abandonment_id is None:
        return _settle(
            row,
            SourceCheckout.Status.COMPLETED,
            SourceResult(Outcome.COMPLETED, f"paid; the cart had been skipped ({row.skip_reason})"),
        )
    if row.abandonment_id is None:
        return _settle(
            row,
            SourceCheckout.Status.COMPLETED,
            SourceResult(Outcome.COMPLETED, "paid before Sara wrote: never chased"),
        )
    converted = lifecycle.cart_convert(abandonment_id=row.abandonment_id, event=stored, amount=event.amount)
    result = SourceResult(Outcome.CONVERTED if converted.converted else Outcome.DUPLICATE, converted.detail)
    row.status = SourceCheckout.Status.COMPLETED
    row.payment_pending = False
    row.save(update_fields=["status", "payment_pending", "updated_at"])
    return result


def _cart_for(event: CheckoutEvent) -> SourceCheckout | None:
    """The cart an order pays: by its id, its token (the cart's, or the buyer and product where
    the platform names no cart: the latest one not yet paid), else the buyer's latest open cart."""
    carts = SourceCheckout.objects.select_for_update().filter(platform=event.platform)
    if event.checkout_id:
        found = carts.filter(checkout_id=event.checkout_id).first()
        if found is not None:
            return found
    if event.token:
        same_key = carts.filter(token=event.token).order_by("-created_at")
        found = same_key.exclude(status=SourceCheckout.Status.COMPLETED).first() or same_key.first()
        if found is not None:
            return found
    if not event.phone:
        return None
    return (
        carts.filter(status=SourceCheckout.Status.OPENED, abandonment__customer__phone=event.phone)
        .order_by("-created_at")
        .first()
    )


def _waiting_events_close(row: SourceCheckout, result: SourceResult) -> None:
    WebhookEvent.objects.filter(
        type=WebhookEvent.Type.SOURCE,
        reference=f"{row.platform}:{row.checkout_id}"[:200],
        outcome=Outcome.WAITING,
    ).update(outcome=result.outcome, error=result.detail)


def _reference(event: CheckoutEvent) -> str:
    return f"{event.platform}:{event.checkout_id or event.order_id}"[:200]


def _event_store(
    *, external_id: str | None, reference: str, payload: dict[str, Any], outcome: str
) -> WebhookEvent | None:
    """The raw event, or None when this delivery was stored before (the platform's retry)."""
    try:
        with transaction.atomic():
            return WebhookEvent.objects.create(
                type=WebhookEvent.Type.SOURCE,
                external_id=external_id[:200] if external_id else None,
                reference=reference,
                payload=payload,
                outcome=outcome,
            )
    except IntegrityError:
        return None


def _event_close(stored: WebhookEvent, result: SourceResult) -> None:
    stored.outcome = result.outcome
    stored.error = result.detail
    stored.processed = result.outcome != Outcome.PENDING
    stored.save(update_fields=["outcome", "error", "processed"])


# --- the Shopify wait -------------------------------------------------------------------------


def sweep_source_checkouts(*, now: datetime) -> int:
    """Open every cart whose wait is over. Overlapping sweeps are harmless: each row is taken
    under a lock and only while still waiting."""
    due = list(
        SourceCheckout.objects.filter(status=SourceCheckout.Status.WAITING, due_at__lte=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    opened = 0
    for pk in due:
        with transaction.atomic():
            row = (
                SourceCheckout.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, status=SourceCheckout.Status.WAITING, due_at__lte=now)
                .first()
            )
            if row is None:
                continue
            result = checkout_open(row=row)
            # The event that started the wait now shows what became of it.
            WebhookEvent.objects.filter(
                type=WebhookEvent.Type.SOURCE,
                reference=f"{row.platform}:{row.checkout_id}",
                outcome=Outcome.WAITING,
            ).update(outcome=result.outcome, error=result.detail)
            opened += result.outcome == Outcome.OPENED
    return opened


# --- Nuvemshop: polled checkouts and fetched orders ------------------------------------------


def poll_nuvemshop(*, client: NuvemshopClient) -> dict[str, int]:
    """Read every page of the store's abandoned checkouts; a checkout not seen before opens,
    one seen with `completed_at` converts. Raises NuvemshopError (the task retries or fails)."""
    counts: dict[str, int] = {}
    for number in range(1, MAX_POLL_PAGES + 1):
        page = client.checkouts(page=number)
        events = []
        for checkout in page.checkouts:
            try:
                events.append((checkout_event(checkout), checkout))
            except PayloadUnusable:
                counts["invalid"] = counts.get("invalid", 0) + 1
        # Most checkouts were seen by an earlier poll: one query spares a failed insert each.
        seen = set(
            WebhookEvent.objects.filter(
                type=WebhookEvent.Type.SOURCE, external_id__in=[event.key for event, _ in events]
            ).values_list("external_id", flat=True)
        )
        for event, checkout in events:
            outcome = (
                Outcome.DUPLICATE
                if event.key in seen
                else source_event_receive(event=event, payload=checkout).outcome
            )
            counts[outcome] = counts.get(outcome, 0) + 1
        if page.last:
            break
    return counts


def nuvemshop_order_fetch(*, event_id: int, client: NuvemshopClient) -> SourceResult:
    """Read the order an order/paid webhook named, then convert its checkout.

    Any failure is written on the event, which stays due: the task retries what may pass by
    itself (429, 5xx), and the poller's sweep and Nuvemshop's own retries attempt it again
    later, so a token restored after days still converts the carts paid meanwhile. Raises
    NuvemshopError when retrying soon may help.
    """
    stored = _due_order_event(event_id, lock=False)
    if stored is None:
        return SourceResult(Outcome.DUPLICATE, "already handled")
    order_id = str(stored.payload.get("id", ""))
    try:
        order = client.order(order_id)
    except NuvemshopError as exc:
        source_event_fail(event_id=event_id, error=f"{exc} Sara tries again.")
        if not exc.permanent:
            raise
        return SourceResult(Outcome.FAILED, str(exc))
    with transaction.atomic():
        stored = _due_order_event(event_id, lock=True)
        if stored is None:
            return SourceResult(Outcome.DUPLICATE, "already handled")
        if order.get("payment_status") not in (None, "paid"):
            result = SourceResult(Outcome.IGNORED, f"order payment_status {order.get('payment_status')}")
        else:
            try:
                result = _paid(order_event(order, event_id=stored.external_id or ""), stored)
            except PayloadUnusable as exc:
                result = SourceResult(Outcome.INVALID, exc.message)
        if result.outcome in (Outcome.IGNORED, Outcome.INVALID):
            # Not a payment after all: the cart may be chased again.
            SourceCheckout.objects.filter(platform="nuvemshop", checkout_id=order_id).update(
                payment_pending=False
            )
        _event_close(stored, result)
    return result


def _due_order_event(event_id: int, *, lock: bool) -> WebhookEvent | None:
    events = WebhookEvent.objects.select_for_update() if lock else WebhookEvent.objects
    return (
        events.filter(pk=event_id, processed=False, outcome__in=(Outcome.PENDING, Outcome.FAILED))
        .exclude(external_id=None)
        .first()
    )


def nuvemshop_orders_due(*, older_than: timedelta, now: datetime | None = None) -> list[int]:
    """Order events whose fetch never ran or failed (a refused token, Nuvemshop down), from the
    last RETRY_FOR: the poller's sweep drives them again."""
    now = now or timezone.now()
    return list(
        WebhookEvent.objects.filter(
            type=WebhookEvent.Type.SOURCE,
            external_id__startswith="nuvemshop:order/paid:",
            processed=False,
            outcome__in=(Outcome.PENDING, Outcome.FAILED),
            created_at__lt=now - older_than,
            created_at__gte=now - RETRY_FOR,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
