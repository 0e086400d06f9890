"""The hand-off through the integrations API: a person's reply and the give-back (SPEC §8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from messaging.models import Message
from recovery.models import Conversation
from tests.factories import ConversationFactory, CustomerFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def agent():
    user = get_user_model().objects.create_user("atendente", password="x", first_name="Júlia", is_staff=True)
    user.groups.add(Group.objects.get(name="support"))
    return user


@pytest.fixture
def token(agent) -> str:
    return Token.objects.create(user=agent).key


def auth(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {token}"}


def talking(**fields) -> Conversation:
    """A customer who wrote five minutes ago."""
    return ConversationFactory(
        **{
            "abandonment__customer": CustomerFactory(phone="+5548999327881", name="Maria Silva"),
            "status": Conversation.Status.ACTIVE,
            "last_user_message_at": NOW - timedelta(minutes=5),
            **fields,
        }
    )


def reply(client, conversation: Conversation, token: str | None, body: object):
    headers = auth(token) if token else {}
    return client.post(
        f"/conversations/{conversation.pk}/reply", body, content_type="application/json", **headers
    )


def test_a_reply_is_queued_sent_and_the_conversation_taken_by_the_tokens_user(
    client, token, agent, outbox, django_capture_on_commit_callbacks
):
    conversation = talking()

    with django_capture_on_commit_callbacks(execute=True):
        response = reply(client, conversation, token, {"text": "Oi Maria, aqui é a Júlia."})

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    message = Message.objects.get(pk=body["messageId"])
    assert (message.purpose, message.sent_by, message.status) == (
        Message.Purpose.STAFF_REPLY,
        agent,
        Message.Status.SENT,
    )
    (_, sent), *_ = outbox
    assert (sent.to, sent.text) == ("+5548999327881", "Oi Maria, aqui é a Júlia.")
    conversation.refresh_from_db()
    assert conversation.needs_human is True
    assert conversation.handoff_reason == Conversation.HandoffReason.MANUAL
    assert conversation.assigned_to == agent
    read = client.get(f"/conversations/{conversation.pk}", **auth(token)).json()
    assert read["assigned_to"] == "atendente"
    assert read["messages"][-1]["sent_by"] == "atendente"


def test_a_reply_outside_the_window_is_409_window_closed_and_nothing_is_stored(client, token, outbox):
    conversation = talking(last_user_message_at=NOW - timedelta(hours=24, minutes=1))

    response = reply(client, conversation, token, {"text": "Oi Maria"})

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "WINDOW_CLOSED"
    assert "24 horas" in error["message"]  # the default language, pt-br
    assert not conversation.messages.exists()
    conversation.refresh_from_db()
    assert conversation.assigned_to is None


def test_a_reply_to_a_customer_who_never_wrote_is_409_window_closed(client, token):
    conversation = talking(last_user_message_at=None)

    response = reply(client, conversation, token, {"text": "Oi Maria"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "WINDOW_CLOSED"


def test_a_reply_to_an_opted_out_customer_is_409_opted_out(client, token, outbox):
    conversation = talking()
    conversation.customer.opted_out = True
    conversation.customer.save()

    response = reply(client, conversation, token, {"text": "Oi Maria"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "OPTED_OUT"
    assert not conversation.messages.exists()
    assert outbox == []


def test_a_reply_to_a_closed_conversation_is_409(client, token):
    conversation = talking(status=Conversation.Status.CLOSED)

    response = reply(client, conversation, token, {"text": "Oi Maria"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONVERSATION_CLOSED"


def test_a_reply_without_a_token_is_401_and_nothing_is_sent(client, outbox):
    conversation = talking()

    response = reply(client, conversation, None, {"text": "Oi Maria"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"
    assert not conversation.messages.exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"text": ""}, {"text": "   "}, {"text": "x" * 4097}, {"text": 42}, ["Oi"]],
    ids=["missing", "empty", "blank", "too-long", "number", "not-an-object"],
)
def test_a_bad_reply_body_is_400_in_the_error_shape(client, token, body):
    conversation = talking()

    response = reply(client, conversation, token, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert not conversation.messages.exists()


def test_a_reply_to_an_unknown_conversation_is_404(client, token):
    response = client.post(
        "/conversations/999999/reply", {"text": "Oi"}, content_type="application/json", **auth(token)
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_handback_gives_the_conversation_back_to_sara(client, token, agent, say, outbox):
    conversation = talking(
        needs_human=True,
        handoff_reason=Conversation.HandoffReason.EXCHANGE_LIMIT,
        handoff_at=NOW - timedelta(hours=1),
        assigned_to=agent,
        assigned_at=NOW - timedelta(minutes=30),
        exchanges=5,
    )

    response = client.post(f"/conversations/{conversation.pk}/handback", **auth(token))

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["needs_human"], body["assigned_to"], body["exchanges"]) == (
        "active",
        False,
        None,
        0,
    )
    say("Tem desconto no pix?")
    assert len(outbox) == 1  # Sara answers again


def test_handback_of_a_closed_conversation_is_409_and_without_a_token_401(client, token):
    conversation = talking(status=Conversation.Status.CLOSED, needs_human=True)

    assert client.post(f"/conversations/{conversation.pk}/handback").status_code == 401
    response = client.post(f"/conversations/{conversation.pk}/handback", **auth(token))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONVERSATION_CLOSED"


def test_reply_and_handback_are_in_the_openapi_schema(client, token):
    paths = client.get("/api/schema/?format=json", **auth(token)).json()["paths"]
    assert {"202", "409", "401", "403"} <= set(paths["/conversations/{id}/reply"]["post"]["responses"])
    assert "200" in paths["/conversations/{id}/handback"]["post"]["responses"]
