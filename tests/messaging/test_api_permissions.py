"""Who may use the integrations API (SPEC §9): staff in the support or ops groups, a user given
the API's permission, or a superuser. Any other token gets 403 and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone
from rest_framework.authtoken.models import Token

from messaging.models import Message
from recovery.models import Conversation
from tests.factories import ConversationFactory, CustomerFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


def _user(kind: str):
    if kind == "superuser":
        return User.objects.create_superuser("chefe", password="x")
    user = User.objects.create_user(kind, password="x", is_staff=kind != "no_group")
    if kind in ("support", "ops", "inactive"):
        user.groups.add(Group.objects.get(name="ops" if kind == "ops" else "support"))
    if kind == "given_permission":
        user.user_permissions.add(Permission.objects.get(codename="use_api"))
    if kind == "inactive":
        user.is_active = False
        user.save()
    return user


def _conversation() -> Conversation:
    return ConversationFactory(
        abandonment__customer=CustomerFactory(phone="+5548999327881", name="Maria Silva"),
        status=Conversation.Status.ACTIVE,
        last_user_message_at=timezone.now() - timedelta(minutes=5),
        needs_human=True,
        handoff_reason=Conversation.HandoffReason.ASKED_FOR_PERSON,
        handoff_at=timezone.now() - timedelta(minutes=4),
    )


ACTIONS = {
    "read": ("get", "", None, 200),
    "reply": ("post", "/reply", {"text": "Olá, aqui é a Júlia"}, 202),
    "close": ("post", "/close", {"reason": "resolvido por telefone"}, 200),
    "handback": ("post", "/handback", None, 200),
}
ALLOWED = ["support", "ops", "given_permission", "superuser"]


def _call(client, action: str, conversation: Conversation, token: str):
    method, suffix, body, _ = ACTIONS[action]
    return getattr(client, method)(
        f"/conversations/{conversation.pk}{suffix}",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("kind", ALLOWED)
def test_support_ops_a_permitted_user_and_a_superuser_may_use_the_api(client, kind, action, outbox):
    conversation = _conversation()
    response = _call(client, action, conversation, Token.objects.create(user=_user(kind)).key)
    assert response.status_code == ACTIONS[action][3], response.content


@pytest.mark.parametrize("action", list(ACTIONS))
def test_an_active_user_in_no_group_gets_403_and_changes_nothing(client, action, outbox):
    conversation = _conversation()
    before = Conversation.objects.filter(pk=conversation.pk).values().get()
    response = _call(client, action, conversation, Token.objects.create(user=_user("no_group")).key)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "PERMISSION_DENIED"
    assert "Maria" not in response.content.decode() and "99932" not in response.content.decode()
    assert Conversation.objects.filter(pk=conversation.pk).values().get() == before
    assert not Message.objects.exists()
    assert outbox == []


@pytest.mark.parametrize("action", list(ACTIONS))
def test_an_inactive_users_token_is_refused(client, action, outbox):
    conversation = _conversation()
    response = _call(client, action, conversation, Token.objects.create(user=_user("inactive")).key)
    assert response.status_code == 401
    assert not Message.objects.exists()
    assert Conversation.objects.get(pk=conversation.pk).status == Conversation.Status.ACTIVE


def test_a_staff_member_outside_the_groups_gets_403(client):
    user = User.objects.create_user("estagiario", password="x", is_staff=True)
    response = _call(client, "read", _conversation(), Token.objects.create(user=user).key)
    assert response.status_code == 403


def test_a_reply_to_an_opted_out_customer_answers_opted_out(client, outbox):
    conversation = _conversation()
    from recovery.lifecycle import optout_register

    optout_register(phone=conversation.customer.phone, reason="keyword")
    response = _call(client, "reply", conversation, Token.objects.create(user=_user("support")).key)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "OPTED_OUT"
    assert outbox == []


def test_the_schema_is_for_staff_and_api_users_only(client, admin_client):
    assert client.get("/api/schema/?format=json").status_code in (401, 403)
    token = Token.objects.create(user=_user("no_group")).key
    assert client.get("/api/schema/?format=json", HTTP_AUTHORIZATION=f"Token {token}").status_code == 403
    assert admin_client.get("/api/schema/?format=json").status_code == 200
    token = Token.objects.create(user=_user("support")).key
    assert client.get("/api/schema/?format=json", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
