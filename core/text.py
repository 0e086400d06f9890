"""Text folding shared by opt-out detection and the rule-based interpreter."""

from __future__ import annotations

import re
import unicodedata

_NOT_WORD = re.compile(r"[^\w\s]|_", re.UNICODE)


def fold(text: str) -> str:
    """Lower-case, strip accents, drop punctuation and emoji, squeeze spaces."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    no_accents = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NOT_WORD.sub(" ", no_accents).split())
