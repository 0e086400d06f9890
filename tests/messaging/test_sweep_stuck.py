"""The stuck-work sweep (SPEC §7): work whose task was lost is re-driven, and done once."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import responses
from django.utils import timezone

from messaging.models import Message
from messaging.tasks import send_message, sweep_stuck
from recovery.models import Conversation
from tests.conftest import GRAPH_URL, abandon, at_once, first_message, graph_ok, meta_payload
from tests.factories import ConversationFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db

PHONE = "+5548999327881"
T0 = datetime.fromisoformat("2025-11-22 15:00:00+00:00")


def graph_body(graph: responses.RequestsMock, index: int) -> dict[str, Any]:
    return json.loads(graph.calls[index].request.body)


def open_recovery(post_signed, capture, *, send: bool) -> Conversation:
    """A cart abandoned now; with send=False the task is lost (Redis gone, worker killed...)."""
    return abandon(post_signed, capture, send=send, productId="unknown-product", abandonmentId="ab-stuck-1")


def customer_writes_but_processing_is_lost(post_signed, text: str = "Quanto custa o frete?") -> Message:
    payload = meta_payload("text")
    message = first_message(payload)
    message["text"]["body"] = text
    message["timestamp"] = str(int(timezone.now().timestamp()))
    # Outside django_capture_on_commit_callbacks the queued processing never runs.
    assert post_signed("/webhook/messages", payload).status_code == 200
    return Message.objects.get(whatsapp_message_id=message["id"])


def claimed_by_a_worker_that_died(conversation: Conversation) -> Message:
    """A reply a worker claimed, then vanished before Graph's answer was stored."""
    reply = OutboundMessageFactory(
        conversation=conversation, text="Segue o link: https://pay.example.com/cart/123"
    )
    Message.objects.filter(pk=reply.pk).update(claimed_at=timezone.now(), attempts=1)
    return reply


def test_customer_message_whose_processing_was_lost_is_processed_and_answered(
    graph, post_signed, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(T0, tick=False)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.first"))
    graph.add(responses.POST, GRAPH_URL, json={"success": True})  # the read receipt
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.reply"))
    conversation = open_recovery(post_signed, django_capture_on_commit_callbacks, send=True)
    time_machine.move_to(T0 + timedelta(hours=1), tick=False)
    inbound = customer_writes_but_processing_is_lost(post_signed)

    time_machine.move_to(T0 + timedelta(hours=1, minutes=1), tick=False)
    assert sweep_stuck.delay().get()["inbound"] == 0
    inbound.refresh_from_db()
    assert inbound.status == Message.Status.RECEIVED

    time_machine.move_to(T0 + timedelta(hours=1, minutes=3), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_stuck.delay().get()["inbound"] == 1

    inbound.refresh_from_db()
    assert inbound.status == Message.Status.PROCESSED
    reply = conversation.messages.get(purpose=Message.Purpose.REPLY)
    assert (reply.status, reply.whatsapp_message_id) == (Message.Status.SENT, "wamid.reply")
    assert "https://pay.example.com/cart/123" in reply.text
    assert graph_body(graph, 1) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": inbound.whatsapp_message_id,
        "typing_indicator": {"type": "text"},
    }
    assert graph_body(graph, 2) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": PHONE,
        "type": "text",
        "text": {"preview_url": True, "body": reply.text},
    }


