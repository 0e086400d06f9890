"""Form fields for numbers as Brazilians type them: money ("R$ 1.299,00") and percents ("15,5 %").

How a typed amount is read:
- a comma is always the decimal separator ("397,00", "397,5"), and dots before it group
  thousands ("1.299,00", "12.345.678,90");
- a dot followed by one or two digits is a decimal point ("1299.00", "397.5"), the way
  spreadsheets and other systems export numbers; "1,299.00" (commas grouping, dot decimal) is read
  that way too;
- a dot followed by exactly three digits ("1.299") could be R$ 1.299,00 or R$ 1,299: it is refused
  with a message asking for the cents, never guessed. Two or more such groups ("1.299.000") can only
  be thousands and are read so;
- "R$", spaces and a trailing "%" are ignored; anything else (letters, a minus sign, more than two
  decimals for money) is refused with a message that says what to type.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_DIGITS = r"\d+"
_GROUPED = r"\d{1,3}(?:\.\d{3})+"  # 1.299 / 12.345.678
_US_GROUPED = r"\d{1,3}(?:,\d{3})+"  # 1,299 / 12,345,678

# Each unambiguous shape: (pattern, thousands separator, decimal separator).
_MONEY_SHAPES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(rf"({_DIGITS}|{_GROUPED}),(\d{{1,2}})", re.ASCII), ".", ","),  # 397,00  1.299,00
    (re.compile(rf"({_DIGITS}|{_US_GROUPED})\.(\d{{1,2}})", re.ASCII), ",", "."),  # 1299.00  1,299.00
    (re.compile(rf"({_DIGITS}|\d{{1,3}}(?:\.\d{{3}}){{2,}})()", re.ASCII), ".", ""),  # 397  1.299.000
]
_AMBIGUOUS = re.compile(r"\d{1,3}[.,]\d{3}", re.ASCII)  # 1.299 or 1,299: thousands or decimals?
# A minus sign is read, so that the field's minimum names the limit ("at least 0").
_NUMBER = re.compile(r"(-?\d{1,12})(?:[.,](\d+))?", re.ASCII)


def _clean(raw: str) -> str:
    text = _SPACES.sub("", str(raw))
    return text[2:] if text[:2].upper() == "R$" else text


def parse_brl(raw: str) -> Decimal:
    """The amount in reais a person typed; ValidationError with what to type otherwise."""
    text = _clean(raw)
    if _AMBIGUOUS.fullmatch(text):
        raise ValidationError(
            _("“%(value)s” is ambiguous: write the cents after a comma, such as “%(example)s”."),
            code="ambiguous",
            params={"value": text, "example": text.replace(",", ".") + ",00"},
        )
    for pattern, thousands, _decimal in _MONEY_SHAPES:
        match = pattern.fullmatch(text)
        if match:
            whole, cents = match.groups()
            whole = whole.replace(thousands, "") if thousands else whole
            if len(whole.lstrip("0")) > 13:
                break  # more than R$ 9,9 trilhões is a slip of the finger
            return Decimal(f"{whole}.{cents or '0'}").quantize(Decimal("0.01"))
    raise ValidationError(
        _("Type an amount in reais, such as “397,00”, “1.299,00” or “R$ 1.299,00”."), code="invalid"
    )


def parse_decimal(raw: str, *, places: int) -> Decimal:
    """A plain number with a decimal comma or point ("15", "15,5", "12.5"), no thousands."""
    text = _clean(raw).removesuffix("%")
    match = _NUMBER.fullmatch(text)
    if not match or len(match.group(2) or "") > places:
        raise ValidationError(
            _("Type a number such as “15” or “12,5” (up to %(places)s decimal places)."),
            code="invalid",
            params={"places": places},
        )
    whole, fraction = match.groups()
    return Decimal(f"{whole}.{fraction or '0'}")


def format_brl(value: Decimal) -> str:
    """1299.00 → "1.299,00": how the form shows an amount back."""
    whole, cents = f"{value:,.2f}".split(".")
    return f"{whole.replace(',', '.')},{cents}"


def format_decimal(value: Decimal) -> str:
    """15.00 → "15", 12.50 → "12,5": no trailing zeros, a decimal comma."""
    text = f"{value.normalize():f}"
    return text.replace(".", ",")


class _TextNumberInput(forms.TextInput):
    """A text box, not <input type=number>: Chromium drops a typed comma from a number input, which
    once turned "397,00" into 39700. inputmode still brings up the phone's numeric keyboard."""

    formatter = staticmethod(format_decimal)

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"inputmode": "decimal", "autocomplete": "off", "size": 12, **(attrs or {})})

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
            return self.formatter(Decimal(str(value)))
        formatted: str | None = super().format_value(value)
        return formatted


class BRLInput(_TextNumberInput):
    formatter = staticmethod(format_brl)


class PercentInput(_TextNumberInput):
    pass


class _TextDecimalField(forms.DecimalField):
    """A decimal typed in a text box the Brazilian way; `parse` reads the text."""

    placeholder = ""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("localize", None)
        super().__init__(**kwargs)

    # django-stubs types DecimalField.to_python as IntegerField's (int); Django returns a Decimal.
    def to_python(self, value: Any) -> Decimal | None:  # type: ignore[override]
        if value in self.empty_values:
            return None
        if isinstance(value, Decimal):
            return value
        return self.parse(value)

    def parse(self, value: Any) -> Decimal:
        raise NotImplementedError

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        # DecimalField would add min/max/step: meaningless on a text box.
        return {"placeholder": self.placeholder}


class BRLField(_TextDecimalField):
    """An amount in reais, typed and shown the Brazilian way ("1.299,00")."""

    widget = BRLInput
    placeholder = "1.299,00"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)

    def parse(self, value: Any) -> Decimal:
        return parse_brl(value)


class DecimalBRField(_TextDecimalField):
    """A number with a decimal comma ("12,5"), such as a delay in hours."""

    widget = PercentInput
    placeholder = "1,5"

    def parse(self, value: Any) -> Decimal:
        try:
            return parse_decimal(value, places=self.decimal_places if self.decimal_places is not None else 6)
        except InvalidOperation as error:  # pragma: no cover - the pattern admits only digits
            raise ValidationError(self.error_messages["invalid"], code="invalid") from error


class PercentField(DecimalBRField):
    """A percent typed "15", "15 %" or "15,5" and shown "15" or "15,5"."""

    placeholder = "15"
