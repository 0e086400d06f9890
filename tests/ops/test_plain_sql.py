"""The plain SQL of the hot paths keeps up with the models it stands for.

A field added to a model must be known to every hand-written INSERT of that model (or be
nullable, or have a database default), and the plain-SQL reads must give the same instances
the ORM gives.
"""

from __future__ import annotations

import re

import pytest
from django.db.models import NOT_PROVIDED, Model

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
