"""Reads of recovery's rows with logic: the shop's knowledge as plain values for the agent."""

from __future__ import annotations

from recovery import sql
from recovery.models import Product, Shop
from sara.knowledge import ShopKnowledge


def shop_knowledge(*, product: Product | None) -> ShopKnowledge:
    """The shop's row (or its defaults, should the row be missing) and the cart's product."""
    # Read for every customer message: plain SQL, as core.sql explains.
    shop = sql.shop_first() or Shop()
    return ShopKnowledge(
        name=shop.name,
        about=shop.about,
        shipping=shop.shipping,
        payment_methods=shop.payment_methods,
        installments=shop.installments,
        returns=shop.returns,
        support_hours=shop.support_hours,
        product_price=product.price if product else None,
        product_faq=product.faq if product else "",
    )
