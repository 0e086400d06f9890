"""Opt-out detection (layer 1): keywords matched on lower-cased, accent-folded text.

A short message (at most four words, punctuation and emoji aside) containing an active
keyword is a strong match and opts out at once. A keyword inside an ordinary sentence is a
weak match: the interpreter decides ("vou sair pra pagar no pix" is not an opt-out).
"""

from __future__ import annotations

import enum
from functools import lru_cache

from compliance import sql
from core.text import fold, unstretch

STRONG_MATCH_MAX_WORDS = 4


class Match(enum.Enum):
    NONE = "none"
    WEAK = "weak"
    STRONG = "strong"


def active_keywords() -> list[str]:
    # Read on every message (a dozen rows): a keyword added in the admin counts at once. Plain
    # SQL (compliance.sql): building the ORM query cost three times the CPU of running it.
    return list(_folded(sql.active_keywords()))


@lru_cache(maxsize=16)
def _folded(keywords: tuple[str, ...]) -> tuple[str, ...]:
    # The list changes when staff edit it, rarely: folded once per version of it.
    return tuple(fold(keyword) for keyword in keywords)


def detect(text: str, keywords: list[str] | None = None) -> Match:
    # "PARAAAR", "sairrr": a keyword typed with stretched letters is the keyword.
    folded = unstretch(fold(text))
    if not folded:
        return Match.NONE
    padded = f" {folded} "
    candidates = active_keywords() if keywords is None else [fold(k) for k in keywords]
    if not any(k and f" {k} " in padded for k in candidates):
        return Match.NONE
    if len(folded.split()) <= STRONG_MATCH_MAX_WORDS:
        return Match.STRONG
    return Match.WEAK
