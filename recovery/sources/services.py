"""Platform events → carts: store the raw event once, then open, wait, convert or skip."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from compliance.lgpd import phone_digest
from core.phones import InvalidPhone, normalize_phone
from messaging.models import WebhookEvent
from recovery.errors import PayloadUnusable
from recovery.models import Customer, Product, SourceCheckout
from recovery.sources import lifecycle
from recovery.sources.base import CheckoutEvent, Kind
from recovery.sources.nuvemshop import NuvemshopClient, NuvemshopError, checkout_event, order_event
from recovery.sources.registry import source as source_named

logger = logging.getLogger(__name__)

# 20 pages of 200: the 30 days of checkouts Nuvemshop keeps, for a busy store.
MAX_POLL_PAGES = 20
SWEEP_BATCH = 200


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
            return SourceResult(Outcome.DUPLICATE, "delivery already received")
        result = _act(event, stored)
        if result.detail == "erased" or _from_erased(event):
            # The buyer's data was erased on request: their new event is not kept either.
            stored.payload = {"erased": True}
            stored.save(update_fields=["payload"])
        _event_close(stored, result)
    if result.outcome == Outcome.PENDING:
        from recovery import tasks  # the task module imports this one

        transaction.on_commit(lambda: tasks.nuvemshop_order_fetch.delay(stored.pk))
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
    """A pending event that cannot be completed: failed, with why, for ops."""
    stored = WebhookEvent.objects.filter(pk=event_id, outcome=Outcome.PENDING).first()
    if stored is not None:
        _event_close(stored, SourceResult(Outcome.FAILED, error))


def _act(event: CheckoutEvent, stored: WebhookEvent) -> SourceResult:
    if event.kind == Kind.IGNORED:
        return SourceResult(Outcome.IGNORED, event.note)
    if event.needs_fetch:
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
    _fill(row, event)
    delay = source_named(event.platform).abandoned_after()
    if delay:
        # Every change restarts the wait: abandoned means unchanged for the whole delay.
        row.status = SourceCheckout.Status.WAITING
        row.due_at = timezone.now() + delay
        row.save()
        return SourceResult(
            Outcome.WAITING, f"opens at {timezone.localtime(row.due_at):%d/%m/%Y %H:%M} unless paid"
        )
    return checkout_open(row=row)


def _fill(row: SourceCheckout, event: CheckoutEvent) -> None:
    for field in ("token", "phone", "name", "product_id", "link"):
        value = getattr(event, field)
        if value:
            setattr(row, field, value)
    if event.value is not None:
        row.value = event.value


def checkout_open(*, row: SourceCheckout) -> SourceResult:
    """Open the recovery of a (locked) source cart, or skip it and say why."""
    try:
        phone = normalize_phone(row.phone)
    except InvalidPhone:
        return _settle(
            row,
            SourceCheckout.Status.SKIPPED,
            SourceResult(Outcome.SKIPPED, "no_phone" if not row.phone else "invalid_phone"),
        )
    product = (
        Product.objects.filter(product_id=row.product_id, active=True).first() if row.product_id else None
    )
    value = row.value if row.value is not None else (product.price if product else None)
    link = row.link or (product.payment_link if product else "")
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


def _settle(row: SourceCheckout, status: str, result: SourceResult) -> SourceResult:
    row.status = status
    row.due_at = None
    if status == SourceCheckout.Status.SKIPPED:
        row.skip_reason = result.detail
    # Contact data is needed only while a cart waits; the customer row holds it from here.
    row.phone = row.name = ""
    row.save()
    return result


def _paid(event: CheckoutEvent, stored: WebhookEvent) -> SourceResult:
    row = _cart_for(event)
    if row is None:
        if not event.checkout_id:
            return SourceResult(Outcome.IGNORED, "no cart matches this order")
        # Paid before the cart ever reached Sara: remembered, so the cart is never chased.
        row, _ = SourceCheckout.objects.select_for_update().get_or_create(
            platform=event.platform, checkout_id=event.checkout_id, defaults={"token": event.token}
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
    row.save(update_fields=["status", "updated_at"])
    return result


def _cart_for(event: CheckoutEvent) -> SourceCheckout | None:
    """The cart an order pays: by its id, its token, else the buyer's latest open cart there."""
    carts = SourceCheckout.objects.select_for_update().filter(platform=event.platform)
    if event.checkout_id:
        found = carts.filter(checkout_id=event.checkout_id).first()
        if found is not None:
            return found
    if event.token:
        found = carts.filter(token=event.token).first()
        if found is not None:
            return found
    try:
        phone = normalize_phone(event.phone)
    except InvalidPhone:
        return None
    return (
        carts.filter(status=SourceCheckout.Status.OPENED, abandonment__customer__phone=phone)
        .order_by("-created_at")
        .first()
    )


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

    Raises NuvemshopError when the API fails for now (the task retries); a permanent refusal
    is recorded on the event for ops.
    """
    stored = WebhookEvent.objects.filter(pk=event_id, outcome=Outcome.PENDING).first()
    if stored is None:
        return SourceResult(Outcome.DUPLICATE, "already handled")
    order_id = str(stored.payload.get("id", ""))
    try:
        order = client.order(order_id)
    except NuvemshopError as exc:
        if not exc.permanent:
            raise
        result = SourceResult(Outcome.FAILED, str(exc))
        _event_close(stored, result)
        return result
    with transaction.atomic():
        stored = WebhookEvent.objects.select_for_update().filter(pk=event_id, outcome=Outcome.PENDING).first()
        if stored is None:
            return SourceResult(Outcome.DUPLICATE, "already handled")
        if order.get("payment_status") not in (None, "paid"):
            result = SourceResult(Outcome.IGNORED, f"order payment_status {order.get('payment_status')}")
        else:
            try:
                result = _paid(order_event(order, event_id=stored.external_id or ""), stored)
            except PayloadUnusable as exc:
                result = SourceResult(Outcome.INVALID, exc.message)
        _event_close(stored, result)
    return result


def nuvemshop_orders_pending(*, older_than: timedelta) -> list[int]:
    """Order events whose fetch never ran or kept failing: the poller drives them again."""
    return list(
        WebhookEvent.objects.filter(
            type=WebhookEvent.Type.SOURCE,
            outcome=Outcome.PENDING,
            reference__startswith="nuvemshop:",
            created_at__lt=timezone.now() - older_than,
        ).values_list("pk", flat=True)[:SWEEP_BATCH]
    )
