"""core.sql: the plain INSERTs of the hot paths keep up with the models they write."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import NOT_PROVIDED
from django.test.utils import isolate_apps

from core.sql import insert
from messaging import sql as messaging_sql
from messaging.models import Message, WebhookEvent
from recovery import sql as recovery_sql
from recovery.models import Customer


def columns_the_database_cannot_fill(model: type[models.Model]) -> set[str]:
    return {
        field.column
        for field in model._meta.concrete_fields
        if not field.primary_key and not field.null and field.db_default is NOT_PROVIDED
    }


@pytest.mark.parametrize(
    ("model", "parts"),
    [
        (Message, messaging_sql.INBOUND),
        (WebhookEvent, messaging_sql.EVENT),
        (Customer, recovery_sql.CUSTOMER),
    ],
    ids=["Meta's inbound message", "a cart's audit event", "a cart's new customer"],
)
def test_every_plain_insert_names_each_column_the_database_cannot_fill(model, parts):
    assert parts.model is model
    assert columns_the_database_cannot_fill(model) <= set(parts.columns)
    assert set(parts.columns) <= {field.column for field in model._meta.concrete_fields}
    assert len(parts.columns) == len(parts.values().as_string(None).split(", "))


@isolate_apps("messaging")
def test_a_not_null_field_added_with_a_default_is_inserted_with_that_default():
    class Note(models.Model):
        text = models.TextField()
        created_at = models.DateTimeField()
        # The fields a later change adds: the INSERT names them without being edited.
        channel = models.CharField(max_length=10, default="whats'app")
        retries = models.PositiveSmallIntegerField(default=3)
        urgent = models.BooleanField(default=False)
        labels = models.JSONField(default=list)
        seen_at = models.DateTimeField(null=True)
        origin = models.CharField(max_length=10, db_default="meta")
        note = models.CharField(max_length=10, default="50% off")

        class Meta:
            app_label = "messaging"

    parts = insert(Note, given=("text", "created_at"))

    assert parts.columns == ("text", "created_at", "channel", "retries", "urgent", "labels", "note")
    # The defaults are parameters: no quoting by hand, whatever the text holds.
    assert parts.values().as_string(None) == (
        "%(text)s, %(created_at)s, %(default_channel)s, %(default_retries)s, %(default_urgent)s, "
        "%(default_labels)s, %(default_note)s"
    )
    defaults = parts.defaults()
    assert {k: v for k, v in defaults.items() if k != "default_labels"} == {
        "default_channel": "whats'app",
        "default_retries": 3,
        "default_urgent": False,
        "default_note": "50% off",
    }


@isolate_apps("messaging")
def test_a_not_null_field_added_without_any_default_stops_the_insert_being_built():
    class Note(models.Model):
        text = models.TextField()
        priority = models.IntegerField()

        class Meta:
            app_label = "messaging"

    with pytest.raises(ImproperlyConfigured, match=r"Note\.priority has no default"):
        insert(Note, given=("text",))
    assert insert(Note, given=("text", "priority")).columns == ("text", "priority")


@isolate_apps("messaging")
def test_a_name_the_model_does_not_have_is_refused():
    class Note(models.Model):
        text = models.TextField()

        class Meta:
            app_label = "messaging"

    with pytest.raises(ImproperlyConfigured, match="body"):
        insert(Note, given=("text", "body"))
