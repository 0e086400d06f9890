"""Bursts (SPEC §5): a customer's messages in a row are read together and answered once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from messaging.models import Message
from recovery.inbound import AnswerLater, Outcome, process_inbound
from tests.factories import AbandonmentFactory, ConversationFactory, CustomerFactory, InboundMessageFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)
PHONE = "+5548999327881"


@pytest.fixture(autouse=True)
def burst_window(settings):
    settings.SARA_BURST_SECONDS = 4


def recovery():
    customer = CustomerFactory(phone=PHONE, name="Maria Silva")
    return ConversationFactory(abandonment=AbandonmentFactory(customer=customer, value=Decimal("297.00")))


def arrive(texts: list[str], every: float = 0.4) -> list[Message]:
    messages = []
    for n, text in enumerate(texts):
        with time_machine.travel(NOW + timedelta(seconds=n * every), tick=False):
            messages.append(InboundMessageFactory(text=text))
    return messages


def test_three_quick_messages_are_answered_once_after_the_window_with_their_words_read_together(
    outbox, django_capture_on_commit_callbacks
):
    conversation = recovery()
    first, second, last = arrive(["oi", "vi o carrinho", "tem desconto?"])

    with time_machine.travel(NOW + timedelta(seconds=1), tick=False):
        assert process_inbound(message_id=first.pk) is Outcome.IN_BURST
        assert process_inbound(message_id=second.pk) is Outcome.IN_BURST
        with pytest.raises(AnswerLater) as later:
            process_inbound(message_id=last.pk)
    assert later.value.seconds == pytest.approx(3.8)
    assert outbox == []

    with (
        time_machine.travel(NOW + timedelta(seconds=5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert process_inbound(message_id=last.pk) is Outcome.REPLIED
        assert process_inbound(message_id=first.pk) is Outcome.ALREADY_PROCESSED

    [(_, sent)] = outbox
    # "tem desconto?" is a price question: the answer quotes the cart, and offers the discount.
    assert "R$ 297,00" in sent.text
    assert set(Message.objects.filter(direction="in").values_list("status", "intent")) == {
        ("processed", "price_question")
    }
    conversation.refresh_from_db()
    assert conversation.exchanges == 1


def test_messages_further_apart_than_the_window_are_answered_each(outbox, django_capture_on_commit_callbacks):
    recovery()
    first, second = arrive(["Qual o prazo de entrega?", "e aceita pix?"], every=10)

    with (
        time_machine.travel(NOW + timedelta(seconds=30), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert process_inbound(message_id=first.pk) is Outcome.REPLIED
        assert process_inbound(message_id=second.pk) is Outcome.REPLIED

    assert len(outbox) == 2


def test_parar_at_the_end_of_a_burst_opts_out_at_once(outbox, django_capture_on_commit_callbacks):
    conversation = recovery()
    *_, stop = arrive(["quero ver o carrinho", "na verdade nao", "PARAR"])

    with (
        time_machine.travel(NOW + timedelta(seconds=5), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert process_inbound(message_id=stop.pk) is Outcome.OPT_OUT_REGISTERED

    conversation.refresh_from_db()
    assert conversation.customer.opted_out is True
    assert conversation.customer.opted_out_reason == "keyword"
    assert len(outbox) == 1


def test_a_burst_in_one_webhook_batch_is_answered_once_without_a_broker(
    post_signed, outbox, django_capture_on_commit_callbacks
):
    from tests.conftest import first_message, meta_payload

    recovery()
    payload = meta_payload("text")
    value = payload["entry"][0]["changes"][0]["value"]
    template = first_message(payload)
    value["messages"] = [
        {**template, "id": f"wamid.burst.{n}", "timestamp": str(int(NOW.timestamp())), "text": {"body": text}}
        for n, text in enumerate(["oi", "vi o carrinho", "tem desconto?"])
    ]
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert post_signed("/webhook/messages", payload).status_code == 200

    assert len(outbox) == 1
    assert set(Message.objects.filter(direction="in").values_list("status", flat=True)) == {"processed"}
