"""Rows read and written with plain SQL (core.sql) are the ones the ORM reads and writes.

The select lists are built from the models' fields, so a field added to a model is read too;
these tests hold the values, the converters and the relations to what the ORM gives.
(The hand-written INSERTs of core.sql are held to their models by tests/core/test_sql.py.)
"""

from __future__ import annotations

import pytest
from django.db.models import Model

from core import sql as core_sql
from messaging.models import Message
from recovery import sql as recovery_sql
from recovery.models import Abandonment, Conversation
from tests import factories


def _values(instance: Model) -> dict[str, object]:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


@pytest.mark.django_db
def test_the_send_paths_plain_read_gives_what_the_orm_gives() -> None:
    message = factories.OutboundMessageFactory(metadata={"in_reply_to": 1, "discount_offered": False})

    loaded, conversation, customer, abandonment = recovery_sql.outbound_message(message.pk)

    expected = Message.objects.select_related("conversation__customer", "conversation__abandonment").get(
        pk=message.pk
    )
    assert _values(loaded) == _values(expected)
    assert _values(conversation) == _values(expected.conversation)
    assert _values(customer) == _values(expected.conversation.customer)
    assert _values(abandonment) == _values(expected.conversation.abandonment)
    assert not loaded.get_deferred_fields()
    assert isinstance(conversation, Conversation)
    assert isinstance(abandonment, Abandonment)


@pytest.mark.django_db
def test_a_plain_insert_stores_what_the_orms_save_stores() -> None:
    conversation = factories.ConversationFactory()
    fields = {
        "conversation": conversation,
        "direction": Message.Direction.OUT,
        "kind": Message.Kind.TEXT,
        "purpose": Message.Purpose.REPLY,
        "wa_id": "5548999327881",
        "text": "Olá!",
        "status": Message.Status.PENDING,
        "metadata": {"in_reply_to": 7, "nested": {"a": [1, 2]}},
    }
    ours = Message(**fields)
    core_sql.insert(ours)
    theirs = Message.objects.create(**fields)

    stored_ours, stored_theirs = Message.objects.get(pk=ours.pk), Message.objects.get(pk=theirs.pk)
    different = {"id", "created_at"}
    assert {k: v for k, v in _values(stored_ours).items() if k not in different} == {
        k: v for k, v in _values(stored_theirs).items() if k not in different
    }
    assert ours.created_at == stored_ours.created_at
    assert not ours._state.adding


@pytest.mark.django_db
def test_a_plain_update_writes_the_fields_named_and_the_auto_now_ones() -> None:
    conversation = factories.ConversationFactory()
    before = conversation.updated_at
    conversation.message_count = 7
    conversation.status = Conversation.Status.ACTIVE
    conversation.close_reason = "not saved"

    core_sql.save_fields(conversation, ["message_count", "status", "updated_at"])

    stored = Conversation.objects.get(pk=conversation.pk)
    assert (stored.message_count, stored.status, stored.close_reason) == (7, "active", "")
    assert stored.updated_at == conversation.updated_at > before
