"""Nuvemshop: checkouts are polled (no cart webhook); order webhooks carry only ids.

Docs: TiendaNube/api-docs `resources/abandoned_checkout.md` (GET /checkouts: a checkout appears
after the customer's second step, up to 6 hours late), `resources/webhook.md` (X-Linkedstore-
HMAC-SHA256 is the hex HMAC-SHA256 of the body with the app's secret; 14 retries over three
days) and `resources/order.md` (an order's `token` is its checkout's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.strict_json import json_object
from recovery.sources import base
from recovery.sources.base import CheckoutEvent, Kind, Signature, Source

PAGE_SIZE = 200  # Nuvemshop's largest page
TIMEOUT_SECONDS = 10
USER_AGENT = "Sara cart recovery (https://github.com/sara)"


class Nuvemshop(Source):
    name = "nuvemshop"
    label = "Nuvemshop"
    env_var = "NUVEMSHOP_APP_SECRET"
    signature = Signature(header="X-Linkedstore-HMAC-SHA256")
    help_text = _(
        "App webhooks: order/paid to this URL; checkouts are read every 5 minutes with the store's token."
    )

    def delivery_id(self, request: HttpRequest, payload: Any) -> str:
        if isinstance(payload, dict) and payload.get("id") is not None:
            return f"{base.text(payload.get('event'), 40)}:{base.text(payload.get('id'), 60)}"
        return ""

    def parse(self, request: HttpRequest, payload: dict[str, Any]) -> list[CheckoutEvent]:
        event = base.text(payload.get("event"), 40)
        order_id = base.require_id(payload.get("id"), "id")
        if event != "order/paid":
            return [
                CheckoutEvent(
                    kind=Kind.IGNORED, platform=self.name, event_id=f"{event}:{order_id}", note=event
                )
            ]
        # Only the id comes: the order is read from the API before it converts anything.
        return [
            CheckoutEvent(
                kind=Kind.PAID,
                platform=self.name,
                event_id=f"order/paid:{order_id}",
                order_id=order_id,
                needs_fetch=True,
            )
        ]


def checkout_event(checkout: dict[str, Any]) -> CheckoutEvent:
    """A polled checkout: abandoned, or paid once it has `completed_at`."""
    checkout_id = base.require_id(checkout.get("id"), "id")
    completed = bool(checkout.get("completed_at"))
    total = base.money(checkout.get("total"), field="total")
    shipping_country = checkout.get("shipping_country")
    billing_country = checkout.get("billing_country")
    # The contact's phone first, then the shipping and billing ones, each in its address's
    # country (the contact's in the shipping one). The documented sample's are all a landline.
    phone, problem = base.first_mobile(
        [
            (checkout.get("contact_phone"), shipping_country or billing_country),
            (checkout.get("shipping_phone"), shipping_country),
            (checkout.get("billing_phone"), billing_country),
        ]
    )
    return CheckoutEvent(
        kind=Kind.PAID if completed else Kind.ABANDONED,
        platform=Nuvemshop.name,
        event_id=f"checkout:{checkout_id}:{'completed' if completed else 'abandoned'}",
        checkout_id=checkout_id,
        token=base.text(checkout.get("token"), 200),
        phone=phone,
        phone_problem=problem,
        name=base.first_text(checkout.get("contact_name"), checkout.get("shipping_name")),
        email=base.text(checkout.get("contact_email"), 254),
        product_id=base.text(base.dig(checkout, "products", 0, "product_id"), 100),
        value=None if completed else total,
        amount=total if completed else None,
        link=base.https_link(checkout.get("abandoned_checkout_url")),
        updated_at=base.timestamp(checkout.get("updated_at")),
    )


def order_event(order: dict[str, Any], *, event_id: str) -> CheckoutEvent:
    """A fetched order, paid: it converts the checkout with the same id (a Nuvemshop checkout
    becomes its order, keeping its id and token)."""
    order_id = base.require_id(order.get("id"), "id")
    shipping = json_object(order.get("shipping_address"))
    phone, problem = base.first_mobile(
        [
            (order.get("contact_phone"), shipping.get("country") or order.get("billing_country")),
            (base.dig(order, "customer", "phone"), shipping.get("country") or order.get("billing_country")),
            (shipping.get("phone"), shipping.get("country")),
            (order.get("billing_phone"), order.get("billing_country")),
        ]
    )
    return CheckoutEvent(
        kind=Kind.PAID,
        platform=Nuvemshop.name,
        event_id=event_id,
        checkout_id=order_id,
        token=base.text(order.get("token"), 200),
        phone=phone,
        phone_problem=problem,
        name=base.first_text(base.dig(order, "customer", "name"), order.get("contact_name")),
        email=base.first_text(base.dig(order, "customer", "email"), order.get("contact_email"), limit=254),
        # The list example has `total`; the single-order example (GET /orders/{id}, what Sara
        # reads) has only `price`, which equals subtotal plus shipping there.
        amount=base.money(order.get("total"), field="total") or base.money(order.get("price"), field="price"),
        order_id=order_id,
    )


# --- the store's API ------------------------------------------------------------------------


class NuvemshopError(Exception):
    """The API refused or failed. `permanent`: retrying cannot help (a revoked token)."""

    def __init__(self, message: str, *, status: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.permanent = permanent


@dataclass(frozen=True)
class Page:
    checkouts: list[dict[str, Any]]
    last: bool


class NuvemshopClient:
    """GET /{store_id}/checkouts and /{store_id}/orders/{id}, with `Authentication: bearer`."""

    def __init__(
        self, *, store_id: str, token: str, base_url: str, session: requests.Session | None = None
    ) -> None:
        self.base = f"{base_url.rstrip('/')}/{store_id}"
        self.session = session or requests.Session()
        # Nuvemshop names the header Authentication (not Authorization) and asks every app
        # for a User-Agent that identifies it.
        self.headers = {"Authentication": f"bearer {token}", "User-Agent": USER_AGENT}

    @classmethod
    def from_settings(cls) -> NuvemshopClient:
        return cls(
            store_id=settings.NUVEMSHOP_STORE_ID,
            token=settings.NUVEMSHOP_ACCESS_TOKEN,
            base_url=settings.NUVEMSHOP_API_BASE_URL,
        )

    def checkouts(self, *, page: int) -> Page:
        response = self._get("/checkouts", params={"page": page, "per_page": PAGE_SIZE})
        if response.status_code == 404:
            return Page([], last=True)  # past the last page, Nuvemshop answers 404
        items = self._json(response)
        if not isinstance(items, list):
            raise NuvemshopError("Checkouts: expected a list.", status=response.status_code)
        return Page([c for c in items if isinstance(c, dict)], last=len(items) < PAGE_SIZE)

    def order(self, order_id: str) -> dict[str, Any]:
        order = self._json(self._get(f"/orders/{order_id}"))
        if not isinstance(order, dict):
            raise NuvemshopError("Order: expected an object.")
        return order

    def _get(self, path: str, params: dict[str, Any] | None = None) -> requests.Response:
        try:
            response = self.session.get(
                self.base + path, params=params, headers=self.headers, timeout=TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            raise NuvemshopError(f"Nuvemshop unreachable: {type(exc).__name__}") from exc
        if response.status_code in (401, 403):
            raise NuvemshopError(
                "Nuvemshop refused the access token: the app was uninstalled or the token revoked.",
                status=response.status_code,
                permanent=True,
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise NuvemshopError(f"Nuvemshop answered {response.status_code}.", status=response.status_code)
        if response.status_code >= 400 and response.status_code != 404:
            raise NuvemshopError(
                f"Nuvemshop answered {response.status_code}.", status=response.status_code, permanent=True
            )
        return response

    @staticmethod
    def _json(response: requests.Response) -> Any:
        if response.status_code == 404:
            raise NuvemshopError("Not found.", status=404, permanent=True)
        try:
            return response.json()
        except ValueError as exc:
            raise NuvemshopError("Nuvemshop sent no JSON.", status=response.status_code) from exc
