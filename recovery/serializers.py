"""Validation of the checkout platform's webhooks (SPEC §4.1, §4.4)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.phones import InvalidPhone, normalize_phone

MAX_MONEY = Decimal("9999999999.99")
DECIMAL_STRING = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


class MoneyField(serializers.Field):
    """A JSON number or a decimal string → Decimal (never float), at most two decimal places."""

    default_error_messages = {
        "invalid": _("Must be a number or a decimal string."),
        "places": _("At most two decimal places."),
        "positive": _("Must be greater than zero."),
        "too_large": _("Too large."),
    }

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, (int, float, str)):
            self.fail("invalid")
        # Decimal() also reads "1_000", "1e3" and non-ASCII digits: no checkout means those.
        if isinstance(data, str) and not DECIMAL_STRING.fullmatch(data.strip()):
            self.fail("invalid")
        try:
            # A JSON number is read through its text (json parses it as float): 19.9 stays 19.9.
            value = Decimal(str(data).strip())
        except InvalidOperation:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        if value <= 0:
            self.fail("positive")
        if value > MAX_MONEY:
            self.fail("too_large")
        exponent = value.as_tuple().exponent  # an int: the value is finite
        if isinstance(exponent, int) and exponent < -2 and value != value.quantize(Decimal("0.01")):
            self.fail("places")
        return value.quantize(Decimal("0.01"))

    def to_representation(self, value: Decimal) -> str:
        return f"{value:.2f}"


class PhoneField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        try:
            return normalize_phone(text)
        except InvalidPhone as exc:
            raise serializers.ValidationError(
                _("Not a valid phone number: %(reason)s") % {"reason": exc}
            ) from exc


class AbandonmentSerializer(serializers.Serializer):
    userId = serializers.CharField(max_length=100)  # noqa: N815 - the platform's field names
    name = serializers.CharField(max_length=200, allow_blank=True)
    phone = PhoneField(max_length=40)
    productId = serializers.CharField(max_length=100)  # noqa: N815
    paymentLink = serializers.URLField(max_length=500)  # noqa: N815
    abandonmentId = serializers.CharField(max_length=100)  # noqa: N815
    value = MoneyField()
    timestamp = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)


class PaymentSerializer(serializers.Serializer):
    abandonmentId = serializers.CharField(max_length=100)  # noqa: N815
    paymentId = serializers.CharField(max_length=100)  # noqa: N815
    status = serializers.CharField(max_length=50)
    amount = MoneyField(required=False)
    productId = serializers.CharField(max_length=100, required=False, allow_blank=True, allow_null=True)  # noqa: N815
    linkType = serializers.ChoiceField(choices=["original", "discounted"], required=False, default="original")  # noqa: N815
    timestamp = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["status"] == "paid" and "amount" not in attrs:
            raise serializers.ValidationError({"amount": [_("This field is required for a paid status.")]})
        return attrs
