"""Text shared across apps: folding for keyword matching, money as Brazilians write it."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

_NOT_WORD = re.compile(r"[^\w\s]|_", re.UNICODE)
# A letter typed three times or more is one letter ("paraaa", "simmm"). Two stay inside a word,
# Portuguese writes "rr" and "ss" ("carro", "passa"), but no Portuguese word ends in a doubled
# letter: "oii", "sairr" are stretched too.
_STRETCHED = re.compile(r"([a-z])\1{2,}|([a-z])\2\b")


def fold(text: str) -> str:
    """Lower-case, strip accents, drop punctuation and emoji, squeeze spaces."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    no_accents = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NOT_WORD.sub(" ", no_accents).split())


def unstretch(folded: str) -> str:
    """Folded text with stretched letters squeezed: "PARAAAR" folds and unstretches to "parar"."""
    return _STRETCHED.sub(lambda match: match.group(1) or match.group(2), folded)


def brl(amount: Decimal) -> str:
    """R$ 1.234,56 — Brazilian grouping and decimal comma."""
    whole, cents = f"{amount:,.2f}".split(".")
    return f"R$ {whole.replace(',', '.')},{cents}"
