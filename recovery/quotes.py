"""What Sara quoted to a cart: kept on the cart so the customer may always pay it (SPEC §4.4)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from recovery.models import Abandonment


def quote_keep(*, abandonment: Abandonment, at: datetime) -> dict[str, Any]:
    """Record the discount offered now (percent, discounted value, link) on the cart.

    The caller saves the cart (field `quotes`) with the rest of its turn. Whatever happens to
    the product afterwards, a payment of this value with the discounted link converts the cart.
    """
    product = abandonment.product
    if product is None:
        raise ValueError("a cart without a product has no discount to quote")
    quote = {
        "percent": f"{product.discount_percent:.2f}",
        "value": f"{abandonment.discounted_value():.2f}",
        "link": product.discount_link,
        "at": at.isoformat(),
    }
    abandonment.quotes = [*abandonment.quotes, quote]
    return quote


def expected_amounts(abandonment: Abandonment, *, link_type: str) -> list[Decimal]:
    """Every amount that pays this cart by this link: its value, or any discounted value it was offered.

    The product's current discount counts too: a customer may reach the discount link another
    way (the shop's own page) before Sara ever quotes it.
    """
    if link_type == Abandonment.ConversionLink.ORIGINAL:
        return [abandonment.value]
    amounts = [Decimal(quote["value"]) for quote in abandonment.quotes]
    current = abandonment.discounted_value()
    if current is not None and current not in amounts:
        amounts.append(current)
    return amounts
