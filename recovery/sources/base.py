"""One adapter per checkout platform, the way django-anymail reads vendor webhooks.

An adapter verifies the platform's signature on the raw bytes (constant time, before parsing)
and parses the payload into `CheckoutEvent`s: small, typed, the same for every platform. The
recovery side (`recovery.sources.services`) never sees a platform's field names. Adding a
platform is one module with a `Source` subclass, listed in `recovery.sources.registry`.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.http import HttpRequest
from django.utils.functional import Promise

from core.phones import InvalidPhone, mobile_phone
from recovery.errors import PayloadUnusable

CENT = Decimal("0.01")
MAX_MONEY = Decimal("9999999999.99")
DECIMAL_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")


class Kind(enum.StrEnum):
    ABANDONED = "abandoned"
    PAID = "paid"
    IGNORED = "ignored"


@dataclass(frozen=True)
class CheckoutEvent:
    """What a platform said about one cart, in Sara's words.

    `event_id` dedups the delivery (kept as WebhookEvent external_id `<platform>:<event_id>`);
    `checkout_id` names the cart, so an order finds the checkout it paid.
    """

    kind: Kind
    platform: str
    event_id: str
    checkout_id: str = ""
    token: str = ""
    phone: str = ""
    name: str = ""
    email: str = ""
    product_id: str = ""
    value: Decimal | None = None
    link: str = ""
    amount: Decimal | None = None
    order_id: str = ""
    # When the platform last changed this object: an older state never overwrites a newer one.
    updated_at: datetime | None = None
    # The key a payment is remembered under when no cart matches it (the platform names no
    # cart: Hotmart's transaction, Kiwify's order).
    paid_id: str = ""
    # Why `phone` is empty: "no_phone" (none given) or "invalid_phone" (none a valid mobile).
    phone_problem: str = ""
    # Only an id came (Nuvemshop's order webhooks): the order is fetched before it converts.
    needs_fetch: bool = False
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.event_id}"


@dataclass(frozen=True)
class Signature:
    """Where a platform sends its signature and how it is made from the raw body and the secret."""

    header: str = ""
    # Kiwify signs in the query string instead of a header.
    query_param: str = ""
    # "hex" or "base64" of an HMAC of the body; "token": the secret itself, sent as is (Hotmart).
    encoding: str = "hex"
    digest: Any = hashlib.sha256

    def given(self, request: HttpRequest) -> str | None:
        if self.query_param:
            return request.GET.get(self.query_param)
        return request.headers.get(self.header)

    def expected(self, secret: str, body: bytes) -> str:
        if self.encoding == "token":
            return secret
        if self.encoding == "base64":
            return hmac_base64(secret, body, self.digest)
        return hmac_hex(secret, body, self.digest)


class Source:
    """A checkout platform: its URL name, its secret, its signature and its payloads."""

    name: ClassVar[str]
    label: ClassVar[str]
    env_var: ClassVar[str]
    signature: ClassVar[Signature]
    # Hotmart disables a URL that keeps failing: an authentic but unusable event is kept and
    # answered 2xx there, where other platforms get the spec's 400.
    acknowledge_bad_events: ClassVar[bool] = False
    # How ops connect it, shown on the admin's Sources page.
    help_text: ClassVar[str | Promise] = ""

    @property
    def secret(self) -> str:
        return getattr(settings, self.env_var, "") or ""

    @property
    def enabled(self) -> bool:
        return bool(self.secret)

    def abandoned_after(self) -> timedelta | None:
        """How long a checkout must stay unchanged before it counts as abandoned (None: at once)."""
        return None

    def verify(self, request: HttpRequest, body: bytes) -> bool:
        return same(self.signature.given(request), self.signature.expected(self.secret, body))

    def delivery_id(self, request: HttpRequest, payload: Any) -> str:
        """The delivery's own id when the platform gives one, to keep an unusable event once."""
        return ""

    def parse(self, request: HttpRequest, payload: dict[str, Any]) -> list[CheckoutEvent]:
        """The payload's events; raises PayloadUnusable for an authentic but unusable payload."""
        raise NotImplementedError


