"""The plain SQL of the hot paths keeps up with the models it stands for.

A field added to a model must be known to every hand-written INSERT of that model (or be
nullable, or have a database default), and the plain-SQL reads must give the same instances
the ORM gives.
"""

from __future__ import annotations

import re

import pytest
from django.db.models import NOT_PROVIDED, Model

from core import rows
from messaging.models import Conversation, Message, WebhookEvent
from messaging.services import inbound, outbound
from recovery import services as recovery_services
from recovery.models import Abandonment, Customer
from tests import factories


def _inserted_columns(sql: str) -> set[str]:
    match = re.search(r"INSERT INTO \w+ \(([^)]*)\)", sql)
    assert match, sql
    return {column.strip() for column in match.group(1).split(",")}


def _columns_an_insert_must_name(model: type[Model]) -> set[str]:
    """Columns the database cannot fill by itself: NOT NULL and no database default."""
    return {
        field.column
        for field in model._meta.concrete_fields
        if not field.primary_key and not field.null and field.db_default is NOT_PROVIDED
    }


@pytest.mark.parametrize(
    ("model", "sql"),
    [
        (Message, f"INSERT INTO messaging_message ({inbound._INSERT_COLUMNS})"),
        (Customer, recovery_services.INSERT_CUSTOMER),
        (WebhookEvent, recovery_services.INSERT_EVENT),
    ],
    ids=["inbound message", "cart's customer", "cart's audit event"],
)
def test_every_plain_insert_names_each_column_the_database_cannot_fill(model, sql) -> None:
    named = _inserted_columns(sql)
    missing = _columns_an_insert_must_name(model) - named
    assert not missing, (
        f"{model.__name__} has NOT NULL fields without a database default that this plain INSERT "
        f"does not set: {sorted(missing)}. Add them to the SQL, or give them a db_default."
    )
    unknown = named - {field.column for field in model._meta.concrete_fields}
    assert not unknown, f"columns the model no longer has: {sorted(unknown)}"


def _values(instance: Model) -> dict[str, object]:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


@pytest.mark.django_db
def test_the_send_paths_plain_read_gives_what_the_orm_gives() -> None:
    message = factories.OutboundMessageFactory(metadata={"in_reply_to": 1, "discount_offered": False})

    loaded = outbound._outbound(message.pk)

    expected = Message.objects.select_related("conversation__customer", "conversation__abandonment").get(
        pk=message.pk
    )
    assert _values(loaded) == _values(expected)
    assert _values(loaded.conversation) == _values(expected.conversation)
    assert _values(loaded.conversation.customer) == _values(expected.conversation.customer)
    assert _values(loaded.conversation.abandonment) == _values(expected.conversation.abandonment)
    assert not loaded.get_deferred_fields()
    assert isinstance(loaded.conversation, Conversation)
    assert isinstance(loaded.conversation.abandonment, Abandonment)


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
    rows.insert(ours)
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

    rows.save_fields(conversation, ["message_count", "status", "updated_at"])

    stored = Conversation.objects.get(pk=conversation.pk)
    assert (stored.message_count, stored.status, stored.close_reason) == (7, "active", "")
    assert stored.updated_at == conversation.updated_at > before
