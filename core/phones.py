"""Phone numbers: E.164 with `phonenumbers`, and Brazil's ninth mobile digit.

WhatsApp ids of many Brazilian mobiles lack the ninth digit (554899327881 is the same person
as +5548999327881). Sara stores every Brazilian mobile in its nine-digit form, so one exact
lookup finds the customer whichever form a message arrives with.
"""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    pass


def normalize_phone(raw: str) -> str:
    """A phone as a person or a checkout sends it → canonical E.164 (+5548999327881)."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("Phone is empty.")
    if not text.startswith("+"):
        digits = "".join(ch for ch in text if ch.isdigit())
        # Digits with a country code (as WhatsApp ids are) parse as international. A leading 0
        # is Brazil's trunk prefix ("(048) 99932-7881"), never a country code.
        text = "+" + digits if len(digits) > 11 and not digits.startswith("0") else text
    try:
        number = phonenumbers.parse(text, "BR")
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(str(exc)) from exc
    number = _with_ninth_digit(number)
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("Not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_from_wa_id(wa_id: str) -> str:
    """WhatsApp's sender id (digits, no +) → canonical E.164; raises InvalidPhone."""
    return normalize_phone("+" + "".join(ch for ch in wa_id if ch.isdigit()))


def _with_ninth_digit(number: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber:
    if number.country_code != 55:
        return number
    national = str(number.national_number)
    # Area code (2) + 8 digits starting 6–9 is a pre-2016 mobile: the 9 goes in front.
    if len(national) == 10 and national[2] in "6789":
        return phonenumbers.PhoneNumber(
            country_code=55, national_number=int(national[:2] + "9" + national[2:])
        )
    return number


def area_code(phone: str) -> str | None:
    """The Brazilian DDD of a canonical phone, or None for other countries."""
    return phone[3:5] if phone.startswith("+55") and len(phone) >= 5 else None
