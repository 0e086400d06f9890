"""Opt-out (SPEC §5 steps 1–4): keywords, the AI's verdict, and silence for ever after."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import responses
from responses import matchers

from compliance.models import OptOutKeyword
from compliance.optout import Match, detect
from messaging.models import Message
from recovery.models import Abandonment, Conversation, Customer
from sara import agent
from tests.conftest import (
    GRAPH_URL,
    abandonment_body,
    first_message,
    graph_ok,
    meta_payload,
    openai_completion,
    text_body,
)

pytestmark = pytest.mark.usefixtures("frozen_clock")

NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)
PHONE = "+5548999327881"
PAYMENT_LINK = "https://pay.example.com/cart/123"


@pytest.fixture
def abandon(post_signed, django_capture_on_commit_callbacks):
    """The checkout reports a new abandoned cart for `phone`; returns the webhook's JSON answer."""

    def post(phone: str = PHONE, external_id: str = "ab-after-optout") -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            response = post_signed(
                "/webhook/abandonment",
                abandonment_body(
                    userId="u1",
                    phone=phone,
                    productId="prod-x",
                    paymentLink="https://pay.example.com/cart/456",
                    abandonmentId=external_id,
                    value="150.00",
                ),
            )
        assert response.status_code == 200, response.content
        return response.json()

    return post


def ai_says(intent: str, sentiment: str = "neutral", reply: str = "Certo!"):
    return lambda request: openai_completion({"intent": intent, "sentiment": sentiment, "reply": reply})


def ai_times_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def texts(outbox: list) -> list[str]:
    return [message.text for _, message in outbox]


def assert_opted_out(conversation: Conversation, *, reason: str) -> None:
    conversation.refresh_from_db()
    customer = conversation.customer
    assert customer.opted_out is True
    assert customer.opted_out_at == NOW
    assert customer.opted_out_reason == reason
    assert (conversation.status, conversation.close_reason) == ("closed", "opted_out")
    assert conversation.abandonment.status == Abandonment.Status.DECLINED


# Layer 1: detection on lower-cased, accent-folded text.


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("PARAR", Match.STRONG),
        ("sair!", Match.STRONG),
        ("stop pls", Match.STRONG),
        ("me tire daqui", Match.STRONG),
        ("Não quero 😡😡", Match.STRONG),
        ("EXCLUIR meu número!!!", Match.STRONG),
        ("vou sair pra pagar no pix", Match.WEAK),
        ("não quero pagar esse frete", Match.WEAK),
        ("Oi, tudo bem?", Match.NONE),
        ("saindo do trabalho te respondo", Match.NONE),
        ("", Match.NONE),
    ],
)
def test_opt_out_keywords_match_strongly_in_short_messages_and_weakly_in_sentences(text, match):
    assert detect(text) is match


# Strong match: out at once, no AI.


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["PARAR", "sair!", "stop pls", "me tire daqui"])
def test_a_strong_keyword_opts_out_at_once_with_one_farewell_and_no_ai_call(
    conversation, say, outbox, openai_fake, text
):
    seen = openai_fake(ai_says("confirmation"))

    say(text)

    assert_opted_out(conversation, reason="keyword")
    assert texts(outbox) == [agent.FAREWELL]
    assert seen == []


@pytest.mark.django_db
def test_the_farewell_goes_to_graph_although_the_customer_is_already_opted_out(conversation, say, graph):
    graph.add(
        responses.POST,
        GRAPH_URL,
        json=graph_ok(),
        match=[matchers.json_params_matcher(text_body(PHONE, agent.FAREWELL))],
    )

    say("PARAR")

    farewell = Message.objects.get(direction=Message.Direction.OUT)
    assert (farewell.purpose, farewell.status) == (Message.Purpose.FAREWELL, Message.Status.SENT)


@pytest.mark.django_db
def test_after_opting_out_a_customer_never_hears_from_sara_again(conversation, say, outbox, abandon):
    say("PARAR")
    assert len(outbox) == 1

    say("Oi, mudei de ideia, quanto custa?")
    say("PARAR")
    answer = abandon()

    assert texts(outbox) == [agent.FAREWELL]
    assert answer == {"status": "skipped", "reason": "opted_out", "abandonmentId": "ab-after-optout"}
    assert Abandonment.objects.get(external_id="ab-after-optout").status == Abandonment.Status.SKIPPED


@pytest.mark.django_db
def test_a_customer_can_opt_out_after_sara_handed_over_to_a_person(conversation, say, outbox):
    Conversation.objects.filter(pk=conversation.pk).update(exchanges=5, needs_human=True)

    say("parar")

    assert_opted_out(conversation, reason="keyword")
    assert texts(outbox) == [agent.FAREWELL]


@pytest.mark.django_db
@pytest.mark.parametrize("exchanges", [5, 6], ids=["at-the-limit", "after-the-handoff"])
def test_a_weak_opt_out_is_honoured_even_once_sara_stopped_answering(
    conversation, say, outbox, openai_fake, exchanges
):
    Conversation.objects.filter(pk=conversation.pk).update(exchanges=exchanges, needs_human=exchanges > 5)
    openai_fake(ai_says("opt_out", "negative"))

    say("não quero mais receber mensagens de vocês")

    assert_opted_out(conversation, reason="ai")
    assert texts(outbox) == [agent.FAREWELL]


