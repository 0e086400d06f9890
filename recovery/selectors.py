"""Reads of recovery's rows with logic: the shop's knowledge as plain values for the agent."""

from __future__ import annotations

from recovery import sql
from recovery.models import Product, Shop
from sara.knowledge import SHOP_FIELDS, ShopKnowledge


def shop_knowledge(*, product: Product | None) -> ShopKnowledge:
    """The shop's row (or its defaults, should the row be missing) and the cart's product."""
    # Read for every customer message: plain SQL, as core.sql explains.
    shop = sql.shop_first() or Shop()
    return ShopKnowledge(
        **{field: getattr(shop, field) for field, _label in SHOP_FIELDS},
        product_price=product.price if product else None,
        product_faq=product.faq if product else "",
    )
