"""Staff screens name a colleague by their full name, and by their username only when it is empty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client

from messaging.models import Message
from recovery.models import Conversation
from tests.admin.conftest import flash, signed_in, staff_in
from tests.factories import ConversationFactory, CustomerFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)
INBOX = "/admin/recovery/conversation/inbox/"


@pytest.fixture(autouse=True)
def frozen(settings):
    settings.LANGUAGE_CODE = "en"
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def ana() -> User:
    user = staff_in("support", "ana")
    user.first_name, user.last_name = "Ana", "Souza"
    user.save()
    return user


@pytest.fixture
def ana_client(ana) -> Client:
    return signed_in(ana)


def waiting() -> Conversation:
    return ConversationFactory(
        abandonment__customer=CustomerFactory(name="Carla"),
        status=Conversation.Status.ACTIVE,
        needs_human=True,
        handoff_reason=Conversation.HandoffReason.ASKED_FOR_PERSON,
        handoff_at=NOW - timedelta(minutes=10),
        last_user_message_at=NOW - timedelta(minutes=10),
    )


def step(client: Client, conversation: Conversation, name: str, **data: str):
    return client.post(f"/admin/recovery/conversation/{conversation.pk}/handoff/{name}/", data, follow=True)


def test_taking_a_conversation_names_the_staff_member_in_the_message_the_inbox_and_the_workspace(
    ana_client, ana
):
    conversation = waiting()

    response = step(ana_client, conversation, "take", confirmed="1")

    assert "Taken by Ana Souza" in flash(response)[0]
    inbox = ana_client.get(INBOX).content.decode()
    assert ">Ana Souza<" in inbox
    assert ">ana<" not in inbox
    workspace = ana_client.get(f"/admin/recovery/conversation/{conversation.pk}/change/").content.decode()
    assert "taken by Ana Souza" in workspace
    assert ">ana<" not in workspace


def test_the_assignment_select_the_filter_and_the_flash_name_colleagues(ana_client, ana):
    bruno = staff_in("support", "bruno")  # no name: his username stands in
    conversation = waiting()

    workspace = ana_client.get(f"/admin/recovery/conversation/{conversation.pk}/change/").content.decode()
    assert f'<option value="{ana.pk}">Ana Souza</option>' in workspace
    assert f'<option value="{bruno.pk}">bruno</option>' in workspace

    response = step(ana_client, conversation, "assign", assignee=str(ana.pk))
    assert "Assigned to Ana Souza." in flash(response)[0]

    listing = ana_client.get("/admin/recovery/conversation/").content.decode()
    assert f'href="?assigned_to={ana.pk}"' in listing
    assert ">Ana Souza</a>" in listing
    mine = ana_client.get(f"/admin/recovery/conversation/?assigned_to={ana.pk}")
    assert [c.pk for c in mine.context["cl"].result_list] == [conversation.pk]
    theirs = ana_client.get(f"/admin/recovery/conversation/?assigned_to={bruno.pk}")
    assert list(theirs.context["cl"].result_list) == []
    assert ana_client.get("/admin/recovery/conversation/?assigned_to=abc").status_code == 200


def test_the_conversation_list_filters_by_the_person_responsible_in_portuguese(ana_client, ana, settings):
    settings.LANGUAGE_CODE = "pt-br"
    waiting()

    listing = ana_client.get("/admin/recovery/conversation/").content.decode()

    assert "Por responsável" in listing
    assert ">Ana Souza</a>" in listing


def test_notes_and_staff_replies_appear_under_the_staff_members_name(ana_client, ana):
    conversation = waiting()
    # A reply from before the name was kept on the message: the account's name is read instead.
    OutboundMessageFactory(
        conversation=conversation,
        purpose=Message.Purpose.STAFF_REPLY,
        text="Oi Carla, aqui é da loja.",
        sent_by=ana,
        metadata={},
    )

    step(ana_client, conversation, "note", text="Cliente VIP")

    html = ana_client.get(f"/admin/recovery/conversation/{conversation.pk}/change/").content.decode()
    assert '<span class="sara-staff">Ana Souza</span>' in html
    assert "Private note</strong> · Ana Souza ·" in html
    assert ">ana<" not in html
