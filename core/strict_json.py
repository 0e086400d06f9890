"""Strict JSON for bodies from outside: what the decoder lets through, every layer can store.

PostgreSQL's jsonb refuses what Python's json module accepts: infinities (a float overflowed by
`1e400`), NaN, lone UTF-16 surrogates (escaped `\\udc00`, or raw surrogate bytes), NUL. And
nesting as deep as Python's recursion limit only waits to crash something downstream. So every
webhook decodes through here, once, at the edge.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
# Beyond a float's range (≈1.8e308) a number cannot be read by anything but Decimal.
MAX_INTEGER_DIGITS = 308


class HostileJSON(ValueError):
    """A body no layer below the edge should ever see."""


class JSONNumber(float):
    """A JSON number with a fraction or an exponent, as a float that remembers its text.

    A float everywhere (it serialises back as a number), and `str()` gives the digits as sent,
    so money read with `Decimal(str(n))` is exact: "279.9200000000000001" is not 279.92.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JSONNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __str__(self) -> str:
        return self.text


def _number(text: str) -> JSONNumber:
    number = JSONNumber(text)
    if not math.isfinite(number):
        raise HostileJSON(f"number out of range: {text[:40]!r}")
    return number


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise HostileJSON(f"integer out of range: {text[:40]}…")
    return int(text)


def _constant(name: str) -> Any:
    raise HostileJSON(f"{name} is not JSON")


def _check(value: Any, depth: int = 1, *, repair: bool = False) -> Any:
    """Depth and text checked everywhere; NUL (which jsonb cannot store either) becomes U+FFFD."""
    if depth > MAX_DEPTH:
        raise HostileJSON(f"nested deeper than {MAX_DEPTH}")
    if value is _UNREADABLE:
        raise HostileJSON("a number or constant that is not JSON")
    if isinstance(value, str):
        return _text(value, repair=repair)
    if isinstance(value, dict):
        return {
            _text(key, repair=repair): _check(item, depth + 1, repair=repair) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_check(item, depth + 1, repair=repair) for item in value]
    return value


def _text(value: str, *, repair: bool = False) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        if not repair:
            raise HostileJSON("lone UTF-16 surrogate in a string") from exc
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def loads(body: bytes) -> Any:
    """The body's JSON value, or HostileJSON (a ValueError) saying why it cannot be taken in."""
    try:
        # Strict UTF-8: invalid bytes and raw surrogate bytes (ED A0 80…) are refused here.
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HostileJSON(f"UnicodeDecodeError: not UTF-8 at byte {exc.start}") from exc
    try:
        value = json.loads(text, parse_float=_number, parse_int=_integer, parse_constant=_constant)
    except RecursionError as exc:
        raise HostileJSON(f"nested deeper than {MAX_DEPTH}") from exc
    except HostileJSON:
        raise
    except ValueError as exc:
        raise HostileJSON(f"{exc.__class__.__name__}: {exc}"[:200]) from exc
    if _needs_check(text):
        return _check(value)
    return value


# What `_check` looks for can only come from the text in two ways: a lone surrogate or a NUL
# from a \u escape (raw surrogate bytes fail the UTF-8 decoding, raw control characters the
# JSON one), and depth from brackets. A body with neither (Meta's statuses, most messages) is
# taken as decoded: the walk over every value cost more than the decoding (bench/RESULTS.md).
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89abcdefABCDEF])")


def _needs_check(text: str) -> bool:
    if text.count("{") + text.count("[") > MAX_DEPTH:
        return True  # maybe deep: counted, not parsed, so strings' brackets count too
    return _SUSPECT_ESCAPE.search(text) is not None


def check(value: Any, *, repair_text: bool = False) -> Any:
    """A value decoded by `loads_lenient`, checked as `loads` checks a whole body.

    With `repair_text`, a string holding lone surrogates (or bytes that were not UTF-8) is kept
    with those characters replaced by "?" instead of refused: a customer's message with half an
    emoji is still a message to answer.
    """
    return _check(value, repair=repair_text)


class _Unreadable:
    """Stands for a value the lenient reading could not take (overflow, NaN, Infinity)."""


_UNREADABLE = _Unreadable()


def _lenient_number(text: str) -> Any:
    try:
        return _number(text)
    except HostileJSON:
        return _UNREADABLE


def _lenient_integer(text: str) -> Any:
    try:
        return _integer(text)
    except (HostileJSON, ValueError):
        return _UNREADABLE


def loads_lenient(body: bytes) -> Any:
    """The body read as far as it can be, for salvaging the good parts of a hostile batch.

    Invalid UTF-8 becomes lone surrogates and bad numbers a marker: `check()` then refuses
    exactly the parts that hold them. Raises ValueError when the body is not JSON at all.
    """
    text = body.decode("utf-8", "surrogateescape")
    try:
        return json.loads(
            text,
            parse_float=_lenient_number,
            parse_int=_lenient_integer,
            parse_constant=lambda name: _UNREADABLE,
        )
    except RecursionError as exc:
        raise ValueError("nested too deep to read") from exc


def json_object(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one: for optional nested objects."""
    return value if isinstance(value, dict) else {}
