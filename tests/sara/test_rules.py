"""The rule-based interpreter: the whole loop works without an OpenAI key (SPEC §5)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from messaging.models import Message
from sara.interpretation import Context
from sara.rules import RuleBasedInterpreter
from tests.conftest import first_message, meta_payload
from tests.factories import AbandonmentFactory, ConversationFactory, CustomerFactory

NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)


def read(text: str, **context) -> tuple[str, str, str]:
    interpretation = RuleBasedInterpreter().interpret(
        Context(text=text, product_name="Curso de Python", value=Decimal("297.00"), **context)
    )
    return interpretation.intent, interpretation.sentiment, interpretation.reply


@pytest.mark.parametrize(
    "text",
    ["Qual o preço?", "PREÇO", "qual o valor", "Achei caro", "Tem desconto?"],
)
def test_price_words_are_a_price_question(text):
    intent, _, reply = read(text)

    assert intent == "price_question"
    assert (
        reply == "Entendo! O valor do seu carrinho de Curso de Python é R$ 297,00. Posso ajudar a finalizar?"
    )


@pytest.mark.parametrize("text", ["Não", "nao, obrigado", "Chega", "chega!"])
def test_refusal_words_are_an_objection(text):
    assert read(text)[0] == "objection"


@pytest.mark.parametrize("text", ["Sim", "ok", "Ok!", "Vou", "vou sim"])
def test_agreement_words_are_a_confirmation(text):
    intent, _, reply = read(text)

    assert intent == "confirmation"
    assert reply == "Que ótimo! É só finalizar pelo link abaixo."


def test_a_question_without_keywords_is_answered_from_the_product_description():
    intent, _, reply = read("Tem certificado?", product_description="Curso com certificado.")

    assert intent == "question"
    assert reply == "Boa pergunta! Sobre Curso de Python: Curso com certificado."


def test_anything_else_is_unclear():
    assert read("hmm")[0] == "unclear"


@pytest.mark.parametrize(
    ("text", "sentiment"),
    [
        ("Achei caro demais", "negative"),
        ("Que absurdo", "negative"),
        ("Obrigada!", "positive"),
        ("hmm", "neutral"),
    ],
)
def test_sentiment_follows_the_words(text, sentiment):
    assert read(text)[1] == sentiment


@pytest.mark.django_db
def test_without_an_openai_key_a_customer_message_is_answered_by_the_rules(
    settings, post_signed, outbox, openai_fake, django_capture_on_commit_callbacks
):
    seen = openai_fake(lambda request: pytest.fail("the AI must not be called without a key"))
    settings.SARA_INTERPRETER = "rules"
    settings.OPENAI_API_KEY = ""
    customer = CustomerFactory(phone="+5548999327881")
    ConversationFactory(abandonment=AbandonmentFactory(customer=customer))
    payload = meta_payload("text")
    first_message(payload)["timestamp"] = str(int(NOW.timestamp()))

    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        post_signed("/webhook/messages", payload)

    assert seen == []
    inbound = Message.objects.get(direction=Message.Direction.IN)
    assert inbound.intent == "price_question"
    (reply,) = [message.text for _, message in outbox]
    # "Quanto custa o frete?" is answered from the shop's shipping text, not with the cart's price.
    assert reply.startswith("Entregamos em todo o Brasil.")
    assert "https://pay.example.com/cart/123" in reply
