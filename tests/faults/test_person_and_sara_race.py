"""A person, Sara and a payment on the same cart at the same moment, with real workers (SPEC §8).

Each cart's conversation is held by a staff member; then, all at once, the customer writes
(read by a real worker), a second staff member replies through the API, and the cart is paid.
Whatever order PostgreSQL grants the locks in: no 500, no customer message left `received` for
the sweep, and not one word from Sara while a person owns the conversation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from core.http import signature_of
from messaging.models import Message
from recovery import handoff
from recovery.models import Abandonment, Conversation
from tests.conftest import at_once, meta_payload
from tests.factories import ConversationFactory, CustomerFactory
from tests.faults.conftest import wait_until
from tests.faults.test_lock_order import staff, staff_post, token_of

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CARTS = 12


def held_by_a_person(n: int, person) -> Conversation:
    customer = CustomerFactory(phone=f"+55489930{n:05d}", name="Maria Silva")
    conversation = ConversationFactory(
        abandonment__customer=customer,
        status=Conversation.Status.ACTIVE,
        last_user_message_at=timezone.now() - timedelta(minutes=5),
    )
    handoff.conversation_take(conversation_id=conversation.pk, user=person)
    return conversation


def signed_post_later(url: str, payload: dict[str, Any], secret: str) -> Callable[[], Any]:
    """The signed webhook POST, to be made later from a thread (with a client of its own)."""
    body = json.dumps(payload).encode()
    return lambda: Client().post(
        url, body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature_of(secret, body)
    )


def customer_writes(conversation: Conversation, n: int):
    payload = meta_payload("text")
    value = payload["entry"][0]["changes"][0]["value"]
    wa_id = conversation.customer.phone.lstrip("+")
    value["contacts"][0]["wa_id"] = wa_id
    message = value["messages"][0]
    message.update({"from": wa_id, "id": f"wamid.race.{n}", "timestamp": str(int(time.time()))})
    message["text"]["body"] = "Quanto custa o frete? Quero finalizar a compra."
    return signed_post_later("/webhook/messages", payload, settings.WHATSAPP_APP_SECRET)


def pays(conversation: Conversation, n: int):
    cart = conversation.abandonment
    body = {
        "abandonmentId": cart.external_id,
        "paymentId": f"pay-race-{n}",
        "status": "paid",
        "amount": str(cart.value),
        "linkType": "original",
    }
    return signed_post_later("/webhook/payment", body, settings.PAYMENT_WEBHOOK_SECRET)


def second_person_replies(conversation: Conversation, token: str):
    return lambda: staff_post(
        f"/conversations/{conversation.pk}/reply",
        {"text": "Oi Maria, aqui é o Pedro: já vejo isso para você."},
        token,
    )


def deadlocks() -> int:
    """Deadlocks PostgreSQL detected in the test database so far (its statistics lag a moment)."""
    time.sleep(0.6)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_a_customer_message_a_staff_reply_and_a_payment_at_once_never_deadlock_and_sara_stays_silent(
    broker, workers, graph_server
):
    first, second = staff("julia"), staff("pedro")
    token = token_of(second)
    conversations = [held_by_a_person(n, first) for n in range(CARTS)]
    pool = workers()
    pool.start(concurrency=8)
    deadlocks_before = deadlocks()

    calls = []
    for n, conversation in enumerate(conversations):
        calls += [
            customer_writes(conversation, n),
            second_person_replies(conversation, token),
            pays(conversation, n),
        ]
    responses = at_once(calls)

    statuses = [r.status_code for r in responses]
    assert not [s for s in statuses if s >= 500], statuses
    webhooks, replies, payments = statuses[0::3], statuses[1::3], statuses[2::3]
    assert set(webhooks) == {200}
    assert set(payments) == {200}
    # The reply came before the payment closed the conversation (202), or after it (409).
    assert set(replies) <= {202, 409}, replies
    # Every customer message is read by a worker now, not left `received` for the sweep.
    wait_until(
        lambda: not Message.objects.filter(direction="in", status=Message.Status.RECEIVED).exists(),
        timeout=60,
        what="every customer message processed",
    )
    assert Message.objects.filter(direction="in", status=Message.Status.PROCESSED).count() == CARTS
    assert Abandonment.objects.filter(status=Abandonment.Status.CONVERTED).count() == CARTS
    # A person owned every conversation: Sara wrote nothing (no reply, no hand-off note).
    sara_words = [Message.Purpose.REPLY, Message.Purpose.HANDOFF, Message.Purpose.FOLLOWUP]
    assert not Message.objects.filter(direction="out", purpose__in=sara_words).exists()
    staff_replies = Message.objects.filter(purpose=Message.Purpose.STAFF_REPLY)
    assert staff_replies.count() == replies.count(202)
    # One lock order: PostgreSQL found no cycle to break at all (not even one retried).
    assert deadlocks() == deadlocks_before
