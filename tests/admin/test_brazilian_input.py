"""Money and percents typed the Brazilian way, discounts that agree with their link, an FAQ Sara can read."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from core.forms import format_brl, parse_brl, parse_decimal
from recovery.discount_links import stated_percent
from recovery.models import Product, SequenceStep
from tests.admin.test_support import product_form
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def save_product(client, product: Product, **changes: str):
    return client.post(f"/admin/recovery/product/{product.pk}/change/", product_form(product, **changes))


def form_errors(response, field: str) -> str:
    return " ".join(response.context["adminform"].form.errors.get(field, []))


@pytest.mark.parametrize(
    ("typed", "saved"),
    [
        ("397,00", Decimal("397.00")),
        ("1.299,00", Decimal("1299.00")),
        ("R$ 1.299,00", Decimal("1299.00")),
        ("1299.00", Decimal("1299.00")),
        ("397", Decimal("397.00")),
        ("0,5", Decimal("0.50")),
    ],
)
def test_a_price_typed_the_brazilian_way_is_saved_as_typed(support_client, typed, saved):
    product = ProductFactory()

    response = save_product(support_client, product, price=typed)

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.price == saved


@pytest.mark.parametrize(
    ("typed", "saved"), [("15 %", "15"), ("15%", "15"), ("15,5", "15.5"), ("12.5", "12.5")]
)
def test_a_discount_percent_typed_with_a_comma_or_a_percent_sign_is_saved(support_client, typed, saved):
    product = ProductFactory(discount_link="https://pay.example.com/curso-python?cupom=BEMVINDO")

    response = save_product(support_client, product, discount_percent=typed)

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.discount_percent == Decimal(saved)


def test_the_form_shows_money_and_percent_back_the_brazilian_way(support_client):
    product = ProductFactory(price=Decimal("1299.00"), discount_percent=Decimal("12.50"))
    product.discount_link = "https://pay.example.com/curso-python?cupom=BEMVINDO"
    product.save()

    page = support_client.get(f"/admin/recovery/product/{product.pk}/change/").content.decode()

    assert 'value="1.299,00"' in page
    assert 'value="12,5"' in page
    assert 'type="number"' not in page  # Chromium drops a comma typed in a number box
    listing = support_client.get("/admin/recovery/product/").content.decode()
    assert "12,5 %" in listing and "12.50" not in listing


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("1.299", "“1.299” é ambíguo"),
        ("trezentos", "Digite um valor em reais"),
        ("1,299", "“1,299” é ambíguo: escreva os centavos depois de uma vírgula, como em “1.299,00”"),
        ("397,0012", "Digite um valor em reais"),
        ("-10,00", "Digite um valor em reais"),
        ("R$ 12,3,4", "Digite um valor em reais"),
    ],
)
def test_a_price_sara_cannot_read_for_sure_is_refused_in_portuguese(support_client, typed, message):
    product = ProductFactory(price=Decimal("349.90"))

    response = save_product(support_client, product, price=typed)

    assert response.status_code == 200
    assert message in form_errors(response, "price")
    product.refresh_from_db()
    assert product.price == Decimal("349.90")


def test_a_sequence_step_delay_is_typed_with_a_comma(admin_client):
    step = SequenceStep.objects.order_by("order").first()

    response = admin_client.post(
        f"/admin/recovery/sequencestep/{step.pk}/change/",
        {
            "order": step.order,
            "delay_hours": "1,5",
            "active": "on",
            "variants-TOTAL_FORMS": "0",
            "variants-INITIAL_FORMS": "0",
            "variants-MIN_NUM_FORMS": "0",
            "variants-MAX_NUM_FORMS": "1000",
        },
    )

    assert response.status_code == 302
    step.refresh_from_db()
    assert step.delay_hours == Decimal("1.5")


# --- The parser, for any amount -----------------------------------------------------------------


def significant(text: str) -> str:
    return "".join(ch for ch in text if ch in "0123456789").strip("0")


AMOUNTS = st.decimals(min_value=0, max_value=Decimal("9999999999.99"), places=2, allow_nan=False)


@given(AMOUNTS, st.sampled_from(["{br}", "R$ {br}", "R${br}", "{plain_comma}", "{plain_dot}"]))
def test_any_amount_written_the_ways_people_write_it_reads_back_exactly(amount, shape):
    written = shape.format(
        br=format_brl(amount),
        plain_comma=f"{amount:.2f}".replace(".", ","),
        plain_dot=f"{amount:.2f}",
    )

    assert parse_brl(written) == amount  # never 100× off


@given(st.text(max_size=30))
def test_any_text_is_read_or_refused_with_a_message_never_a_crash(text):
    try:
        value = parse_brl(text)
    except ValidationError as error:
        assert error.messages
    else:
        assert value >= 0
        # What was read keeps the digits typed, in order: separators are read, never invented.
        assert significant(text) == significant(f"{value:.2f}")


@given(st.decimals(min_value=0, max_value=90, places=2, allow_nan=False))
def test_any_percent_reads_back_with_a_comma_or_a_percent_sign(percent):
    assert parse_decimal(f"{percent:f}".replace(".", ",") + " %", places=2) == percent


# --- A discount whose percent and link disagree -------------------------------------------------


@pytest.mark.parametrize(
    ("link", "names"),
    [
        ("https://pay.example.com/curso-python?cupom=VOLTA10", "cupom=VOLTA10"),
        ("https://pay.example.com/curso-python?discount=10", "discount=10"),
        ("https://loja.example.com/discount/VOLTA10", "VOLTA10"),
        ("https://pay.example.com/curso-python?desconto=10%25", "desconto=10%"),
    ],
)
def test_a_discount_percent_contradicting_its_link_is_refused_naming_both(support_client, link, names):
    product = ProductFactory()

    response = save_product(support_client, product, discount_link=link, discount_percent="15")

    assert response.status_code == 200
    message = form_errors(response, "discount_percent")
    assert "15 %" in message and "10 %" in message and names in message
    product.refresh_from_db()
    assert product.discount_percent == Decimal("10")


@pytest.mark.parametrize(
    "link",
    [
        "https://pay.example.com/curso-python?cupom=VOLTA15",
        "https://pay.example.com/curso-python?cupom=BEMVINDO",
        "https://pay.example.com/curso-python/oferta",
    ],
)
def test_a_link_agreeing_with_the_percent_or_stating_none_is_accepted(support_client, link):
    product = ProductFactory()

    response = save_product(support_client, product, discount_link=link, discount_percent="15")

    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.discount_link, product.discount_percent) == (link, Decimal("15"))


def test_a_coupon_with_a_year_in_it_states_no_percent():
    assert stated_percent("https://pay.example.com/x?cupom=BLACK2025") is None


# --- The FAQ's form --------------------------------------------------------------------------------


def test_a_free_text_faq_is_refused_with_an_example(support_client):
    product = ProductFactory(faq="")

    response = save_product(support_client, product, faq="Tem garantia de um ano e vem com nota fiscal.")

    assert response.status_code == 200
    message = form_errors(response, "faq")
    assert "“P:”" in message and "“R:”" in message
    assert "P: Tem garantia?" in message  # the example
    product.refresh_from_db()
    assert product.faq == ""


@pytest.mark.parametrize(
    "faq",
    [
        "P: Tem garantia?\nR: Sim, 12 meses.\nP: Vem com nota fiscal?\nR: Sim.",
        "P: Tem garantia? R: Sim, 12 meses.",
        "P: Tem garantia?\nR: Sim, 12 meses\ndo fabricante.",
    ],
)
def test_an_faq_in_questions_and_answers_is_saved(support_client, faq):
    product = ProductFactory(faq="")

    response = save_product(support_client, product, faq=faq)

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.faq == faq.replace("\n", "\r\n") or product.faq == faq


def test_a_question_without_its_answer_is_refused(support_client):
    product = ProductFactory(faq="")

    response = save_product(support_client, product, faq="P: Tem garantia?\nP: Vem com nota?\nR: Sim.")

    assert "P: Tem garantia?" in form_errors(response, "faq")


def test_the_faq_help_text_shows_the_form(support_client):
    product = ProductFactory()

    page = support_client.get(f"/admin/recovery/product/{product.pk}/change/").content.decode()

    assert "P: Tem garantia?" in page
