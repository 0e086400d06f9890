"""A person and Sara working on one cart at the same moment never deadlock (SPEC §8, §12).

Every path that touches a cart and its conversation locks the cart first, then the
conversation (docs/architecture.md, "Locks"). These tests hold one of those rows from a second
connection, as a worker in the middle of its turn does, and check that a staff member's request
waits its turn and answers as it would have, instead of deadlocking into a 500.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from messaging.models import Message
from recovery import handoff
from recovery.models import Abandonment, Conversation
from tests.factories import ConversationFactory, CustomerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CART = Abandonment._meta.db_table
CONVERSATION = Conversation._meta.db_table


def staff(username: str) -> AbstractUser:
    user = get_user_model().objects.create_user(username, password="x", is_staff=True)
    # Transactional tests flush the data migrations' groups: the support group is made again
    # with the API's permission, as the migrations give it.
    group = Group.objects.get_or_create(name="support")[0]
    group.permissions.add(Permission.objects.get(content_type__app_label="recovery", codename="use_api"))
    user.groups.add(group)
    return user


def token_of(user: AbstractUser) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def staff_post(path: str, body: dict[str, Any], token: str) -> Any:
    """POST to the conversations API with a staff member's token, from a client of its own (a
    test client is not shared between threads)."""
    return Client().post(path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}")


def talking() -> Conversation:
    """A customer who wrote five minutes ago: the 24 h window is open."""
    customer = CustomerFactory(phone="+5548999327881", name="Maria Silva")
    return ConversationFactory(
        abandonment__customer=customer,
        status=Conversation.Status.ACTIVE,
        last_user_message_at=timezone.now() - timedelta(minutes=5),
    )


@contextmanager
def second_connection() -> Iterator[psycopg.Connection]:
    """Another session on the test database, as psql or a worker would be."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname=db["NAME"],
        autocommit=False,
    ) as other:
        # Long enough for PostgreSQL's deadlock check (deadlock_timeout, 1 s) to run first.
        other.execute("SET lock_timeout = '8s'")
        yield other


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def waiting_for_a_lock(other: psycopg.Connection) -> bool:
    """Whether some other session on this database waits for a row lock."""
    with psycopg.connect(**other.info.get_parameters(), autocommit=True) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchone()
    return bool(row and row[0])


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_staff_reply_while_a_worker_holds_the_cart_waits_instead_of_deadlocking():
    conversation = talking()
    first, second = staff("julia"), staff("pedro")
    handoff.conversation_take(conversation_id=conversation.pk, user=first)

    with second_connection() as worker:
        # A worker in the middle of a customer's turn, or a payment converting the cart: it
        # holds the cart and is about to lock the conversation.
        worker.execute(f"SELECT id FROM {CART} WHERE id = %s FOR UPDATE", [conversation.abandonment_id])  # noqa: S608
        thread, outcome = in_thread(
            lambda: staff_post(
                f"/conversations/{conversation.pk}/reply",
                {"text": "Oi Maria, aqui é o Pedro."},
                token_of(second),
            )
        )
        wait_for(lambda: waiting_for_a_lock(worker))
        # The worker's next step: the conversation. Before the one lock order, the reply had
        # taken it and was waiting at COMMIT for the cart (its foreign-key check): a cycle.
        worker.execute(f"SELECT id FROM {CONVERSATION} WHERE id = %s FOR UPDATE", [conversation.pk])  # noqa: S608
        time.sleep(1.5)  # past deadlock_timeout: PostgreSQL would have found a cycle by now
        worker.commit()
        thread.join(timeout=30)

    assert "error" not in outcome, outcome.get("error")
    response = outcome["result"]
    assert response.status_code == 202, response.content
    conversation.refresh_from_db()
    assert conversation.assigned_to == second
    staff_replies = Message.objects.filter(conversation=conversation, purpose=Message.Purpose.STAFF_REPLY)
    assert list(staff_replies.values_list("text", "sent_by__username")) == [
        ("Oi Maria, aqui é o Pedro.", "pedro")
    ]
    assert conversation.message_count == 1


