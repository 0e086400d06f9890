"""Money the way a Brazilian customer reads it (R$ 1.299,00), and read back out of a text."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from core.text import brl

__all__ = ["amounts_in", "brl", "parse_brl", "percent"]

CENT = Decimal("0.01")

# "R$ 1.299,00", "R$1299", "R$ 19,90", "1.299,00 reais": what a reply or the shop's text may quote.
MONEY_PATTERN = re.compile(
    r"R\$\s*(?P<a>\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?|\d+(?:[.,]\d{1,2})?)"
    r"|\b(?P<b>\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?|\d+(?:[.,]\d{1,2})?)\s*reais",
    re.IGNORECASE,
)


def percent(value: Decimal) -> str:
    """10 → "10", 12.5 → "12,5": a percentage as a Brazilian writes it."""
    return f"{value.normalize():f}".replace(".", ",")


def parse_brl(text: str) -> Decimal | None:
    """The amount of one written Brazilian figure ("1.299,00", "19,90", "297"), None if unreadable."""
    cleaned = text.strip()
    if "," in cleaned:
        cleaned = cleaned.replace(".", "").replace(",", ".")
    elif cleaned.count(".") == 1 and len(cleaned.split(".")[1]) <= 2:
        pass  # "297.00": a decimal point, as a model trained on English may write it
    else:
        cleaned = cleaned.replace(".", "")
    try:
        return Decimal(cleaned).quantize(CENT)
    except InvalidOperation:
        return None


def amounts_in(text: str) -> list[Decimal]:
    """Every R$ amount written in a text."""
    found = []
    for match in MONEY_PATTERN.finditer(text):
        value = parse_brl(match.group("a") or match.group("b"))
        if value is not None:
            found.append(value)
    return found
