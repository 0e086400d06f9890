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
from django.contrib.auth.models import AbstractUser, Group
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from messaging.models import Conversation, Message
from recovery import handoff
from recovery.models import Abandonment
from tests.factories import ConversationFactory, CustomerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CART = Abandonment._meta.db_table
CONVERSATION = Conversation._meta.db_table


def staff(username: str) -> AbstractUser:
    user = get_user_model().objects.create_user(username, password="x", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="support")[0])
    return user


def token_of(user: AbstractUser) -> str:
    return Token.objects.get_or_create(user=user)[0].key


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
    api = Client()

    with second_connection() as worker:
        # A worker in the middle of a customer's turn, or a payment converting the cart: it
        # holds the cart and is about to lock the conversation.
        worker.execute(f"SELECT id FROM {CART} WHERE id = %s FOR UPDATE", [conversation.abandonment_id])  # noqa: S608
        thread, outcome = in_thread(
            lambda: api.post(
                f"/conversations/{conversation.pk}/reply",
                {"text": "Oi Maria, aqui é o Pedro."},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Token {token_of(second)}",
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
