"""The agent on plain values: how hard a reply sells, when the discount goes out, what the
customer finally reads, and the rules standing in when the AI gives no answer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sara import agent, rules
from sara.agent import CartFigures, Judgement
from sara.interpretation import Context, Interpretation, Interpreter

PAYMENT_LINK = "https://pay.example.com/cart/123"
DISCOUNT_LINK = "https://pay.example.com/curso-python?cupom=VOLTA10"


def cart(value: str = "297.00", offers_so_far: int = 0, percent: str | None = "10") -> CartFigures:
    discount = None if percent is None else Decimal(percent)
    return CartFigures(
        value=Decimal(value),
        payment_link=PAYMENT_LINK,
        offers_so_far=offers_so_far,
        discount_percent=discount,
        discounted_value=None if discount is None else Decimal(value) * (1 - discount / 100),
        discount_link=DISCOUNT_LINK if discount is not None else "",
    )


def reading(intent: str, sentiment: str = "neutral", reply: str = "Claro!") -> Interpretation:
    return Interpretation(intent=intent, sentiment=sentiment, reply=reply)


@pytest.mark.parametrize(
    ("value", "intent", "sentiment", "offers_so_far", "offered"),
    [
        ("297.00", "confirmation", "positive", 0, False),
        ("500.00", "confirmation", "positive", 0, False),
        ("500.01", "confirmation", "positive", 0, True),
        ("297.00", "price_question", "neutral", 0, True),
        ("297.00", "objection", "negative", 0, False),
        ("900.00", "objection", "negative", 0, False),
        ("900.00", "question", "neutral", 1, False),
        ("297.00", "price_question", "negative", 2, True),
        ("297.00", "price_question", "neutral", 3, False),
    ],
    ids=[
        "neither",
        "exactly-500",
        "over-500",
        "price-question",
        "annoyed",
        "annoyed-over-500",
        "again-without-asking-the-price",
        "again-when-asked-the-price",
        "past-the-limit",
    ],
)
def test_the_discount_goes_with_a_high_value_or_a_price_question_never_to_the_annoyed_and_at_most_three_times(
    value, intent, sentiment, offers_so_far, offered
):
    figures = cart(value, offers_so_far=offers_so_far)
    interpretation = reading(intent, sentiment)
    judgement = agent.judge(Context(text="..."), interpretation)

    assert agent.should_offer_discount(figures, interpretation, judgement) is offered


def test_a_product_without_a_discount_never_gets_one_offered():
    assert agent.should_offer_discount(cart("900.00", percent=None), reading("price_question")) is False


@pytest.mark.parametrize(
    "text",
    [
        "de novo essa mensagem? todo dia isso",
        "vcs mandam mensagem demais, que chato",
        "aff, de novo mensagem de vcs",
    ],
)
def test_a_complaint_about_the_messages_gets_an_apology_and_the_way_to_stop_without_any_link(text):
    judgement = agent.judge(Context(text=text), reading("price_question", "negative"))

    reply = agent.compose_reply(
        "Posso ajudar?", cart=cart("900.00"), offer_discount=False, judgement=judgement
    )

    assert judgement == Judgement(push=False, links=False, offer_stop=True)
    assert reply == agent.COMPLAINT_REPLY
    assert rules.STOP_OFFER in reply
    assert "http" not in reply


def test_the_offer_shows_the_percent_and_the_discounted_price_the_brazilian_way():
    figures = CartFigures(
        value=Decimal("1299.00"),
        payment_link=PAYMENT_LINK,
        discount_percent=Decimal("12.5"),
        discounted_value=Decimal("1136.63"),
        discount_link=DISCOUNT_LINK,
    )

    reply = agent.compose_reply("Tem sim!", cart=figures, offer_discount=True)

    assert reply == (
        f"Tem sim!\n\nFinalize sua compra aqui: {PAYMENT_LINK}"
        f"\n\nOu com 12,5% de desconto (R$ 1.136,63): {DISCOUNT_LINK}"
    )


def test_a_discount_link_the_ai_copied_from_the_history_is_removed_when_the_rule_offers_none():
    reply = agent.compose_reply(
        f"Use este link: {DISCOUNT_LINK}", cart=cart(offers_so_far=3), offer_discount=False
    )

    assert DISCOUNT_LINK not in reply
    assert reply == f"Use este link:\n\nFinalize sua compra aqui: {PAYMENT_LINK}"


class _SilentAI(Interpreter):
    def interpret(self, context: Context) -> Interpretation:
        return Interpretation.failed("timeout")


def test_when_the_ai_gives_no_answer_the_rules_read_the_message_in_the_same_turn():
    context = Context(text="Qual o preço?", product_name="Curso de Python", value=Decimal("297.00"))

    interpretation = agent.interpret(context, _SilentAI())

    assert interpretation.fallback is True
    assert interpretation.ai_error == "timeout"
    assert interpretation.intent == "price_question"
    assert interpretation.reply == rules.RuleBasedInterpreter().interpret(context).reply
    assert interpretation.tokens_used == 0


def test_an_amount_the_shop_never_wrote_is_dropped_from_the_reply():
    context = Context(text="Tem certificado?", product_name="Curso de Python", value=Decimal("297.00"))

    guarded = agent.guarded_reply(
        context,
        reading(
            "question",
            reply="Que bom que gostou do curso! Pra você fica por R$ 199,00. Qualquer dúvida, estou aqui.",
        ),
        offer_discount=False,
    )

    assert guarded.text == "Que bom que gostou do curso! Qualquer dúvida, estou aqui."
    assert guarded.violations == ("amount",)
