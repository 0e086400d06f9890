"""The percent a discount link states, so a product cannot promise one percent and link another.

A link states its percent in one of these places (the first found is the link's statement):
- a query parameter named discount, desconto, percent, percentual, off, coupon, cupom, cupon,
  code, codigo, voucher or promo ("?discount=10", "?desconto=10%", "?cupom=VOLTA10");
- the path segment after /discount/, /desconto/, /coupon/ or /cupom/ (Shopify's
  "https://loja.com/discount/VOLTA10").
A value made only of a number ("10", "10%", "12,5") is that percent. A coupon code states the
percent written at its end or start as one or two digits ("VOLTA10", "SARA20", "10OFF"); a code
with no such digits ("BEMVINDO", "BLACK2025") states none, and a link that states none is
accepted as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise
from urllib.parse import parse_qsl, unquote, urlsplit

PARAMETERS = frozenset(
    {
        "discount",
        "desconto",
        "percent",
        "percentual",
        "off",
        "coupon",
        "cupom",
        "cupon",
        "code",
        "codigo",
        "voucher",
        "promo",
    }
)
PATH_MARKERS = frozenset({"discount", "desconto", "coupon", "cupom"})
_NUMBER = re.compile(r"(\d{1,2}(?:[.,]\d{1,2})?)\s*%?")
_CODE = re.compile(r"[A-Za-z][A-Za-z_-]*?[_-]?(\d{1,2})|(\d{1,2})[_-]?[A-Za-z][A-Za-z_-]*")


@dataclass(frozen=True)
class LinkPercent:
    percent: Decimal
    where: str  # what the link says, as staff would read it: "VOLTA10", "discount=10"


def stated_percent(url: str) -> LinkPercent | None:
    """The percent the link states, or None when it states none."""
    parts = urlsplit(url.strip())
    for name, value in parse_qsl(parts.query, keep_blank_values=False):
        if name.lower() in PARAMETERS:
            percent = _value_percent(value)
            if percent is not None:
                return LinkPercent(percent, f"{name}={value}")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    for marker, value in pairwise(segments):
        if marker.lower() in PATH_MARKERS:
            percent = _value_percent(value)
            if percent is not None:
                return LinkPercent(percent, value)
    return None


def _value_percent(value: str) -> Decimal | None:
    value = value.strip()
    number = _NUMBER.fullmatch(value)
    if number:
        return Decimal(number.group(1).replace(",", "."))
    code = _CODE.fullmatch(value)
    if code:
        return Decimal(code.group(1) or code.group(2))
    return None
