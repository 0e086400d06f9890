"""Shopify: checkouts/create and checkouts/update describe a checkout; abandonment is a state.

Docs: shopify.dev webhooks (HTTPS delivery, "Ignore duplicate webhooks"), the REST Checkout and
Order resources. Shopify has no "abandoned" event: a checkout with no `completed_at`, unchanged
for SHOPIFY_ABANDONED_AFTER_MINUTES, is one. Retries (8 over 4 hours) repeat the original
payload and the same X-Shopify-Event-Id.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from recovery.sources.base import (
    CheckoutEvent,
    Kind,
    Source,
    dig,
    first_text,
    hmac_base64,
    money,
    require_id,
    same,
    text,
)

CHECKOUT_TOPICS = {"checkouts/create", "checkouts/update"}


class Shopify(Source):
    name = "shopify"
    label = "Shopify"
    env_var = "SHOPIFY_WEBHOOK_SECRET"
    help_text = _(
        "Settings → Notifications → Webhooks: checkout creation, checkout update, order payment (JSON)."
    )

    def abandoned_after(self) -> timedelta:
        return timedelta(minutes=settings.SHOPIFY_ABANDONED_AFTER_MINUTES)

    def verify(self, request: HttpRequest, body: bytes) -> bool:
        return same(request.headers.get("X-Shopify-Hmac-Sha256"), hmac_base64(self.secret, body))

    def delivery_id(self, request: HttpRequest, payload: Any) -> str:
        # X-Shopify-Event-Id is the same on every retry of one event; older deliveries carry
        # only X-Shopify-Webhook-Id, which is also stable across retries.
        return text(
            request.headers.get("X-Shopify-Event-Id") or request.headers.get("X-Shopify-Webhook-Id"), 150
        )

    def parse(self, request: HttpRequest, payload: dict[str, Any]) -> list[CheckoutEvent]:
        topic = text(request.headers.get("X-Shopify-Topic"), 60)
        event_id = (
            self.delivery_id(request, payload)
            or f"{topic}:{text(payload.get('id'), 60)}:{text(payload.get('updated_at'), 40)}"
        )
        if topic in CHECKOUT_TOPICS:
            return [self._checkout(payload, event_id)]
        if topic == "orders/paid":
            return [self._order(payload, event_id)]
        return [
            CheckoutEvent(
                kind=Kind.IGNORED, platform=self.name, event_id=event_id, note=f"topic {topic or '?'}"
            )
        ]

    def _checkout(self, checkout: dict[str, Any], event_id: str) -> CheckoutEvent:
        token = require_id(checkout.get("token"), "token")
        total = money(checkout.get("total_price"))
        common = {
            "platform": self.name,
            "event_id": event_id,
            "checkout_id": token,
            "token": token,
            "phone": _phone(checkout),
            "name": _name(checkout),
            "email": text(checkout.get("email"), 254),
            "product_id": text(dig(checkout, "line_items", 0, "product_id"), 100),
        }
        if checkout.get("completed_at"):
            # Completed: the customer paid. Before the wait ends it is never chased.
            return CheckoutEvent(kind=Kind.PAID, amount=total, **common)
        return CheckoutEvent(
            kind=Kind.ABANDONED,
            value=total,
            link=text(checkout.get("abandoned_checkout_url"), 1000),
            **common,
        )

    def _order(self, order: dict[str, Any], event_id: str) -> CheckoutEvent:
        token = text(order.get("checkout_token"), 200)
        return CheckoutEvent(
            kind=Kind.PAID,
            platform=self.name,
            event_id=event_id,
            checkout_id=token,
            token=token,
            phone=_phone(order),
            name=_name(order),
            email=text(order.get("email"), 254),
            amount=money(order.get("current_total_price")) or money(order.get("total_price")),
            order_id=require_id(order.get("id"), "id"),
        )


def _phone(resource: dict[str, Any]) -> str:
    # Shopify keeps the phone wherever the customer typed it: on the checkout, the customer,
    # or one of the addresses.
    return first_text(
        resource.get("phone"),
        dig(resource, "customer", "phone"),
        dig(resource, "shipping_address", "phone"),
        dig(resource, "billing_address", "phone"),
        limit=40,
    )


def _name(resource: dict[str, Any]) -> str:
    for person in (
        resource.get("customer"),
        resource.get("shipping_address"),
        resource.get("billing_address"),
    ):
        if isinstance(person, dict):
            name = " ".join(p for p in (text(person.get("first_name")), text(person.get("last_name"))) if p)
            if name:
                return name[:200]
    return ""
