"""The OpenAI interpreter behind a customer's message: the request Sara sends and every way it fails."""

from __future__ import annotations

import itertools
import json
import threading

import httpx
import pytest

from messaging.models import Message
from recovery.models import Conversation
from tests.conftest import openai_completion
from tests.factories import (
    AbandonmentFactory,
    ConversationFactory,
    CustomerFactory,
    InboundMessageFactory,
    OutboundMessageFactory,
)
from tests.recovery.conftest import DISCOUNT_LINK, PAYMENT_LINK

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]

LINKS = f"\n\nFinalize sua compra aqui: {PAYMENT_LINK}"


def answer(intent: str = "question", sentiment: str = "neutral", reply: str = "Tem sim!", tokens: int = 120):
    return lambda request: openai_completion(
        {"intent": intent, "sentiment": sentiment, "reply": reply}, total_tokens=tokens
    )


def texts(outbox: list) -> list[str]:
    return [message.text for _, message in outbox]


def test_the_request_uses_the_configured_model_strict_json_schema_and_deadline(
    conversation, say, openai_fake, settings
):
    settings.OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
    settings.OPENAI_TIMEOUT_SECONDS = 2.5
    seen = openai_fake(answer())

    say("Tem certificado?")

    assert len(seen) == 1
    assert seen[0].url == "https://openai.test/v1/chat/completions"
    body = json.loads(seen[0].content)
    assert body["model"] == "gpt-4o-mini-2024-07-18"
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert sorted(schema["required"]) == ["intent", "reply", "sentiment"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["intent"]["enum"] == [
        "price_question",
        "objection",
        "confirmation",
        "question",
        "opt_out",
        "human",
        "unclear",
    ]
    assert seen[0].extensions["timeout"]["read"] == 2.5


def test_the_prompt_carries_the_cart_and_only_the_last_ten_messages(conversation, say, openai_fake):
    seen = openai_fake(answer())
    earlier = []
    for n in range(7):
        earlier.append(
            InboundMessageFactory(conversation=conversation, text=f"cliente {n}", status="processed")
        )
        earlier.append(OutboundMessageFactory(conversation=conversation, text=f"sara {n}", status="sent"))

    say("Tem certificado?")

    messages = json.loads(seen[0].content)["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    document = json.loads(messages[1]["content"].split("\n", 1)[1])
    assert document["carrinho"]["produto"] == "Curso de Python"
    assert document["carrinho"]["valor_do_carrinho"] == "R$ 297,00"
    expected_history = [
        {"de": "cliente" if m.direction == "in" else "sara", "texto": m.text} for m in earlier[-10:]
    ]
    assert document["historico"] == expected_history
    assert document["mensagem_do_cliente"] == "Tem certificado?"


def test_the_ai_reply_intent_sentiment_and_tokens_are_stored(conversation, say, outbox, openai_fake):
    openai_fake(answer(intent="question", sentiment="positive", reply="Tem sim, com 40 horas!", tokens=345))

    inbound = say("Tem certificado?")

    assert texts(outbox) == [f"Tem sim, com 40 horas!{LINKS}"]
    inbound.refresh_from_db()
    assert (inbound.intent, inbound.sentiment, inbound.tokens_used) == ("question", "positive", 345)


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def _connection_refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def _answer_cut_off(request: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def _server_error(request: httpx.Request) -> httpx.Response:
    return httpx.Response(500, json={"error": {"message": "The server had an error", "type": "server_error"}})


def _malformed_json(request: httpx.Request) -> httpx.Response:
    return openai_completion('{"intent": "question", "sentiment": ')


def _refusal(request: httpx.Request) -> httpx.Response:
    body = openai_completion("").json()
    body["choices"][0]["message"].update(content=None, refusal="I can't help with that.")
    return httpx.Response(200, json=body)


def _outside_the_schema(request: httpx.Request) -> httpx.Response:
    return openai_completion({"intent": "buy_now", "sentiment": "neutral", "reply": "Compre!"})


def _content_filter(request: httpx.Request) -> httpx.Response:
    body = openai_completion({"intent": "question", "sentiment": "neutral", "reply": "Aceitamos"}).json()
    body["choices"][0]["finish_reason"] = "content_filter"
    return httpx.Response(200, json=body)


def _cut_by_length(request: httpx.Request) -> httpx.Response:
    # Cut at max_tokens, yet still valid JSON: sent as it is, the customer gets half a sentence.
    body = openai_completion(
        {"intent": "question", "sentiment": "neutral", "reply": "Aceitamos Pix e o"}
    ).json()
    body["choices"][0]["finish_reason"] = "length"
    return httpx.Response(200, json=body)


HOLDING = "Um momento enquanto avalio sua mensagem"
QUESTION = "Vocês aceitam Pix? E parcelam no cartão?"


@pytest.fixture
def rules_answer(settings, say, outbox):
    """What the rule-based interpreter alone answers this question, for a twin of Maria's cart."""

    def answer_of(text: str) -> str:
        interpreter = settings.SARA_INTERPRETER
        settings.SARA_INTERPRETER = "rules"
        twin = CustomerFactory(phone="+5511987654321", name="Maria Silva")
        ConversationFactory(abandonment=AbandonmentFactory(customer=twin))
        say(text, wa_id="5511987654321")
        settings.SARA_INTERPRETER = interpreter
        return outbox.pop()[1].text

    return answer_of


@pytest.mark.parametrize(
    ("failure", "ai_error"),
    [
        (_timeout, "timeout"),
        (_connection_refused, "connection"),
        (_answer_cut_off, "connection"),
        (_server_error, "http_500"),
        (_malformed_json, "schema"),
        (_refusal, "refusal"),
        (_outside_the_schema, "schema"),
        (_content_filter, "content_filter"),
        (_cut_by_length, "length"),
    ],
)
def test_when_the_ai_fails_the_rules_answer_in_the_same_turn_with_the_payment_link(
    conversation, say, outbox, openai_fake, rules_answer, failure, ai_error
):
    expected = rules_answer(QUESTION)
    seen = openai_fake(failure)

    inbound = say(QUESTION)

    assert len(seen) == 1, "a failed call is not retried: the deadline is the whole budget"
    assert texts(outbox) == [expected]
    assert HOLDING not in expected
    answer_text, _links = expected.split(LINKS, 1)
    assert answer_text.strip(), "an answer, not the link alone"
    inbound.refresh_from_db()
    assert inbound.tokens_used == 0
    reply = Message.objects.get(direction="out", conversation=conversation)
    assert reply.metadata["ai_error"] == ai_error
    assert reply.metadata["fallback"] is True
    conversation.refresh_from_db()
    assert (conversation.status, conversation.exchanges) == (Conversation.Status.ACTIVE, 1)


def test_the_conversation_goes_on_after_an_ai_timeout(conversation, say, outbox, openai_fake, rules_answer):
    expected = rules_answer(QUESTION)
    calls = itertools.count()

    def timeout_then_answer(request: httpx.Request) -> httpx.Response:
        if next(calls) == 0:
            raise httpx.ReadTimeout("timed out", request=request)
        return answer(reply="Tem sim!")(request)

    openai_fake(timeout_then_answer)

    say(QUESTION)
    say("Tem certificado?")

    assert texts(outbox) == [expected, f"Tem sim!{LINKS}"]


def test_a_huge_ai_reply_still_fits_whatsapp_with_both_links_intact(conversation, say, outbox, openai_fake):
    openai_fake(answer(intent="price_question", reply="Muito barato! " * 2000))

    say("Quanto custa?")

    (reply,) = texts(outbox)
    assert len(reply) <= 4096
    assert reply.endswith(f"{LINKS}\n\nOu com 10% de desconto (R$ 267,30): {DISCOUNT_LINK}")


def test_an_ai_opt_out_without_any_keyword_is_honoured(conversation, say, outbox, openai_fake):
    openai_fake(answer(intent="opt_out", sentiment="negative", reply="Tudo bem."))

    say("Por favor, nunca mais me mande nada nesse número")

    conversation.refresh_from_db()
    customer = conversation.customer
    assert (customer.opted_out, customer.opted_out_reason) == (True, "ai")
    assert (conversation.status, conversation.close_reason) == ("closed", "opted_out")
    assert [m.text for _, m in outbox] == [
        "Tudo bem, você não receberá mais mensagens nossas. Obrigado pela atenção e até logo!"
    ]


def test_an_ai_slower_than_the_deadline_gets_the_rules_answer_in_time(
    conversation, say, outbox, openai_fake, settings, rules_answer
):
    expected = rules_answer("Tem certificado?")
    settings.OPENAI_TIMEOUT_SECONDS = 0.3
    released = threading.Event()

    def trickling(request: httpx.Request) -> httpx.Response:
        # Answers, but only after the deadline: each network phase alone would look fine. A reply
        # that waited for it would read "Tarde demais".
        released.wait(timeout=5)
        return answer(reply="Tarde demais")(request)

    openai_fake(trickling)
    inbound = say("Tem certificado?")
    released.set()

    assert texts(outbox) == [expected], "the reply waited for the AI past its deadline"
    inbound.refresh_from_db()
    assert inbound.tokens_used == 0
