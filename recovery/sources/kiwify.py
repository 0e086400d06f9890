"""Kiwify: carrinho_abandonado (with `checkout_link`) and order_approved.

Docs: Kiwify's webhook help ("Webhooks": the URL gets `?signature=`, the hex HMAC-SHA1 of the
body keyed with the webhook's token) and the API reference (event ids change on every retry:
dedup on the resource, here the cart's `id` or the order's `order_id`). The abandoned cart has
no price: the mapped Product supplies it. Amounts in `Commissions` are in cents.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.strict_json import json_object
from recovery.sources import base
from recovery.sources.base import CheckoutEvent, Kind, Signature, Source


class Kiwify(Source):
    name = "kiwify"
    label = "Kiwify"
    env_var = "KIWIFY_WEBHOOK_TOKEN"
    signature = Signature(query_param="signature", digest=hashlib.sha1)
    help_text = _(
        "Apps → Webhooks → Criar webhook: events Carrinho abandonado and Compra aprovada; copy its token."
    )

    def delivery_id(self, request: HttpRequest, payload: Any) -> str:
        order_id = base.text(base.dig(payload, "order_id"), 100)
        return f"order:{order_id}" if order_id else ""

    def parse(self, request: HttpRequest, payload: dict[str, Any]) -> list[CheckoutEvent]:
        event = base.text(payload.get("webhook_event_type"), 60)
        if event == "order_approved" or (not event and payload.get("order_id")):
            return [self._order(payload)]
        if "checkout_link" in payload:
            return [self._cart(payload)]
        event_id = base.require_id(payload.get("order_id") or payload.get("id"), "order_id")
        return [
            CheckoutEvent(kind=Kind.IGNORED, platform=self.name, event_id=f"{event}:{event_id}", note=event)
        ]

    def _cart(self, cart: dict[str, Any]) -> CheckoutEvent:
        cart_id = base.require_id(cart.get("id"), "id")
        product_id = base.text(cart.get("product_id"), 100)
        email = base.text(cart.get("email"), 254).lower()
        phone, problem = base.first_mobile([(cart.get("phone"), cart.get("country"))])
        # The cart's own id is its identity: a new cart by the same buyer is a new recovery.
        # The buyer and product are the key an order (which names no cart) finds it by.
        return CheckoutEvent(
            kind=Kind.ABANDONED,
            platform=self.name,
            event_id=f"cart:{cart_id}",
            checkout_id=f"cart:{cart_id}",
            token=base.buyer_cart_key(product_id, email, phone),
            phone=phone,
            phone_problem=problem,
            name=base.text(cart.get("name")),
            email=email,
            product_id=product_id,
            link=base.https_link(cart.get("checkout_link")),
            updated_at=base.timestamp(cart.get("created_at")),
        )

    def _order(self, order: dict[str, Any]) -> CheckoutEvent:
        order_id = base.require_id(order.get("order_id"), "order_id")
        customer = json_object(order.get("Customer"))
        product_id = base.text(base.dig(order, "Product", "product_id"), 100)
        email = base.text(customer.get("email"), 254).lower()
        # Kiwify sells in Brazil and its order has no country field: Brazilian numbers.
        phone, problem = base.first_mobile([(customer.get("mobile"), "BR"), (customer.get("phone"), "BR")])
        return CheckoutEvent(
            kind=Kind.PAID,
            platform=self.name,
            event_id=f"order:{order_id}",
            token=base.buyer_cart_key(product_id, email, phone),
            paid_id=f"order:{order_id}",
            phone=phone,
            phone_problem=problem,
            name=base.text(customer.get("full_name")),
            email=email,
            product_id=product_id,
            amount=base.money(
                base.dig(order, "Commissions", "charge_amount"), field="Commissions.charge_amount", cents=True
            ),
            order_id=order_id,
        )
