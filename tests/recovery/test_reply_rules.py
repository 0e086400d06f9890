"""Without an OpenAI key the rule-based interpreter answers a customer's message (SPEC §5)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from messaging.models import Message
from tests.conftest import first_message, meta_payload
from tests.factories import AbandonmentFactory, ConversationFactory, CustomerFactory

NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)


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
