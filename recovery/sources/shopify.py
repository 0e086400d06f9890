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

from core.strict_json import json_object
from recovery.errors import PayloadUnusable
from recovery.sources import base
from recovery.sources.base import CheckoutEvent, Kind, Signature, Source

CHECKOUT_TOPICS = {"checkouts/create", "checkouts/update"}
ORDER_TOPICS = {"orders/paid"}
# Fields only an order carries, and one only a checkout carries (Shopify's REST Order and
# Checkout resources, as the webhook samples show them).
ORDER_ONLY = ("order_number", "financial_status", "order_status_url", "checkout_token")
CHECKOUT_ONLY = "abandoned_checkout_url"


class Shopify(Source):
    name = "shopify"
    label = "Shopify"
    env_var = "SHOPIFY_WEBHOOK_SECRET"
    signature = Signature(header="X-Shopify-Hmac-Sha256", encoding="base64")
    help_text = _(
        "Settings → Notifications → Webhooks: checkout creation, checkout update, order payment (JSON)."
    )

    def abandoned_after(self) -> timedelta:
        return timedelta(minutes=settings.SHOPIFY_ABANDONED_AFTER_MINUTES)

    def delivery_id(self, request: HttpRequest, payload: Any) -> str:
        # X-Shopify-Event-Id is the same on every retry of one event; older deliveries carry
        # only X-Shopify-Webhook-Id, which is also stable across retries.
        return base.text(
            request.headers.get("X-Shopify-Event-Id") or request.headers.get("X-Shopify-Webhook-Id"), 150
        )

    def parse(self, request: HttpRequest, payload: dict[str, Any]) -> list[CheckoutEvent]:
        topic = base.text(request.headers.get("X-Shopify-Topic"), 60)
        event_id = (
            self.delivery_id(request, payload)
            or f"{topic}:{base.text(payload.get('id'), 60)}:{base.text(payload.get('updated_at'), 40)}"
        )
        # The HMAC covers the body, not the topic header: a signed checkout re-posted as
        # orders/paid must not convert anything, so the body's shape has to agree.
        if topic in CHECKOUT_TOPICS:
            if _looks_like_order(payload):
                raise _mismatch(topic, "an order")
            return [self._checkout(payload, event_id)]
        if topic in ORDER_TOPICS:
            if not _looks_like_order(payload) or CHECKOUT_ONLY in payload:
                raise _mismatch(topic, "a checkout" if CHECKOUT_ONLY in payload else "no order")
            return [self._order(payload, event_id)]
        return [
            CheckoutEvent(
                kind=Kind.IGNORED, platform=self.name, event_id=event_id, note=f"topic {topic or '?'}"
            )
        ]

    def _checkout(self, checkout: dict[str, Any], event_id: str) -> CheckoutEvent:
        token = base.require_id(checkout.get("token"), "token")
        total = base.money(checkout.get("total_price"), field="total_price")
        phone, problem = _phone(checkout)
        common: dict[str, Any] = {
            "platform": self.name,
            "event_id": event_id,
            "checkout_id": token,
            "token": token,
            "phone": phone,
            "phone_problem": problem,
            "name": _name(checkout),
            "email": base.text(checkout.get("email"), 254),
            "product_id": base.text(base.dig(checkout, "line_items", 0, "product_id"), 100),
            "updated_at": base.timestamp(checkout.get("updated_at")),
        }
        if checkout.get("completed_at"):
            # Completed: the customer paid. Before the wait ends it is never chased.
            return CheckoutEvent(kind=Kind.PAID, amount=total, **common)
        return CheckoutEvent(
            kind=Kind.ABANDONED,
            value=total,
            link=base.https_link(checkout.get("abandoned_checkout_url")),
            **common,
        )

    def _order(self, order: dict[str, Any], event_id: str) -> CheckoutEvent:
        token = base.text(order.get("checkout_token"), 200)
        phone, problem = _phone(order)
        return CheckoutEvent(
            kind=Kind.PAID,
            platform=self.name,
            event_id=event_id,
            checkout_id=token,
            token=token,
            phone=phone,
            phone_problem=problem,
            name=_name(order),
            email=base.text(order.get("email"), 254),
            amount=base.money(order.get("current_total_price"), field="current_total_price")
            or base.money(order.get("total_price"), field="total_price"),
            order_id=base.require_id(order.get("id"), "id"),
        )


def _looks_like_order(payload: dict[str, Any]) -> bool:
    return any(key in payload for key in ORDER_ONLY)


def _mismatch(topic: str, shape: str) -> PayloadUnusable:
    return PayloadUnusable(
        f"X-Shopify-Topic {topic} does not match the body, which is {shape}.",
        {"X-Shopify-Topic": [f"{topic} with {shape}."]},
    )


def _phone(resource: dict[str, Any]) -> tuple[str, str]:
    """The first valid mobile, in this order: the checkout's (or order's) phone, the shipping
    address's, the billing address's, the customer's, the customer's default address's, the SMS
    marketing phone. Each is read in its address's country; the ones on no address in the
    buyer's (shipping, else billing) country."""
    shipping = json_object(resource.get("shipping_address"))
    billing = json_object(resource.get("billing_address"))
    default = base.dig(resource, "customer", "default_address")
    default = json_object(default)
    buyer_country = shipping.get("country_code") or billing.get("country_code")
    return base.first_mobile(
        [
            (resource.get("phone"), buyer_country),
            (shipping.get("phone"), shipping.get("country_code")),
            (billing.get("phone"), billing.get("country_code")),
            (base.dig(resource, "customer", "phone"), buyer_country),
            (default.get("phone"), default.get("country_code")),
            (resource.get("sms_marketing_phone"), buyer_country),
        ]
    )


def _name(resource: dict[str, Any]) -> str:
    for person in (
        resource.get("customer"),
        resource.get("shipping_address"),
        resource.get("billing_address"),
    ):
        if isinstance(person, dict):
            name = " ".join(
                p for p in (base.text(person.get("first_name")), base.text(person.get("last_name"))) if p
            )
            if name:
                return name[:200]
    return ""
