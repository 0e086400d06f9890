"""The discount rule, in code (SPEC §5): which replies carry the discount link, and at what price."""

from __future__ import annotations

from decimal import Decimal

import pytest
import time_machine

from messaging.models import Message
from recovery.conversation import cart_figures
from recovery.models import Abandonment
from sara import agent
from tests.conftest import openai_completion
from tests.factories import AbandonmentFactory, ProductFactory
from tests.recovery.conftest import DISCOUNT_LINK, NOW, PAYMENT_LINK, PHONE, recovery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]


# With the rule-based interpreter: "Sim, vou finalizar" is a positive confirmation, "Achei caro"
# a negative price question, "Quanto fica?" a neutral price question, "Que absurdo" negative
# without a price question: an annoyed customer gets no discount pushed at them.


@pytest.mark.parametrize(
    ("value", "text", "offered"),
    [
        (Decimal("297.00"), "Sim, vou finalizar", False),
        (Decimal("500.00"), "Sim, vou finalizar", False),
        (Decimal("500.01"), "Sim, vou finalizar", True),
        (Decimal("297.00"), "Quanto fica?", True),
        (Decimal("297.00"), "Que absurdo", False),
        (Decimal("900.00"), "Que absurdo", False),
    ],
    ids=["neither", "exactly-500", "over-500", "price-question", "annoyed", "annoyed-over-500"],
)
def test_the_discount_link_comes_only_with_a_high_value_or_a_price_question_and_never_to_the_annoyed(
    reply_to, value, text, offered
):
    conversation = recovery(value=value)

    reply = reply_to(text)

    assert f"Finalize sua compra aqui: {PAYMENT_LINK}" in reply
    assert (DISCOUNT_LINK in reply) is offered
    conversation.abandonment.refresh_from_db()
    assert conversation.abandonment.discount_offers == int(offered)
    assert Message.objects.get(direction="out").metadata["discount_offered"] is offered


def test_the_offer_shows_the_percent_and_the_discounted_price(reply_to):
    recovery(value=Decimal("297.00"))

    reply = reply_to("Quanto fica?")

    assert reply.endswith(
        f"\n\nFinalize sua compra aqui: {PAYMENT_LINK}\n\nOu com 10% de desconto (R$ 267,30): {DISCOUNT_LINK}"
    )


def test_the_discounted_price_is_rounded_half_up_to_the_cent(reply_to):
    # 249.70 × 0.85 = 212.245: half-up gives 212.25 (banker's rounding and floats give 212.24).
    recovery(value=Decimal("249.70"), product=ProductFactory(discount_percent=Decimal("15")))

    reply = reply_to("Quanto fica?")

    assert f"Ou com 15% de desconto (R$ 212,25): {DISCOUNT_LINK}" in reply


def test_the_discount_is_offered_at_most_three_times_in_a_conversation(reply_to):
    conversation = recovery(value=Decimal("297.00"))

    replies = [reply_to("Quanto fica?") for _ in range(5)]

    assert [DISCOUNT_LINK in reply for reply in replies] == [True, True, True, False, False]
    assert all(PAYMENT_LINK in reply for reply in replies)
    conversation.abandonment.refresh_from_db()
    assert conversation.abandonment.discount_offers == 3


def test_no_discount_when_the_product_has_no_discount_link(reply_to):
    recovery(value=Decimal("900.00"), product=ProductFactory(discount_link=""))

    reply = reply_to("Achei caro")

    assert "desconto" not in reply
    assert reply.endswith(f"Finalize sua compra aqui: {PAYMENT_LINK}")


def test_no_discount_when_the_product_was_deactivated(reply_to):
    recovery(value=Decimal("900.00"), product=ProductFactory(active=False))

    reply = reply_to("Achei caro")

    assert DISCOUNT_LINK not in reply
    assert reply.endswith(f"Finalize sua compra aqui: {PAYMENT_LINK}")


def test_an_unknown_product_gets_the_payloads_payment_link_and_no_discount(reply_to, post_signed, outbox):
    with time_machine.travel(NOW, tick=False):
        response = post_signed(
            "/webhook/abandonment",
            {
                "userId": "u1",
                "name": "Maria Silva",
                "phone": PHONE,
                "productId": "not-in-the-catalogue",
                "paymentLink": "https://pay.example.com/cart/unknown",
                "abandonmentId": "ab-unknown-product",
                "value": "900.00",
            },
        )
    assert response.status_code == 200, response.content
    assert Abandonment.objects.get(external_id="ab-unknown-product").product is None

    reply = reply_to("Achei caro")

    assert "desconto" not in reply
    assert reply.endswith("Finalize sua compra aqui: https://pay.example.com/cart/unknown")


def test_compose_reply_cuts_a_huge_text_to_fit_whatsapp_and_keeps_both_links():
    product = ProductFactory.build(discount_percent=Decimal("12.5"))
    abandonment = AbandonmentFactory.build(value=Decimal("1000.00"), product=product)

    reply = agent.compose_reply("Olá! " * 3000, cart=cart_figures(abandonment), offer_discount=True)

    assert len(reply) <= 4096
    assert reply.endswith(
        f"…\n\nFinalize sua compra aqui: {PAYMENT_LINK}\n\nOu com 12,5% de desconto (R$ 875,00): {DISCOUNT_LINK}"
    )


def test_a_discount_link_the_ai_echoes_from_the_history_is_not_handed_out_past_the_limit(
    reply_to, openai_fake
):
    # Sara's earlier replies carried the discount link, so the model has seen it in the history.
    openai_fake(
        lambda request: openai_completion(
            {"intent": "price_question", "sentiment": "negative", "reply": f"Use este link: {DISCOUNT_LINK}"}
        )
    )
    recovery(value=Decimal("297.00"), discount_offers=3)

    reply = reply_to("Achei caro")

    assert DISCOUNT_LINK not in reply
    assert reply.endswith(f"Finalize sua compra aqui: {PAYMENT_LINK}")
