"""Hotmart: PURCHASE_OUT_OF_SHOPPING_CART (abandoned cart), PURCHASE_APPROVED / _COMPLETE (paid).

Docs: developers.hotmart.com webhook 2.0.0 (purchase and cart-abandonment events). No HMAC:
the X-HOTMART-HOTTOK header carries the account's fixed token. The envelope `id` identifies
the event. The abandonment carries the buyer and the product, no price and no checkout link:
the mapped Product supplies both. Hotmart disables a URL that keeps failing, so an authentic
event that cannot be used is kept and still answered 2xx.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.strict_json import json_object
from recovery.sources import base
from recovery.sources.base import CheckoutEvent, Kind, Signature, Source

ABANDONED = "PURCHASE_OUT_OF_SHOPPING_CART"
PAID = {"PURCHASE_APPROVED", "PURCHASE_COMPLETE"}


class Hotmart(Source):
    name = "hotmart"
    label = "Hotmart"
    env_var = "HOTMART_HOTTOK"
    signature = Signature(header="X-HOTMART-HOTTOK", encoding="token")
    acknowledge_bad_events = True
    help_text = _(
        "Ferramentas → Webhook (API e notificações): version 2.0.0, events Abandono de carrinho and Compra aprovada/completa."
    )

    def delivery_id(self, request: HttpRequest, payload: Any) -> str:
        return base.text(base.dig(payload, "id"), 150)

    def parse(self, request: HttpRequest, payload: dict[str, Any]) -> list[CheckoutEvent]:
        event_id = base.require_id(payload.get("id"), "id")
        event = base.text(payload.get("event"), 60)
        data = json_object(payload.get("data"))
        buyer = json_object(data.get("buyer"))
        product_id = base.text(base.dig(data, "product", "id"), 100)
        email = base.text(buyer.get("email"), 254).lower()
        country = (
            base.dig(buyer, "address", "country_iso")
            or base.dig(data, "checkout_country", "iso")
            or base.dig(data, "purchase", "checkout_country", "iso")
        )
        code = "".join(ch for ch in base.text(buyer.get("checkout_phone_code"), 10) if ch.isdigit())
        phone, problem = base.first_mobile(
            [
                (buyer.get("checkout_phone"), country),
                # Whether checkout_phone_code is the country's calling code is not documented
                # (Hotmart's own sample has "999999999"): tried only when it can be one.
                ("+" + code + base.text(buyer.get("checkout_phone"), 30) if 0 < len(code) <= 3 else "", ""),
                (buyer.get("phone"), country),
            ]
        )
        # Hotmart names no cart: the abandonment event is the cart (its id is its identity), and
        # the buyer and product are a second key by which the purchase that follows finds it.
        common: dict[str, Any] = {
            "platform": self.name,
            "event_id": event_id,
            "token": base.buyer_cart_key(product_id, email, phone),
            "phone": phone,
            "phone_problem": problem,
            "name": base.text(buyer.get("name")),
            "email": email,
            "product_id": product_id,
            "updated_at": base.timestamp(payload.get("creation_date")),
        }
        if event == ABANDONED:
            return [CheckoutEvent(kind=Kind.ABANDONED, checkout_id=f"event:{event_id}", **common)]
        if event in PAID:
            transaction = base.text(base.dig(data, "purchase", "transaction"), 100)
            return [
                CheckoutEvent(
                    kind=Kind.PAID,
                    amount=base.money(
                        base.dig(data, "purchase", "price", "value"), field="data.purchase.price.value"
                    ),
                    order_id=transaction,
                    paid_id=f"transaction:{transaction}" if transaction else f"event:{event_id}",
                    **common,
                )
            ]
        return [CheckoutEvent(kind=Kind.IGNORED, platform=self.name, event_id=event_id, note=event)]
