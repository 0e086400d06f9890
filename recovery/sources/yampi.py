"""Yampi: cart.reminder (abandoned cart) and order.paid, one envelope for every event.

Docs: docs.yampi.com.br/api-reference/webhooks ("Segurança": X-Yampi-Hmac-SHA256 is the base64
of the binary HMAC-SHA256 of the body with the webhook's secret) and the FAQ (envelope `event`,
`time`, `merchant`, `resource`; answer 2xx within 5 s, 30 failures disable the webhook).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from recovery.sources import base
from recovery.sources.base import CheckoutEvent, Kind, Signature, Source


class Yampi(Source):
    name = "yampi"
    label = "Yampi"
    env_var = "YAMPI_WEBHOOK_SECRET"
    signature = Signature(header="X-Yampi-Hmac-SHA256", encoding="base64")
    help_text = _(
        "Configurações → Webhooks: events cart.reminder and order.paid; paste the webhook's secret."
    )

    def delivery_id(self, request: HttpRequest, payload: Any) -> str:
        resource_id = base.text(base.dig(payload, "resource", "id"), 60)
        return f"{base.text(base.dig(payload, 'event'), 40)}:{resource_id}" if resource_id else ""

    def parse(self, request: HttpRequest, payload: dict[str, Any]) -> list[CheckoutEvent]:
        event = base.text(payload.get("event"), 40)
        resource = base.require_object(payload, "resource")
        resource_id = base.require_id(resource.get("id"), "resource.id")
        event_id = f"{event}:{resource_id}"
        # The resource comes "with all its includes": the customer under customer.data, items
        # under items.data.
        # The cart in Yampi's API reference names its buyer in `tracking_data` (name, email)
        # and `customer_id`; the phone is only in the customer include. Yampi sells in Brazil:
        # its numbers are read as Brazilian.
        customer = base.dig(resource, "customer", "data") or {}
        phone, problem = base.first_mobile(
            [
                (base.dig(customer, "phone", "full_number"), "BR"),
                (base.dig(customer, "phone", "formated_number"), "BR"),
                (base.dig(resource, "tracking_data", "phone"), "BR"),
            ]
        )
        first_last = (base.text(base.dig(customer, "first_name")), base.text(base.dig(customer, "last_name")))
        # What every event of this delivery says: who it is about.
        said: dict[str, Any] = {
            "platform": self.name,
            "event_id": event_id,
            "phone": phone,
            "phone_problem": problem,
            "name": base.first_text(
                base.dig(customer, "name"),
                " ".join(filter(None, first_last)),
                base.dig(resource, "tracking_data", "name"),
            ),
            "email": base.first_text(
                base.dig(customer, "email"), base.dig(resource, "tracking_data", "email"), limit=254
            ),
        }
        if event == "cart.reminder":
            link = base.first_text(resource.get("simulate_url"), resource.get("checkout_url"), limit=1000)
            total = base.dig(resource, "totalizers", "total")
            return [
                CheckoutEvent(
                    kind=Kind.ABANDONED,
                    checkout_id=resource_id,
                    token=base.text(resource.get("token"), 200),
                    product_id=base.text(base.dig(resource, "items", "data", 0, "product_id"), 100),
                    value=base.money(total, field="resource.totalizers.total"),
                    link=base.https_link(link),
                    **said,
                )
            ]
        if event == "order.paid":
            return [
                CheckoutEvent(
                    kind=Kind.PAID,
                    checkout_id=base.text(resource.get("cart_id"), 150),
                    token=base.text(resource.get("cart_token"), 200),
                    amount=base.money(resource.get("value_total"), field="resource.value_total"),
                    order_id=resource_id,
                    **said,
                )
            ]
        return [CheckoutEvent(kind=Kind.IGNORED, platform=self.name, event_id=event_id, note=event)]
