"""The checks right before every send (SPEC §6): opt-out and Meta's 24-hour window."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import responses
from django.utils import timezone

from messaging.models import Message
from messaging.tasks import send_message
from recovery.lifecycle import optout_register
from recovery.models import Conversation, Customer
from recovery.outbox import message_queue
from sara import agent
from tests.conftest import GRAPH_URL, first_message, graph_ok, meta_payload
from tests.factories import ConversationFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db

PHONE = "+5548999327881"
WAMID = "wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEjQ4RDE3NjQ1M0U0QTRBNkI0AA=="
NOW = "2025-11-22 15:00:00+00:00"


def conversation_last_written(ago: timedelta | None) -> Conversation:
    return ConversationFactory(
        abandonment__customer__phone=PHONE,
        status=Conversation.Status.ACTIVE,
        last_user_message_at=None if ago is None else timezone.now() - ago,
    )


def template(conversation: Conversation, purpose: str = Message.Purpose.FIRST_CONTACT) -> Message:
    return OutboundMessageFactory(
        conversation=conversation,
        kind=Message.Kind.TEMPLATE,
        purpose=purpose,
        text="",
        metadata={"template": {"name": "recovery_invitation", "language": "pt_BR", "parameters": ["Maria"]}},
    )


def customer_writes(post_signed, text: str) -> Any:
    payload = meta_payload("text")
    message = first_message(payload)
    message["text"]["body"] = text
    message["timestamp"] = str(int(timezone.now().timestamp()))
    return post_signed("/webhook/messages", payload)


def test_reply_queued_before_the_customer_opted_out_is_never_sent(graph, django_capture_on_commit_callbacks):
    conversation = conversation_last_written(timedelta(minutes=1))
    with django_capture_on_commit_callbacks() as queued_sends:
        reply = message_queue(
            conversation=conversation, purpose=Message.Purpose.REPLY, text="Quer o link com desconto?"
        )
    optout_register(phone=PHONE, reason="keyword")

    for send in queued_sends:
        send()

    reply.refresh_from_db()
    assert reply.status == Message.Status.FAILED
    assert reply.error_code == "opted_out"
    assert reply.whatsapp_message_id is None
    assert len(graph.calls) == 0


def test_opted_out_customer_gets_no_template_either(graph):
    conversation = conversation_last_written(None)
    message = template(conversation)
    Customer.objects.filter(phone=PHONE).update(opted_out=True, opted_out_at=timezone.now())

    send_message.delay(message.pk)

    message.refresh_from_db()
    assert (message.status, message.error_code) == (Message.Status.FAILED, "opted_out")
    assert len(graph.calls) == 0


def test_farewell_is_the_one_message_an_opted_out_customer_receives(
    graph, post_signed, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(NOW, tick=False)
    conversation = conversation_last_written(timedelta(hours=2))
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    with django_capture_on_commit_callbacks(execute=True):
        customer_writes(post_signed, "PARAR")

    customer = Customer.objects.get(phone=PHONE)
    assert customer.opted_out
    farewell = conversation.messages.get(direction=Message.Direction.OUT)
    assert (farewell.purpose, farewell.status) == (Message.Purpose.FAREWELL, Message.Status.SENT)
    assert json.loads(graph.calls[0].request.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": PHONE,
        "type": "text",
        "text": {"preview_url": True, "body": agent.FAREWELL},
    }


def test_free_form_reply_to_a_customer_silent_for_25_hours_fails_window_closed(graph):
    conversation = conversation_last_written(timedelta(hours=25))
    reply = OutboundMessageFactory(conversation=conversation, text="Ainda tem interesse?")

    send_message.delay(reply.pk)

    reply.refresh_from_db()
    assert reply.status == Message.Status.FAILED
    assert reply.error_code == "window_closed"
    assert reply.error_detail
    assert reply.failed_at is not None
    assert len(graph.calls) == 0


def test_free_form_text_to_a_customer_who_never_wrote_fails_window_closed(graph):
    conversation = conversation_last_written(None)
    text = OutboundMessageFactory(conversation=conversation, text="Oi!")

    send_message.delay(text.pk)

    text.refresh_from_db()
    assert (text.status, text.error_code) == (Message.Status.FAILED, "window_closed")
    assert len(graph.calls) == 0


def test_free_form_reply_just_inside_the_window_goes_out(graph):
    conversation = conversation_last_written(timedelta(hours=23, minutes=59))
    reply = OutboundMessageFactory(conversation=conversation, text="Aqui está o link.")
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    send_message.delay(reply.pk)

    reply.refresh_from_db()
    assert reply.status == Message.Status.SENT
    assert len(graph.calls) == 1


def test_template_goes_out_when_the_window_has_closed(graph):
    conversation = conversation_last_written(timedelta(hours=25))
    # A person's template: a step of Sara's sequence stops once the customer has answered.
    message = template(conversation, purpose=Message.Purpose.STAFF_REPLY)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    send_message.delay(message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert json.loads(graph.calls[0].request.body)["type"] == "template"


def test_thank_you_after_a_late_payment_is_blocked_by_the_closed_window(
    graph, post_signed, django_capture_on_commit_callbacks
):
    conversation = conversation_last_written(timedelta(hours=30))
    abandonment = conversation.abandonment

    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(
            "/webhook/payment",
            {
                "abandonmentId": abandonment.external_id,
                "paymentId": "pay-1",
                "status": "paid",
                "amount": str(abandonment.value),
                "linkType": "original",
            },
        )

    assert response.json()["status"] == "converted"
    thank_you = conversation.messages.get(purpose=Message.Purpose.THANK_YOU)
    assert (thank_you.status, thank_you.error_code) == (Message.Status.FAILED, "window_closed")
    assert len(graph.calls) == 0


@pytest.mark.parametrize("purpose", [Message.Purpose.FIRST_CONTACT, Message.Purpose.FOLLOWUP])
@pytest.mark.parametrize("close_reason", ["converted", "superseded", "expired"])
def test_proactive_template_of_a_closed_conversation_is_dropped(graph, purpose, close_reason):
    conversation = conversation_last_written(None)
    message = template(conversation, purpose=purpose)
    Conversation.objects.filter(pk=conversation.pk).update(
        status=Conversation.Status.CLOSED, close_reason=close_reason, closed_at=timezone.now()
    )

    send_message.delay(message.pk)

    message.refresh_from_db()
    assert (message.status, message.error_code) == (Message.Status.FAILED, "conversation_closed")
    assert len(graph.calls) == 0
    conversation.refresh_from_db()
    assert (conversation.status, conversation.close_reason) == (Conversation.Status.CLOSED, close_reason)


def test_thank_you_of_a_converted_conversation_still_goes_out(graph):
    conversation = conversation_last_written(timedelta(hours=1))
    Conversation.objects.filter(pk=conversation.pk).update(
        status=Conversation.Status.CLOSED, close_reason="converted", closed_at=timezone.now()
    )
    thank_you = OutboundMessageFactory(
        conversation=conversation, purpose=Message.Purpose.THANK_YOU, text="Pagamento confirmado!"
    )
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    send_message.delay(thank_you.pk)

    thank_you.refresh_from_db()
    assert thank_you.status == Message.Status.SENT
    assert json.loads(graph.calls[0].request.body)["text"]["body"] == "Pagamento confirmado!"
