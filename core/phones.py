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


# Where a country's numbering plan cannot tell mobiles from landlines (the US and Canada share
# one plan), phonenumbers answers FIXED_LINE_OR_MOBILE; refusing those would refuse every buyer
# there. Brazil's plan does tell them apart, so a Brazilian landline is always refused.
MESSAGEABLE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


def mobile_phone(raw: str, *, country: str = "") -> str:
    """A phone a buyer typed at a checkout → canonical E.164, only if it is a valid mobile.

    The number is read in its own country (`country`, an ISO 3166 code; Brazil when empty), never
    coerced into Brazil: "555-555-SHIP" on a US address is no Brazilian number. Raises InvalidPhone.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("Phone is empty.")
    if any(ch.isalpha() for ch in text):
        # phonenumbers reads vanity letters as digits ("SHIP" → 7447): nobody types a WhatsApp
        # number that way, and the digits it makes belong to a stranger.
        raise InvalidPhone("Phone has letters.")
    code = (country or "BR").strip().upper()
    # An unknown country reads only numbers written with their + country code.
    region = code if code in phonenumbers.SUPPORTED_REGIONS else "ZZ"
    candidates = [text]
    digits = "".join(ch for ch in text if ch.isdigit())
    if not text.startswith("+") and len(digits) > 11 and not digits.startswith("0"):
        # Digits with their country code but no "+" (as Hotmart and WhatsApp write them); no
        # national number of the plans Sara meets is longer than 11 digits.
        candidates.insert(0, "+" + digits)
    for candidate in candidates:
        try:
            number = _with_ninth_digit(phonenumbers.parse(candidate, region))
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in MESSAGEABLE_TYPES:
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise InvalidPhone("Not a valid mobile number.")