# --- helpers adapters share --------------------------------------------------------------


def hmac_base64(secret: str, body: bytes, digest: Any = hashlib.sha256) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, digest).digest()).decode()


def hmac_hex(secret: str, body: bytes, digest: Any = hashlib.sha256) -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison: the answer leaks nothing about how much matched."""
    return (
        given is not None and bool(given) and hmac.compare_digest(given.strip().encode(), expected.encode())
    )


def dig(data: Any, *path: str | int) -> Any:
    """data[path[0]][path[1]]... or None where any step is missing or of the wrong type."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(data, list) or len(data) <= step:
                return None
        elif not isinstance(data, dict) or step not in data:
            return None
        data = data[step]
    return data


def text(value: Any, limit: int = 200) -> str:
    """A scalar as trimmed text ("" for None, objects and lists)."""
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    return str(value).strip()[:limit]


def first_text(*values: Any, limit: int = 200) -> str:
    for value in values:
        found = text(value, limit)
        if found:
            return found
    return ""


def money(value: Any, *, field: str, cents: bool = False) -> Decimal | None:
    """A platform's amount (number or decimal text; cents when the platform counts in them) →
    Decimal in reais, never through a float's rounding; None when absent or not a positive amount.

    An amount no cart can have (past MAX_MONEY) raises PayloadUnusable: the bound is checked
    before quantizing, which past 28 digits raises InvalidOperation instead of answering.
    """
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    raw = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return None
    if not amount.is_finite() or (isinstance(value, str) and not DECIMAL_TEXT.fullmatch(raw)):
        return None
    if cents:
        amount = amount.scaleb(-2)
    if amount > MAX_MONEY:
        raise PayloadUnusable(f"`{field}` is larger than any cart.", {field: [f"At most {MAX_MONEY} reais."]})
    amount = amount.quantize(CENT)
    if amount <= 0:
        return None
    return amount


def https_link(value: Any) -> str:
    """A link Sara may send a customer: https only ("" for none; "invalid" marks a refused one)."""
    link = text(value, 1000)
    if not link:
        return ""
    try:
        HTTPS_ONLY(link)
    except ValidationError:
        return INVALID_LINK
    return link


# A sentinel that no real link equals: the cart is skipped with reason invalid_link.
INVALID_LINK = "invalid:"
HTTPS_ONLY = URLValidator(schemes=["https"])


def first_mobile(candidates: Iterable[tuple[Any, Any]]) -> tuple[str, str]:
    """(phone, country) pairs in the platform's documented order → (E.164, "") for the first
    valid mobile, else ("", "no_phone" | "invalid_phone")."""
    seen_any = False
    for raw, country in candidates:
        phone = text(raw, 40)
        if not phone:
            continue
        seen_any = True
        try:
            return mobile_phone(phone, country=text(country, 2)), ""
        except InvalidPhone:
            continue
    return "", "invalid_phone" if seen_any else "no_phone"


def timestamp(value: Any) -> datetime | None:
    """An ISO 8601 time (with its offset) or epoch milliseconds → aware datetime, else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    raw = text(value, 40)
    if not raw:
        return None
    try:
        found = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def buyer_cart_key(product_id: str, email: str, phone: str) -> str:
    """A cart's key where the platform names none: the product and the buyer, the buyer as a
    digest so no e-mail or phone sits in ids, logs or the Sources page."""
    buyer = email.strip().lower() or "".join(ch for ch in phone if ch.isdigit())
    if not product_id or not buyer:
        return ""
    return f"{product_id}:{hashlib.sha256(buyer.encode()).hexdigest()[:24]}"


def require_object(payload: Any, field: str) -> dict[str, Any]:
    value = payload.get(field) if isinstance(payload, dict) else None
    if not isinstance(value, dict):
        raise PayloadUnusable(f"`{field}` must be an object.", {field: ["Expected an object."]})
    return value


def require_id(value: Any, field: str) -> str:
    found = text(value, 150)
    if not found:
        raise PayloadUnusable(f"`{field}` is required.", {field: ["This field is required."]})
    return found
