"""An inbound WhatsApp message read and answered (SPEC §5), driven through the Meta webhook."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
import responses
from django.db import connection
from django.test import Client
from responses import matchers

from messaging.models import Message
from messaging.tasks import process_inbound
from recovery.models import Conversation, Customer
from sara import agent
from tests.conftest import GRAPH_URL, graph_ok, openai_completion, signed
from tests.factories import AbandonmentFactory, ConversationFactory, CustomerFactory, InboundMessageFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]

NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)
PHONE = "+5548999327881"
PAYMENT_LINK = "https://pay.example.com/cart/123"
LINKS = f"\n\nFinalize sua compra aqui: {PAYMENT_LINK}"


def texts(outbox: list) -> list[str]:
    return [message.text for _, message in outbox]


def test_a_price_question_is_answered_with_the_exact_graph_payload(conversation, say, graph):
    expected_text = (
        "Entendo! O valor do seu carrinho de Curso de Python é R$ 297,00. Posso ajudar a finalizar?"
        f"{LINKS}"
        "\n\nOu com 10% de desconto (R$ 267,30): https://pay.example.com/curso-python?cupom=VOLTA10"
    )
    graph.add(
        responses.POST,
        GRAPH_URL,
        json=graph_ok(),
        match=[
            matchers.json_params_matcher(
                {
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": PHONE,
                    "type": "text",
                    "text": {"preview_url": True, "body": expected_text},
                }
            ),
            matchers.header_matcher({"Authorization": "Bearer test-token"}),
        ],
    )

    inbound = say("Qual o preço?")

    reply = Message.objects.get(direction=Message.Direction.OUT)
    assert reply.status == Message.Status.SENT
    assert reply.whatsapp_message_id == graph_ok()["messages"][0]["id"]
    inbound.refresh_from_db()
    assert (inbound.status, inbound.intent, inbound.conversation) == (
        Message.Status.PROCESSED,
        "price_question",
        conversation,
    )


def test_every_reply_carries_the_abandonments_payment_link(conversation, say, outbox):
    say("Sim, vou finalizar")

    assert texts(outbox) == [f"Que ótimo! É só finalizar pelo link abaixo.{LINKS}"]
    assert outbox[0][1].to == PHONE


def test_answering_updates_the_conversation_counters_and_marks_it_active(conversation, say, outbox):
    say("Sim, vou finalizar")

    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ACTIVE
    assert (conversation.exchanges, conversation.message_count) == (1, 2)
    assert conversation.last_user_message_at == NOW
    assert conversation.last_message_at == NOW
    assert conversation.abandonment.status == "active"


def test_the_sixth_customer_message_gets_one_handoff_note_and_the_seventh_nothing(conversation, say, outbox):
    for _ in range(5):
        say("Sim, ok")
    assert len(outbox) == 5

    say("Sim, ok")

    conversation.refresh_from_db()
    assert conversation.needs_human is True
    assert len(outbox) == 6
    assert outbox[-1][1].text == agent.HANDOFF

    say("Alguém aí?")

    assert len(outbox) == 6
    assert (
        Message.objects.filter(direction=Message.Direction.OUT, purpose=Message.Purpose.HANDOFF).count() == 1
    )


def test_a_message_from_an_unknown_number_is_kept_and_gets_no_reply(conversation, say, outbox):
    inbound = say("Oi, quero comprar", wa_id="5511987654321")

    assert outbox == []
    inbound.refresh_from_db()
    assert (inbound.status, inbound.conversation) == (Message.Status.PROCESSED, None)
    assert not Customer.objects.filter(phone="+5511987654321").exists()


def test_a_wa_id_without_the_ninth_digit_reaches_the_customers_conversation(conversation, say, outbox):
    inbound = say("Oi, ainda tenho interesse", fixture="text_no_ninth_digit")

    assert inbound.wa_id == "554899327881"
    assert inbound.conversation == conversation
    assert [message.to for _, message in outbox] == [PHONE]


def test_running_the_task_again_for_a_processed_message_sends_no_second_reply(
    conversation, say, outbox, django_capture_on_commit_callbacks
):
    inbound = say("Qual o preço?")
    assert len(outbox) == 1

    with django_capture_on_commit_callbacks(execute=True):
        outcome = process_inbound.delay(inbound.pk).get()

    assert outcome == "already_processed"
    assert len(outbox) == 1
    assert Message.objects.filter(direction=Message.Direction.OUT).count() == 1
    conversation.refresh_from_db()
    assert conversation.exchanges == 1


def test_an_opted_out_customer_with_an_open_conversation_gets_no_reply(conversation, say, outbox):
    # Support staff opted Maria out in the admin; her conversation was not closed by hand.
    Customer.objects.filter(pk=conversation.customer_id).update(opted_out=True, opted_out_reason="admin")

    say("Quanto custa o frete?")

    assert outbox == []
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_messages_of_one_conversation_processed_at_once_are_both_answered(openai_fake, outbox, settings):
    settings.SARA_BURST_SECONDS = 0  # not a burst: the row lock alone serialises them

    def slow_answer(request: httpx.Request) -> httpx.Response:
        # Both workers are inside the conversation at once unless the row lock serialises them.
        time.sleep(0.3)
        return openai_completion({"intent": "question", "sentiment": "neutral", "reply": "Claro!"})

    openai_fake(slow_answer)
    conversation = ConversationFactory(abandonment=AbandonmentFactory(customer=CustomerFactory(phone=PHONE)))
    inbound = [InboundMessageFactory(text=text) for text in ("Tem certificado?", "E suporte?")]
    start = threading.Barrier(len(inbound))
    outcomes: list[str] = []

    def worker(message_id: int) -> None:
        try:
            start.wait()
            outcomes.append(process_inbound(message_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(message.pk,)) for message in inbound]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert outcomes == ["replied", "replied"]
    conversation.refresh_from_db()
    assert conversation.exchanges == 2
    assert conversation.message_count == 4
    assert texts(outbox) == [f"Claro!{LINKS}", f"Claro!{LINKS}"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_payment_arriving_while_sara_composes_a_reply_converts_at_once_and_no_sales_reply_follows(
    openai_fake, outbox, settings
):
    asking = threading.Event()
    paid = threading.Event()

    def slow_answer(request: httpx.Request) -> httpx.Response:
        # The AI answers only once the payment has been received.
        asking.set()
        paid.wait(timeout=10)
        return openai_completion(
            {"intent": "price_question", "sentiment": "neutral", "reply": "Fica R$ 297."}
        )

    openai_fake(slow_answer)
    customer = CustomerFactory(phone=PHONE)
    abandonment = AbandonmentFactory(customer=customer, external_id="ab-paid", status="active")
    conversation = ConversationFactory(abandonment=abandonment, status=Conversation.Status.ACTIVE)
    inbound = InboundMessageFactory(text="Quanto fica?")
    outcomes: dict[str, object] = {}

    def reply() -> None:
        try:
            outcomes["inbound"] = process_inbound(inbound.pk)
        finally:
            connection.close()

    def pay() -> None:
        try:
            asking.wait(timeout=10)  # the reply is waiting for the AI
            body = json.dumps(
                {
                    "abandonmentId": "ab-paid",
                    "paymentId": "pay-1",
                    "status": "paid",
                    "amount": "297.00",
                    "linkType": "original",
                }
            ).encode()
            response = Client(raise_request_exception=False).post(
                "/webhook/payment",
                body,
                content_type="application/json",
                **signed(body, settings.PAYMENT_WEBHOOK_SECRET),
            )
            outcomes["payment"] = response
        finally:
            paid.set()
            connection.close()

    threads = [threading.Thread(target=reply), threading.Thread(target=pay)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    # The AI is asked holding no lock: the payment is not held up by it, and the answer that
    # comes back finds the recovery closed, so no sales pitch follows the customer's payment.
    assert outcomes["payment"].status_code == 200, outcomes["payment"].content[:200]
    assert outcomes["payment"].json()["status"] == "converted"
    assert outcomes["inbound"] == "no_conversation"
    abandonment.refresh_from_db()
    assert (abandonment.status, abandonment.discount_offers) == ("converted", 0)
    conversation.refresh_from_db()
    assert conversation.close_reason == "converted"
    assert not Message.objects.filter(direction="out", purpose=Message.Purpose.REPLY).exists()


def test_a_message_after_the_recovery_closed_gets_no_reply_but_shows_in_its_transcript(
    conversation, say, outbox
):
    Conversation.objects.filter(pk=conversation.pk).update(
        status=Conversation.Status.CLOSED, close_reason="converted"
    )
    message = say("Obrigada, chegou certinho!")
    assert outbox == []
    assert message.conversation_id == conversation.pk
    assert message.status == Message.Status.PROCESSED


def test_a_cart_opened_between_the_first_look_and_the_decision_gets_the_ais_answer(
    openai_fake, say, outbox, monkeypatch
):
    from recovery import conversation as processing

    seen = openai_fake(
        lambda request: openai_completion(
            {"intent": "question", "sentiment": "neutral", "reply": "Claro, posso ajudar!"}
        )
    )
    customer = CustomerFactory(phone=PHONE, name="Maria Silva")
    first_look = processing._interpret_ahead

    def look_then_a_cart_opens(message_id: int, *read):
        reading = first_look(message_id, *read)  # no open recovery yet: nothing for the AI to read
        # Meanwhile the checkout reports Maria's cart (the abandonment webhook's transaction).
        ConversationFactory(abandonment=AbandonmentFactory(customer=customer))
        return reading

    monkeypatch.setattr(processing, "_interpret_ahead", look_then_a_cart_opens)

    inbound = say("Oi, ainda dá pra comprar?")

    # The decision under the locks sees the cart, stops before writing, asks the AI once and
    # answers with its reading.
    assert len(seen) == 1
    assert texts(outbox) == ["Claro, posso ajudar!" + LINKS]
    inbound.refresh_from_db()
    assert (inbound.status, inbound.intent) == (Message.Status.PROCESSED, "question")
    assert inbound.conversation.exchanges == 1
