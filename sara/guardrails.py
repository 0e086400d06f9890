"""Checks on a reply after the model wrote it: only the figures, links and offers the shop made.

A precise offer binds the shop (CDC arts. 30 and 35), so the text a customer reads may hold no
URL but the cart's links, and no percentage, R$ amount or coupon code other than the cart's
value, the discount quoted on this cart and the figures the shop wrote in its knowledge. Whatever
the model (or an instruction hidden in a customer's message) wrote, a sentence breaking that is
dropped here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from core.text import fold
from sara.interpretation import Context
from sara.money import amounts_in, parse_brl

URL = re.compile(
    r"(?:https?://|www\.)\S+"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|br|io|ly|me|shop|store|link|app|site|online|co|gl|info|biz)"
    r"(?:\.br)?(?:/\S*)?",
    re.IGNORECASE,
)
PERCENT = re.compile(r"(\d+(?:[.,]\d+)?)\s*(?:%|por\s*cento)", re.IGNORECASE)
# "cupom VOLTA10", "código: BLACK-50", or a bare code such as "SARA50" (capitals and digits).
COUPON = re.compile(
    r"\b(?i:cupom|cupon|c[oó]digo|code|voucher)\s*(?i:de\s+desconto\s*)?[:\-]?\s*[\"'“]?"
    r"([A-Za-z_-]*\d[A-Za-z0-9_-]*|[A-Z][A-Z0-9_-]{2,29})\b"
    r"|\b((?=[A-Z0-9_-]*\d)(?=(?:[A-Z0-9_-]*[A-Z]){2})[A-Z0-9_-]{4,30})\b"
)
DISCOUNT_WORDS = re.compile(
    r"\b(desconto|descontos|cupom|cupons|promo[cç][aã]o|abatimento|mais barato|baixar o pre[cç]o|off)\b",
    re.IGNORECASE,
)
SENTENCE_END = re.compile(r"((?<=[.!?…])\s+|\n+)")
# Words a coupon regex catches that are no coupon.
HUNDRED = Decimal(100)
NOT_CODES = frozenset({"PIX", "QR", "BOLETO", "CPF", "CNPJ", "CEP", "SEDEX", "PAC"})


@dataclass(frozen=True)
class Allowance:
    """What a reply to this cart may contain."""

    urls: frozenset[str]
    amounts: frozenset[Decimal]
    percents: frozenset[Decimal]
    codes: frozenset[str]
    discount_offered: bool
    knowledge_folded: str


@dataclass(frozen=True)
class Guarded:
    text: str
    violations: tuple[str, ...] = ()
    dropped: int = 0
    # True when nothing of the model's text survived and a safe reply stands in for it.
    replaced: bool = False


@lru_cache(maxsize=256)
def _knowledge_figures(knowledge: str) -> tuple[frozenset[Decimal], frozenset[Decimal], frozenset[str], str]:
    """The amounts, percentages and codes written in the shop's knowledge, and its folded text.

    The same few texts (the shop's, with each product's) come back with every reply: read once.
    """
    return (
        frozenset(amounts_in(knowledge)),
        frozenset(_percents(knowledge)),
        frozenset(_codes(knowledge)),
        fold(knowledge),
    )


def allowance_for(context: Context, *, offer_discount: bool) -> Allowance:
    knowledge = context.knowledge.all_text()
    known_amounts, known_percents, known_codes, knowledge_folded = _knowledge_figures(knowledge)
    urls = {context.payment_link} if context.payment_link else set()
    amounts = {Decimal(context.value).quantize(Decimal("0.01")), *known_amounts}
    percents = set(known_percents)
    codes = set(known_codes)
    if context.knowledge.product_price is not None:
        amounts.add(context.knowledge.product_price)
    if offer_discount and context.discount_link:
        urls.add(context.discount_link)
        codes |= set(_codes_in_url(context.discount_link))
        if context.discount_percent is not None:
            percents.add(context.discount_percent.normalize())
        if context.discounted_value is not None:
            amounts.add(context.discounted_value)
    return Allowance(
        urls=frozenset(u for u in urls if u),
        amounts=frozenset(amounts),
        percents=frozenset(percents),
        codes=frozenset(codes),
        discount_offered=offer_discount,
        knowledge_folded=knowledge_folded,
    )


def guard(text: str, allowance: Allowance) -> Guarded:
    """The text without its violating sentences (the rest as written), and which rules they broke."""
    kept: list[str] = []
    violations: list[str] = []
    dropped = 0
    for sentence, separator in _sentences(text):
        found = sentence_violations(sentence, allowance)
        if found:
            dropped += 1
            violations += [v for v in found if v not in violations]
        else:
            kept.append(sentence + separator)
    return Guarded(text="".join(kept).strip(), violations=tuple(violations), dropped=dropped)


def sentence_violations(sentence: str, allowance: Allowance) -> list[str]:
    return [rule for rule, _ in sentence_breaches(sentence, allowance)]


def breaches(text: str, allowance: Allowance) -> list[tuple[str, str]]:
    """Every rule the text breaks, each with what broke it (the URL, the amount, the code...)."""
    found: list[tuple[str, str]] = []
    for sentence, _ in _sentences(text):
        found += [b for b in sentence_breaches(sentence, allowance) if b not in found]
    return found


def sentence_breaches(sentence: str, allowance: Allowance) -> list[tuple[str, str]]:
    """The rules a sentence breaks, each once, with the first figure or link that broke it."""
    found: list[tuple[str, str]] = []
    stripped = sentence
    for match in URL.finditer(sentence):
        url = match.group(0).rstrip(".,;:!?)»\"'")
        if url not in allowance.urls:
            found.append(("url", url))
            break
    for url in allowance.urls:
        stripped = stripped.replace(url, " ")
    figures = 0
    percents = list(_percents(stripped))
    if not DISCOUNT_WORDS.search(stripped):
        # "100% original", "100% algodão": a manner of speaking, not an offer.
        percents = [p for p in percents if p != HUNDRED]
    figures += len(percents)
    foreign = [p for p in percents if p not in allowance.percents]
    if foreign:
        found.append(("percent", f"{foreign[0]}%"))
    amounts = amounts_in(stripped)
    figures += len(amounts)
    foreign_amounts = [a for a in amounts if a not in allowance.amounts]
    if foreign_amounts:
        found.append(("amount", str(foreign_amounts[0])))
    codes = list(_codes(stripped))
    figures += len(codes)
    foreign_codes = [c for c in codes if c not in allowance.codes]
    if foreign_codes:
        found.append(("coupon", foreign_codes[0]))
    if DISCOUNT_WORDS.search(stripped) and not allowance.discount_offered and not found:
        # Talk of a discount the rule did not offer is a promise, unless it repeats the shop's
        # own written policy ("5% de desconto no PIX").
        quotes_shop = figures > 0 or fold(sentence) in allowance.knowledge_folded
        if not quotes_shop:
            found.append(("discount_promise", sentence))
    return found


def _sentences(text: str) -> list[tuple[str, str]]:
    """Each sentence with the spacing that follows it, so what is kept reads as it was written."""
    parts = SENTENCE_END.split(text)
    pairs = []
    for index in range(0, len(parts), 2):
        sentence = parts[index].strip()
        separator = parts[index + 1] if index + 1 < len(parts) else ""
        if sentence:
            pairs.append((sentence, separator))
    return pairs


def _percents(text: str) -> list[Decimal]:
    found = []
    for match in PERCENT.finditer(text):
        value = parse_brl(match.group(1))
        if value is not None:
            found.append(value.normalize())
    return found


def _codes(text: str) -> list[str]:
    found = []
    for match in COUPON.finditer(text):
        code = (match.group(1) or match.group(2) or "").strip("-_").upper()
        if code and code not in NOT_CODES and not code.isdigit():
            found.append(code)
    return found


def _codes_in_url(url: str) -> list[str]:
    return [part.upper() for part in re.split(r"[^A-Za-z0-9_-]+", url) if part]
