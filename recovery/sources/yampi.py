"""Yampi: cart.reminder (abandoned cart) and order.paid, one envelope for every event.

Docs: docs.yampi.com.br/api-reference/webhooks ("Segurança": X-Yampi-Hmac-SHA256 is the base64
of the binary HMAC-SHA256 of the body with the webhook's secret) and the FAQ (envelope `event`,
`time`, `merchant`, `resource`; answer 2xx within 5 s, 30 failures disable the webhook).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from recovery.sources.base import (
    CheckoutEvent,
    Kind,
    Source,
    dig,
    first_mobile,
    first_text,
    hmac_base64,
    https_link,
    money,
    require_id,
    require_object,
    same,
    text,
)


class Yampi(Source):
    name = "yampi"
    label = "Yampi"
    env_var = "YAMPI_WEBHOOK_SECRET"
    help_text = _(
        "Configurações → Webhooks: events cart.reminder and order.paid; paste the webhook's secret."
    )

    def verify(self, request: HttpRequest, body: bytes) -> bool:
        return same(request.headers.get("X-Yampi-Hmac-SHA256"), hmac_base64(self.secret, body))

    def delivery_id(self, request: HttpRequest, payload: Any) -> str:
        resource_id = text(dig(payload, "resource", "id"), 60)
        return f"{text(dig(payload, 'event'), 40)}:{resource_id}" if resource_id else ""

    def parse(self, request: HttpRequest, payload: dict[str, Any]) -> list[CheckoutEvent]:
        event = text(payload.get("event"), 40)
        resource = require_object(payload, "resource")
        resource_id = require_id(resource.get("id"), "resource.id")
        event_id = f"{event}:{resource_id}"
        # The resource comes "with all its includes": the customer under customer.data, items
        # under items.data.
        # The cart in Yampi's API reference names its buyer in `tracking_data` (name, email)
        # and `customer_id`; the phone is only in the customer include. Yampi sells in Brazil:
        # its numbers are read as Brazilian.
        customer = dig(resource, "customer", "data") or {}
        phone, problem = first_mobile(
            [
                (dig(customer, "phone", "full_number"), "BR"),
                (dig(customer, "phone", "formated_number"), "BR"),
                (dig(resource, "tracking_data", "phone"), "BR"),
            ]
        )
        person: dict[str, Any] = {
            "phone": phone,
            "phone_problem": problem,
            "name": first_text(
                dig(customer, "name"),
                " ".join(filter(None, (text(dig(customer, "first_name")), text(dig(customer, "last_name"))))),
                dig(resource, "tracking_data", "name"),
            ),
            "email": first_text(dig(customer, "email"), dig(resource, "tracking_data", "email"), limit=254),
        }
        if event == "cart.reminder":
            return [
                CheckoutEvent(
                    kind=Kind.ABANDONED,
                    platform=self.name,
                    event_id=event_id,
                    checkout_id=resource_id,
                    token=text(resource.get("token"), 200),
                    product_id=text(dig(resource, "items", "data", 0, "product_id"), 100),
                    value=money(dig(resource, "totalizers", "total"), field="resource.totalizers.total"),
                    link=https_link(
                        first_text(resource.get("simulate_url"), resource.get("checkout_url"), limit=1000)
                    ),
                    **person,
                )
            ]
        if event == "order.paid":
            cart_id = text(resource.get("cart_id"), 150)
            return [
                CheckoutEvent(
                    kind=Kind.PAID,
                    platform=self.name,
                    event_id=event_id,
                    checkout_id=cart_id,
                    token=text(resource.get("cart_token"), 200),
                    amount=money(resource.get("value_total"), field="resource.value_total"),
                    order_id=resource_id,
                    **person,
                )
            ]
        return [CheckoutEvent(kind=Kind.IGNORED, platform=self.name, event_id=event_id, note=event)]
