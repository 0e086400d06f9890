"""The integrations API: token-authenticated read and close of a conversation (SPEC §8)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

from recovery.models import Conversation
from tests.factories import ConversationFactory, InboundMessageFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def token() -> str:
    user = get_user_model().objects.create_user("integration", password="x")
    # The API serves staff in the support or ops groups, or a user given its permission.
    user.user_permissions.add(Permission.objects.get(codename="use_api"))
    return Token.objects.create(user=user).key


def auth(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {token}"}


def test_reading_a_conversation_needs_a_token(client):
    conversation = ConversationFactory()
    response = client.get(f"/conversations/{conversation.pk}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AUTHENTICATION_REQUIRED"


def test_a_conversation_reads_with_customer_abandonment_and_messages_in_order(client, token):
    conversation = ConversationFactory(status=Conversation.Status.ACTIVE)
    first = OutboundMessageFactory(conversation=conversation, text="Olá Maria")
    second = InboundMessageFactory(conversation=conversation, text="Quanto custa?")
    response = client.get(f"/conversations/{conversation.pk}", **auth(token))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "active"
    assert body["customer"]["phone"] == conversation.customer.phone
    assert body["abandonment"]["abandonmentId"] == conversation.abandonment.external_id
    assert body["abandonment"]["value"] == "297.00"
    assert [m["id"] for m in body["messages"]] == [first.pk, second.pk]
    assert [m["direction"] for m in body["messages"]] == ["out", "in"]


def test_an_unknown_conversation_is_404_in_the_error_shape(client, token):
    response = client.get("/conversations/999999", **auth(token))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_closing_a_conversation_records_the_reason(client, token):
    conversation = ConversationFactory(status=Conversation.Status.ACTIVE)
    response = client.post(
        f"/conversations/{conversation.pk}/close",
        {"reason": "customer called support"},
        content_type="application/json",
        **auth(token),
    )
    assert response.status_code == 200
    assert response.json()["status"] == "closed"
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED
    assert conversation.close_reason == "customer called support"
    assert conversation.closed_at is not None


def test_closing_a_conversation_a_person_holds_leaves_it_waiting_for_nobody_and_owned_by_nobody(
    client, token
):
    from recovery import handoff

    conversation = ConversationFactory(status=Conversation.Status.ACTIVE)
    person = get_user_model().objects.create_user("julia", password="x")
    handoff.conversation_take(conversation_id=conversation.pk, user=person)

    response = client.post(
        f"/conversations/{conversation.pk}/close",
        {"reason": "resolvido por telefone"},
        content_type="application/json",
        **auth(token),
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["needs_human"], body["assigned_to"], body["assigned_at"]) == (
        "closed",
        False,
        None,
        None,
    )
    conversation.refresh_from_db()
    assert (conversation.needs_human, conversation.assigned_to, conversation.close_reason) == (
        False,
        None,
        "resolvido por telefone",
    )
    # The hand-off's reason stays as history of why a person was called.
    assert conversation.handoff_reason == Conversation.HandoffReason.MANUAL


def test_closing_without_a_reason_is_a_validation_error(client, token):
    conversation = ConversationFactory()
    response = client.post(
        f"/conversations/{conversation.pk}/close", {}, content_type="application/json", **auth(token)
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert "reason" in response.json()["error"]["details"]
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.AWAITING_RESPONSE
