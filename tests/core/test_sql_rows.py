"""Rows read and written with plain SQL (core.sql) are the ones the ORM reads and writes.

The select lists are built from the models' fields, so a field added to a model is read too;
these tests hold the values, the converters and the relations to what the ORM gives.
(The INSERTs core.sql builds are held to their models by tests/core/test_sql.py.)
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.db.models import Model

from messaging.models import Message
from recovery import sql as recovery_sql
from recovery.models import Abandonment, Conversation, Customer
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
def test_a_customer_inserted_plainly_is_the_row_the_orm_stores_and_reads() -> None:
    ours = recovery_sql.customer_insert(phone="+5548999327881", name="Maria", erased_phone="erased:x")
    theirs = Customer.objects.create(phone="+5548999327882", name="Maria")

    assert ours is not None and not ours._state.adding
    stored_ours, stored_theirs = Customer.objects.get(pk=ours.pk), Customer.objects.get(pk=theirs.pk)
    assert _values(ours) == _values(stored_ours)
    different = {"id", "phone", "created_at", "updated_at"}
    assert {k: v for k, v in _values(stored_ours).items() if k not in different} == {
        k: v for k, v in _values(stored_theirs).items() if k not in different
    }
    assert recovery_sql.customer_insert(phone="+5548999327881", name="Outra", erased_phone="erased:x") is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_reads_from_many_threads_share_one_converter_entry() -> None:
    # Each thread has its own connection (the development server starts one per request): the
    # converters are worked out once per select list, not kept once per connection ever made.
    from core import sql as core_sql

    message = factories.OutboundMessageFactory()
    before = core_sql._converting.cache_info().currsize

    def read() -> None:
        try:
            assert recovery_sql.outbound_message(message.pk) is not None
        finally:
            connection.close()

    for _ in range(5):
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    recovery_sql.outbound_message(message.pk)

    assert core_sql._converting.cache_info().currsize <= before + 1