@pytest.mark.django_db
def test_a_weak_match_about_paying_at_the_limit_still_gets_only_the_handoff_note(
    conversation, say, outbox, openai_fake
):
    Conversation.objects.filter(pk=conversation.pk).update(exchanges=5)
    openai_fake(ai_says("confirmation", "positive", "Perfeito!"))

    say("vou sair pra pagar no pix")

    conversation.refresh_from_db()
    assert conversation.customer.opted_out is False
    assert conversation.needs_human is True
    assert texts(outbox) == [agent.HANDOFF]


# Weak match: the AI decides; without it, the rules do (and the wish to leave wins).


@pytest.mark.django_db
def test_a_weak_match_the_ai_reads_as_a_purchase_gets_a_normal_reply(conversation, say, outbox, openai_fake):
    seen = openai_fake(ai_says("confirmation", "positive", "Perfeito, o Pix está no link!"))

    say("vou sair pra pagar no pix")

    assert len(seen) == 1
    assert texts(outbox) == [f"Perfeito, o Pix está no link!\n\nFinalize sua compra aqui: {PAYMENT_LINK}"]
    conversation.refresh_from_db()
    assert conversation.customer.opted_out is False
    assert conversation.status == Conversation.Status.ACTIVE


@pytest.mark.django_db
def test_a_weak_match_the_ai_reads_as_opt_out_opts_out_with_reason_ai(conversation, say, outbox, openai_fake):
    openai_fake(ai_says("opt_out", "negative"))

    say("não quero mais receber essas mensagens")

    assert_opted_out(conversation, reason="ai")
    assert texts(outbox) == [agent.FAREWELL]


@pytest.mark.django_db
def test_a_weak_match_about_paying_goes_on_when_the_ai_times_out(conversation, say, outbox, openai_fake):
    openai_fake(ai_times_out)

    say("vou sair pra pagar no pix")

    conversation.refresh_from_db()
    assert conversation.customer.opted_out is False
    [reply] = texts(outbox)
    assert "Um momento enquanto avalio" not in reply, "the rules answer when the AI cannot"
    answer, link = reply.split("\n\nFinalize sua compra aqui: ")
    assert answer.strip() and link.startswith(PAYMENT_LINK)


@pytest.mark.django_db
def test_a_weak_match_to_leave_opts_out_when_the_ai_times_out(conversation, say, outbox, openai_fake):
    openai_fake(ai_times_out)

    say("eu quero sair dessa lista de vocês")

    conversation.refresh_from_db()
    assert conversation.customer.opted_out is True
    assert (conversation.status, conversation.close_reason) == ("closed", "opted_out")
    assert texts(outbox) == [agent.FAREWELL]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "opted_out"),
    [("vou sair pra pagar no pix", False), ("eu quero sair dessa lista de vocês", True)],
)
def test_without_an_ai_key_the_rules_decide_a_weak_match(conversation, say, outbox, text, opted_out):
    say(text)

    conversation.refresh_from_db()
    assert conversation.customer.opted_out is opted_out
    assert (texts(outbox) == [agent.FAREWELL]) is opted_out
    assert len(outbox) == 1


# Numbers Sara never wrote to, and keywords edited by support staff.


@pytest.mark.django_db
def test_a_strong_opt_out_from_an_unknown_number_is_kept_without_a_farewell(say, outbox, abandon):
    say("PARAR", wa_id="5511987654321")

    customer = Customer.objects.get(phone="+5511987654321")
    assert (customer.opted_out, customer.opted_out_reason) == (True, "keyword")
    assert outbox == []

    answer = abandon(phone="+5511987654321")

    assert answer["status"] == "skipped"
    assert outbox == []


@pytest.mark.django_db
def test_a_keyword_added_by_support_counts_from_the_very_next_message(conversation, say, outbox):
    say("basta")
    conversation.customer.refresh_from_db()
    assert conversation.customer.opted_out is False
    assert len(outbox) == 1

    OptOutKeyword.objects.create(keyword="basta")
    say("Basta!")

    assert_opted_out(conversation, reason="keyword")
    assert texts(outbox)[1:] == [agent.FAREWELL]


@pytest.mark.django_db
def test_a_deactivated_keyword_no_longer_opts_out(conversation, say, outbox):
    OptOutKeyword.objects.filter(keyword="stop").update(active=False)

    say("stop")

    conversation.refresh_from_db()
    assert conversation.customer.opted_out is False
    assert texts(outbox) != [agent.FAREWELL]
    assert len(outbox) == 1


@pytest.mark.django_db
def test_a_plain_request_to_stop_from_an_unknown_number_is_honoured_without_the_ai(
    post_signed, django_capture_on_commit_callbacks, outbox, openai_fake
):
    from recovery.models import Customer

    seen = openai_fake(lambda request: pytest.fail("no AI call for an unknown number"))
    payload = meta_payload("text")
    message = first_message(payload)
    message["text"]["body"] = "não quero mais receber mensagens de vocês"
    with django_capture_on_commit_callbacks(execute=True):
        assert post_signed("/webhook/messages", payload).status_code == 200
    customer = Customer.objects.get(phone="+5548999327881")
    assert (customer.opted_out, customer.opted_out_reason) == (True, "keyword")
    assert outbox == [] and seen == []


@pytest.mark.django_db
def test_a_purchase_sentence_with_a_keyword_from_an_unknown_number_opts_nobody_out(
    post_signed, django_capture_on_commit_callbacks, outbox
):
    from recovery.models import Customer

    payload = meta_payload("text")
    first_message(payload)["text"]["body"] = "vou sair pra pagar no pix"
    with django_capture_on_commit_callbacks(execute=True):
        assert post_signed("/webhook/messages", payload).status_code == 200
    assert not Customer.objects.exists()
    assert outbox == []
