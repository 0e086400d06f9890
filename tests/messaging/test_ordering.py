"""One customer's messages are answered in turn, even by different worker threads at once."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from messaging.models import Message
from messaging.tasks import process_inbound
from recovery.models import Conversation
from tests.conftest import openai_completion
from tests.factories import ConversationFactory, CustomerFactory, InboundMessageFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PHONE = "+5548999327881"


@pytest.mark.redis
def test_a_second_message_is_read_with_the_first_ones_answer_in_its_history(openai_fake, settings):
    settings.SARA_BURST_SECONDS = 0  # two questions apart, not a burst: the turn orders them
    seen_histories: list[list[str]] = []

    def slow_ai(request: httpx.Request) -> httpx.Response:
        messages = json.loads(request.content)["messages"]
        document = json.loads(messages[-1]["content"].split("\n", 1)[1])
        seen_histories.append(
            [turn["texto"] for turn in document["historico"]] + [document["mensagem_do_cliente"]]
        )
        time.sleep(0.4)
        return openai_completion(
            {"intent": "question", "sentiment": "neutral", "reply": f"Resposta {len(seen_histories)}"}
        )

    openai_fake(slow_ai)
    customer = CustomerFactory(phone=PHONE)
    conversation = ConversationFactory(
        customer=customer, abandonment__customer=customer, status=Conversation.Status.ACTIVE
    )
    first = InboundMessageFactory(text="Primeira pergunta?", whatsapp_timestamp=timezone.now())
    second = InboundMessageFactory(text="Segunda pergunta?", whatsapp_timestamp=timezone.now())

    def run(message_id: int, delay: float) -> None:
        try:
            time.sleep(delay)
            process_inbound(message_id)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(first.pk, 0)),
        threading.Thread(target=run, args=(second.pk, 0.1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert len(seen_histories) == 2
    # The second message waited for its turn: the AI saw the first question and Sara's answer.
    assert seen_histories[1][-1] == "Segunda pergunta?"
    assert "Primeira pergunta?" in seen_histories[1]
    assert any(text.startswith("Resposta 1") for text in seen_histories[1])
    conversation.refresh_from_db()
    assert conversation.exchanges == 2
    assert Message.objects.filter(direction="out", purpose=Message.Purpose.REPLY).count() == 2