def test_outbound_message_whose_send_was_never_queued_is_sent(
    graph, post_signed, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(T0, tick=False)
    conversation = open_recovery(post_signed, django_capture_on_commit_callbacks, send=False)
    template = conversation.messages.get()

    time_machine.move_to(T0 + timedelta(minutes=1), tick=False)
    assert sweep_stuck.delay().get()["outbound"] == 0
    assert len(graph.calls) == 0

    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.first"))
    time_machine.move_to(T0 + timedelta(minutes=3), tick=False)
    assert sweep_stuck.delay().get()["outbound"] == 1

    template.refresh_from_db()
    assert (template.status, template.whatsapp_message_id) == (Message.Status.SENT, "wamid.first")
    assert not template.possible_duplicate
    assert graph_body(graph, 0)["template"]["name"] == "recovery_invitation"


def test_send_of_unknown_outcome_is_sent_once_more_and_marked_possible_duplicate(graph, time_machine):
    time_machine.move_to(T0, tick=False)
    conversation = ConversationFactory(
        abandonment__customer__phone=PHONE, status=Conversation.Status.ACTIVE, last_user_message_at=T0
    )
    reply = claimed_by_a_worker_that_died(conversation)

    time_machine.move_to(T0 + timedelta(minutes=1), tick=False)
    sweep_stuck.delay()
    reply.refresh_from_db()
    assert (reply.status, reply.possible_duplicate) == (Message.Status.PENDING, False)
    assert len(graph.calls) == 0

    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.again"))
    time_machine.move_to(T0 + timedelta(minutes=5), tick=False)
    sweep_stuck.delay()

    reply.refresh_from_db()
    assert reply.status == Message.Status.SENT
    assert reply.whatsapp_message_id == "wamid.again"
    assert reply.possible_duplicate
    assert reply.attempts == 2
    assert graph_body(graph, 0)["text"]["body"] == reply.text


def test_send_handed_back_by_the_broker_after_its_worker_died_is_marked_possible_duplicate(
    graph, time_machine
):
    # RabbitMQ returns a dead worker's task as soon as the connection drops: the task itself,
    # not the sweep, finds the claim that was never released.
    time_machine.move_to(T0, tick=False)
    conversation = ConversationFactory(
        abandonment__customer__phone=PHONE, status=Conversation.Status.ACTIVE, last_user_message_at=T0
    )
    reply = claimed_by_a_worker_that_died(conversation)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.redelivered"))

    time_machine.move_to(T0 + timedelta(minutes=5), tick=False)
    send_message.delay(reply.pk)

    reply.refresh_from_db()
    assert (reply.status, reply.whatsapp_message_id) == (Message.Status.SENT, "wamid.redelivered")
    assert reply.possible_duplicate


def both_sides_stuck(post_signed, capture, time_machine) -> tuple[Conversation, Message, Message]:
    """At T0, in an open window: the customer's message lost before processing, and a reply
    claimed by a worker that died."""
    time_machine.move_to(T0, tick=False)
    conversation = open_recovery(post_signed, capture, send=False)
    Conversation.objects.filter(pk=conversation.pk).update(last_user_message_at=T0)
    inbound = customer_writes_but_processing_is_lost(post_signed)
    return conversation, inbound, claimed_by_a_worker_that_died(conversation)


def test_fresh_work_is_left_to_its_own_task(graph, post_signed, capture, time_machine):
    conversation, inbound, reply = both_sides_stuck(post_signed, capture, time_machine)

    time_machine.move_to(T0 + timedelta(minutes=1, seconds=59), tick=False)
    counts = sweep_stuck.delay().get()

    assert (counts["inbound"], counts["outbound"]) == (0, 0)
    inbound.refresh_from_db()
    reply.refresh_from_db()
    assert inbound.status == Message.Status.RECEIVED
    assert conversation.messages.filter(status=Message.Status.PENDING).count() == 2
    assert not reply.possible_duplicate
    assert len(graph.calls) == 0


def test_running_the_sweep_twice_sends_each_stuck_message_once(graph, post_signed, capture, time_machine):
    conversation, inbound, _reply = both_sides_stuck(post_signed, capture, time_machine)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.1"))
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.2"))
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.3"))
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.4"))

    time_machine.move_to(T0 + timedelta(minutes=5), tick=False)
    with capture(execute=True):
        first = sweep_stuck.delay().get()
    with capture(execute=True):
        second = sweep_stuck.delay().get()

    assert (first["inbound"], first["outbound"]) == (1, 2)
    assert (second["inbound"], second["outbound"]) == (0, 0)
    inbound.refresh_from_db()
    assert inbound.status == Message.Status.PROCESSED
    # The template, the reply of unknown outcome, one answer to the customer's message, and the
    # one read receipt of that message.
    bodies = [graph_body(graph, i) for i in range(len(graph.calls))]
    assert sorted(body.get("type", "receipt") for body in bodies) == ["receipt", "template", "text", "text"]
    assert set(
        conversation.messages.filter(direction=Message.Direction.OUT).values_list("status", flat=True)
    ) == {Message.Status.SENT}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_sweeps_send_each_stuck_message_once(graph, post_signed, time_machine):
    time_machine.move_to(T0, tick=False)
    conversation = ConversationFactory(
        abandonment__customer__phone=PHONE, status=Conversation.Status.ACTIVE, last_user_message_at=T0
    )
    stuck = [
        OutboundMessageFactory(conversation=conversation, text=f"Mensagem {n}", wa_id=PHONE.lstrip("+"))
        for n in range(3)
    ]
    claimed_by_a_worker_that_died(conversation)
    wamids = itertools.count()
    graph.add_callback(
        responses.POST,
        GRAPH_URL,
        callback=lambda request: (200, {}, json.dumps(graph_ok(f"wamid.{next(wamids)}"))),
    )
    time_machine.move_to(T0 + timedelta(minutes=5), tick=False)
    results = at_once([lambda: sweep_stuck.apply().result] * 3)

    assert len(results) == 3
    # Each of the four pending messages reached Graph exactly once, whichever sweep sent it.
    bodies = sorted(graph_body(graph, i)["text"]["body"] for i in range(len(graph.calls)))
    assert bodies == sorted([m.text for m in stuck] + ["Segue o link: https://pay.example.com/cart/123"])
    assert not conversation.messages.filter(status=Message.Status.PENDING).exists()


def test_a_send_waiting_out_its_retry_countdown_is_left_to_its_own_retry(graph, time_machine):
    from messaging.services import outbound
    from messaging.whatsapp import WhatsAppError

    time_machine.move_to(T0, tick=False)
    conversation = ConversationFactory(status=Conversation.Status.ACTIVE, last_user_message_at=T0)
    reply = OutboundMessageFactory(conversation=conversation, text="Segue o link")
    time_machine.move_to(T0 + timedelta(minutes=5), tick=False)  # an old message, e.g. an ops retry
    graph.add(responses.POST, GRAPH_URL, status=503, json={})
    with pytest.raises(WhatsAppError):
        outbound.send_message(message_id=reply.pk, final_attempt=False)

    # The Celery retry is counting down (1–8 s): the sweep must not start a second chain.
    time_machine.move_to(T0 + timedelta(minutes=5, seconds=2), tick=False)
    assert sweep_stuck.delay().get()["outbound"] == 0

    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.retried"))
    assert outbound.send_message(message_id=reply.pk, final_attempt=False, retrying=True) == "sent"
    reply.refresh_from_db()
    assert (reply.status, reply.attempts, reply.possible_duplicate) == (Message.Status.SENT, 2, False)


def test_a_send_whose_retry_was_lost_with_redis_is_picked_up_by_the_sweep(graph, time_machine):
    from messaging.services import outbound
    from messaging.whatsapp import WhatsAppError

    time_machine.move_to(T0, tick=False)
    conversation = ConversationFactory(status=Conversation.Status.ACTIVE, last_user_message_at=T0)
    reply = OutboundMessageFactory(conversation=conversation, text="Segue o link")
    graph.add(responses.POST, GRAPH_URL, status=503, json={})
    with pytest.raises(WhatsAppError):
        outbound.send_message(message_id=reply.pk, final_attempt=False)

    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.swept"))
    time_machine.move_to(T0 + timedelta(minutes=2), tick=False)  # the retry never came
    assert sweep_stuck.delay().get()["outbound"] == 1
    reply.refresh_from_db()
    assert (reply.status, reply.whatsapp_message_id) == (Message.Status.SENT, "wamid.swept")


def test_a_payment_kept_as_404_while_its_cart_was_in_flight_converts_the_cart(post_signed, time_machine):
    from recovery.models import Abandonment
    from tests.factories import AbandonmentFactory

    time_machine.move_to(T0, tick=False)
    payment = {"abandonmentId": "ab-race", "paymentId": "pay-race", "status": "paid", "amount": "297.00"}
    assert post_signed("/webhook/payment", payment).status_code == 404
    # The cart's transaction was in flight: it looked for an earlier payment before the 404 committed.
    abandonment = AbandonmentFactory(external_id="ab-race", value="297.00")
    ConversationFactory(abandonment=abandonment, customer=abandonment.customer)

    time_machine.move_to(T0 + timedelta(minutes=1), tick=False)
    assert sweep_stuck.delay().get()["payments"] == 1
    abandonment.refresh_from_db()
    assert (abandonment.status, abandonment.payment_id) == (Abandonment.Status.CONVERTED, "pay-race")
    assert sweep_stuck.delay().get()["payments"] == 0
