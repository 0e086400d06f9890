"""Staff users of the back-office: a support person and an ops person, in the migration's groups."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.utils import timezone

from messaging.models import Message
from recovery.models import Conversation
from tests.factories import ConversationFactory, CustomerFactory, OutboundMessageFactory

# Monday 24/11/2025, noon in São Paulo (UTC-3).
NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)
INBOX = "/admin/recovery/conversation/inbox/"
PHONE = "+5548999327881"

STAFF_GROUPS_MIGRATION = importlib.import_module("compliance.migrations.0003_staff_groups")


def staff_groups_again() -> None:
    """Transactional tests (the browser's) flush every table after each test, the migration's
    groups included: make them again with the migration's own lists."""
    for name, codenames in STAFF_GROUPS_MIGRATION.GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for dotted in codenames:
            # The conversation moved to recovery later (recovery's 0012 moved its permissions).
            app_label, codename = dotted.split(".")
            if codename.endswith("_conversation"):
                app_label = "recovery"
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def staff_in(group_name: str, username: str) -> User:
    user = User.objects.create_user(username, is_staff=True)
    # The groups come from compliance's data migration: a missing one fails here, loudly.
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def support_user(db) -> User:
    return staff_in("support", "suporte")


@pytest.fixture
def ops_user(db) -> User:
    return staff_in("ops", "operacao")


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def support_client(support_user) -> Client:
    return signed_in(support_user)


@pytest.fixture
def ops_client(ops_user) -> Client:
    return signed_in(ops_user)


@pytest.fixture
def run_action() -> Callable[..., object]:
    """POST an admin action on the changelist, as the action bar does, and follow the redirect."""

    def post(client: Client, url: str, action: str, ids: list[int], **extra: str) -> object:
        data = {"action": action, "_selected_action": [str(i) for i in ids], "index": "0", **extra}
        return client.post(url, data, follow=True)

    return post


def flash(response) -> list[str]:
    """The admin's messages shown after an action, as text."""
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def english_at_now(settings) -> Iterator[None]:
    """The assertions read the English msgids (the back-office's own language is pt-br), at NOW."""
    settings.LANGUAGE_CODE = "en"
    with time_machine.travel(NOW, tick=False):
        yield


def waiting_for_person(
    *,
    name: str = "Ana",
    waited: timedelta = timedelta(minutes=10),
    reason: str = Conversation.HandoffReason.ASKED_FOR_PERSON,
    **fields: object,
) -> Conversation:
    """A conversation Sara handed to a person `waited` before NOW."""
    conversation: Conversation = ConversationFactory(
        **{
            "abandonment__customer": CustomerFactory(name=name),
            "status": Conversation.Status.ACTIVE,
            "needs_human": True,
            "handoff_reason": reason,
            "handoff_at": NOW - waited,
            "last_user_message_at": NOW - waited,
            **fields,
        }
    )
    return conversation


def handoff_step(client: Client, conversation: Conversation, name: str, **data: str):
    """POST one hand-off step (take, reply, resolve...) from the conversation's page."""
    return client.post(f"/admin/recovery/conversation/{conversation.pk}/handoff/{name}/", data, follow=True)


def invitation(conversation: Conversation, *, status: str, **fields: object) -> Message:
    """Sara's first message to Maria: the invitation template about her Python course."""
    message: Message = OutboundMessageFactory(
        conversation=conversation,
        kind=Message.Kind.TEMPLATE,
        purpose=Message.Purpose.FIRST_CONTACT,
        text="",
        status=status,
        metadata={"template": {"name": "recovery_invitation", "language": "pt_BR",
                               "parameters": ["Maria", "Curso de Python"]}},
        **fields,
    )  # fmt: skip
    return message


def failed_reply(*, minutes_since_customer_wrote: int = 5, **customer: object) -> Message:
    """A free-form reply that failed on a transient Graph error, to Maria who wrote recently."""
    conversation = ConversationFactory(
        abandonment__customer=CustomerFactory(phone=PHONE, name="Maria Silva", **customer),
        status=Conversation.Status.ACTIVE,
        last_user_message_at=timezone.now() - timedelta(minutes=minutes_since_customer_wrote),
    )
    message: Message = OutboundMessageFactory(
        conversation=conversation,
        text="Pague aqui: https://pay.example.com/cart/123",
        status=Message.Status.FAILED,
        error_code="131000",
        error_detail="Something went wrong",
        attempts=5,
        failed_at=timezone.now(),
    )
    return message
