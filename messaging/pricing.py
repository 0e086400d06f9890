"""What a message costs: Meta's per-message rates and the chat model's tokens, in BRL (SPEC §13).

Meta bills a delivered message by its pricing category (SARA_META_PRICES, with Brazil's rate
card as the default); the first SARA_META_FREE_SERVICE_PER_MONTH service messages of a month
are free. When a status webhook carried Meta's `pricing` block, its verdict (billable, type)
stands; without one the category is inferred (templates are marketing, free-form is service)
and the free service tier is counted here.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

# Per-message pricing types Meta does not charge for.
FREE_TYPES = ("free_customer_service", "free_entry_point")
MARKETING = "marketing"
SERVICE = "service"
MILLION = Decimal(1_000_000)


def meta_price_brl(category: str) -> Decimal:
    """One delivered message of this category, in BRL; an unknown category is priced as marketing,
    the dearest, so a new category never makes Sara look cheaper than she is."""
    prices = settings.SARA_META_PRICES
    price = prices.get(category, prices.get(MARKETING, Decimal(0)))
    return price * settings.SARA_FX_TO_BRL


def meta_category(*, pricing_category: str, is_template: bool) -> str:
    """Meta's category when a status said it, else the one Sara's message would be billed under."""
    if pricing_category:
        return pricing_category
    # Sara's templates are cart reminders, which Meta classifies as marketing.
    return MARKETING if is_template else SERVICE


def meta_charged(*, pricing_billable: bool | None, pricing_type: str) -> bool | None:
    """Meta's verdict from the pricing block: True/False, or None when no block came."""
    if pricing_type in FREE_TYPES:
        return False
    if pricing_billable is not None:
        return pricing_billable
    if pricing_type:
        return True  # per-message pricing dropped `billable`; a "regular" type is charged
    return None


def model_cost_brl(*, model: str, tokens: int) -> Decimal:
    """Tokens priced at the model's blended rate (US$ per million), in BRL; an unpriced model costs
    as the configured default model."""
    prices = settings.SARA_MODEL_PRICES_USD
    rate = prices.get(model) or prices.get(settings.OPENAI_MODEL, Decimal(0))
    return Decimal(tokens) * rate / MILLION * usd_to_brl()


def usd_to_brl() -> Decimal:
    """Model prices are in US$; Meta's table is in SARA_META_PRICE_CURRENCY at SARA_FX_TO_BRL."""
    return settings.SARA_FX_TO_BRL if settings.SARA_META_PRICE_CURRENCY == "USD" else Decimal(1)