@pytest.fixture
def first_conversation_write_crosses_another():
    """PostgreSQL ends the first transaction that writes a conversation as a deadlock victim
    (SQLSTATE 40P01), as it does to one of two transactions that cross; later ones go through.

    A trigger raises it from inside the database: the service sees exactly what a real
    deadlock gives it. The sequence counts the writes, and is not rolled back with them.
    """
    with connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE sara_fault_crossed")
        cursor.execute(
            "CREATE FUNCTION sara_fault_crossed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('sara_fault_crossed') = 1 THEN "
            "RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END IF; RETURN NEW; END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER sara_fault_crossed BEFORE UPDATE ON {CONVERSATION} "
            "FOR EACH ROW EXECUTE FUNCTION sara_fault_crossed()"
        )

    def writes() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_value FROM sara_fault_crossed")
            return cursor.fetchone()[0]

    yield writes
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER sara_fault_crossed ON {CONVERSATION}")
        cursor.execute("DROP FUNCTION sara_fault_crossed()")
        cursor.execute("DROP SEQUENCE sara_fault_crossed")


def test_a_staff_reply_whose_transaction_is_a_deadlock_victim_is_queued_once_not_a_500(
    first_conversation_write_crosses_another, outbox
):
    conversation = talking()
    response = staff_post(
        f"/conversations/{conversation.pk}/reply",
        {"text": "Oi Maria, aqui é o Pedro."},
        token_of(staff("pedro")),
    )

    assert response.status_code == 202, response.content
    assert first_conversation_write_crosses_another() >= 2  # it did fail once, and ran again
    assert [sent.text for _, sent in outbox] == ["Oi Maria, aqui é o Pedro."]
    conversation.refresh_from_db()
    assert (conversation.assigned_to.username, conversation.message_count) == ("pedro", 1)


def test_closing_through_the_api_when_the_transaction_is_a_deadlock_victim_closes_it(
    first_conversation_write_crosses_another,
):
    conversation = talking()
    response = staff_post(
        f"/conversations/{conversation.pk}/close",
        {"reason": "resolvido por telefone"},
        token_of(staff("pedro")),
    )

    assert response.status_code == 200, response.content
    assert first_conversation_write_crosses_another() >= 2
    conversation.refresh_from_db()
    assert (conversation.status, conversation.close_reason) == ("closed", "resolvido por telefone")


def test_a_customer_message_whose_turn_is_a_deadlock_victim_is_answered_at_once_not_left_received(
    first_conversation_write_crosses_another, say, outbox
):
    conversation = talking()

    message = say("Quanto custa o frete?", wa_id="5548999327881")

    assert first_conversation_write_crosses_another() >= 2
    message.refresh_from_db()
    assert message.status == Message.Status.PROCESSED
    replies = Message.objects.filter(conversation=conversation, purpose=Message.Purpose.REPLY)
    assert [r.metadata["in_reply_to"] for r in replies] == [message.pk]
    assert len(outbox) == 1


def test_a_payment_whose_transaction_is_a_deadlock_victim_converts_the_cart_not_a_500(
    first_conversation_write_crosses_another, post_signed
):
    conversation = talking()
    cart = conversation.abandonment
    response = post_signed(
        "/webhook/payment",
        {
            "abandonmentId": cart.external_id,
            "paymentId": "pay-crossed-1",
            "status": "paid",
            "amount": str(cart.value),
            "linkType": "original",
        },
    )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "converted"
    assert first_conversation_write_crosses_another() >= 2
    cart.refresh_from_db()
    conversation.refresh_from_db()
    assert (cart.status, conversation.close_reason) == ("converted", "converted")
    assert Message.objects.filter(conversation=conversation, purpose=Message.Purpose.THANK_YOU).count() == 1
