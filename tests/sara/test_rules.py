"""The rule-based interpreter reads a message on plain values: its intent, sentiment and reply."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sara.interpretation import Context
from sara.rules import RuleBasedInterpreter


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
