"""The send gate checks the person, not only the message's cart (SPEC §13, §14), with real workers.

Replies are queued for a customer; before any worker runs, the person is erased or a new cart
of theirs is drawn into the holdout group. Then the workers start: nothing reaches Graph.
"""

from __future__ import annotations

import time

import pytest

from messaging.models import Message
from recovery.inbound import process_inbound
from recovery.lgpd import customer_erase
from recovery.models import Abandonment, Conversation
from tests.faults.conftest import wait_until
from tests.faults.test_worker_faults import customer_writes, open_conversations

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _queue_replies(post_signed, broker, conversation: Conversation, count: int) -> None:
    for n in range(count):
        customer_writes(post_signed, conversation, f"Pergunta {n}: qual o preço?", n)
    broker.flushdb()  # the inbound tasks: processed here, so only the sends wait for a worker
    for message_id in Message.objects.filter(direction="in").order_by("pk").values_list("pk", flat=True):
        process_inbound(message_id=message_id)
    assert broker.llen("send") == count


def _every_send_decided() -> bool:
    return not Message.objects.filter(direction="out", status="pending").exists()


def test_replies_queued_before_an_erasure_never_reach_graph(post_signed, broker, workers, graph_server):
    [conversation] = open_conversations(1)
    _queue_replies(post_signed, broker, conversation, 3)

    customer_erase(customer=conversation.customer, reason="LGPD, chamado 1")
    workers().start(concurrency=2)
    wait_until(_every_send_decided, timeout=30, what="every queued send decided")
    time.sleep(1)

    assert graph_server.calls == []
    replies = Message.objects.filter(purpose=Message.Purpose.REPLY)
    assert set(replies.values_list("status", "error_code")) == {("failed", "erased")}


def test_replies_queued_before_a_held_out_cart_of_the_same_person_never_reach_graph(
    post_signed, broker, workers, graph_server, settings
):
    [conversation] = open_conversations(1)
    _queue_replies(post_signed, broker, conversation, 2)

    settings.SARA_HOLDOUT_PERCENT = 100
    response = post_signed(
        "/webhook/abandonment",
        {
            "userId": "u-holdout",
            "name": "Maria Silva",
            "phone": conversation.customer.phone,
            "productId": "curso-python",
            "paymentLink": "https://pay.example.com/cart/held",
            "abandonmentId": "ab-held-out",
            "value": "120.00",
        },
    )
    assert response.json()["status"] == "held_out"
    assert Abandonment.objects.get(external_id="ab-held-out").held_out
    workers().start(concurrency=2)
    wait_until(_every_send_decided, timeout=30, what="every queued send decided")
    time.sleep(1)

    assert graph_server.calls == []
    replies = Message.objects.filter(purpose=Message.Purpose.REPLY)
    assert replies.count() == 2
    assert set(replies.values_list("status", "error_code")) == {("failed", "held_out")}
