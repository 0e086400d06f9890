"""core.phones: one canonical E.164 form, whichever way a checkout or WhatsApp writes a number."""

import pytest

from core.phones import InvalidPhone, area_code, normalize_phone, phone_from_wa_id


@pytest.mark.parametrize(
    "raw",
    [
        "+5548999327881",
        "+55 48 99932-7881",
        " +55 (48) 9 9932-7881 ",
        "5548999327881",
        "(48) 99932-7881",
        "48999327881",
        # The trunk prefix 0 before the area code, as many Brazilian forms still write it.
        "(048) 99932-7881",
        "048999327881",
    ],
)
def test_the_usual_ways_of_writing_a_brazilian_mobile_give_one_e164(raw):
    assert normalize_phone(raw) == "+5548999327881"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("554899327881", "+5548999327881"),  # a WhatsApp id: 12 digits, no ninth digit
        ("+554899327881", "+5548999327881"),
        ("(48) 9932-7881", "+5548999327881"),  # the pre-2016 eight-digit mobile
        ("551187654321", "+5511987654321"),
        ("552176543210", "+5521976543210"),
        ("556186543210", "+5561986543210"),
    ],
)
def test_a_brazilian_mobile_without_the_ninth_digit_gets_it(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+554832221234", "+554832221234"),
        ("554832221234", "+554832221234"),
        ("(48) 3222-1234", "+554832221234"),
        ("+55 11 5555-1234", "+551155551234"),
        ("+55 11 2345-6789", "+551123456789"),
    ],
)
def test_a_brazilian_landline_is_left_as_it_is(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # 646 puts a 6 where a Brazilian mobile's first digit would be: no 9 is inserted.
        ("+1 646 777 1234", "+16467771234"),
        ("+351 912 345 678", "+351912345678"),
        ("+44 7911 123456", "+447911123456"),
    ],
)
def test_numbers_from_other_countries_are_kept_as_they_are(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        None,
        "abc",
        "123",
        "+55 48 9993",
        "+5500999327881",  # no area code 00
        "+5548599327881",  # nine digits, but a mobile starts with 9
        "55 48 1234 5678",  # no number starts with 1
        "+55489993278810000",
        "+55 (48) 99932-7881abc",
    ],
)
def test_invalid_numbers_are_rejected(raw):
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_a_whatsapp_id_maps_to_the_same_customer_phone_as_the_checkout_sends():
    assert phone_from_wa_id("554899327881") == normalize_phone("+55 48 99932-7881")
    assert phone_from_wa_id("5548999327881") == "+5548999327881"


def test_the_area_code_is_read_from_brazilian_numbers_only():
    assert area_code("+5548999327881") == "48"
    assert area_code("+16467771234") is None
