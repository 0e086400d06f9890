"""core.sql: the plain INSERTs of the hot paths keep up with the models they write."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import NOT_PROVIDED
from django.test.utils import isolate_apps

from core.sql import insert_parts
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
    assert parts.table == model._meta.db_table
    assert columns_the_database_cannot_fill(model) <= set(parts.named)
    assert set(parts.named) <= {field.column for field in model._meta.concrete_fields}
    assert parts.columns.count(",") == parts.values.count(",")


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

    parts = insert_parts(Note, given=("text", "created_at"))

    assert parts.named == ("text", "created_at", "channel", "retries", "urgent", "labels", "note")
    # Quotes doubled, and % doubled for the parameter formatting the statement still goes through.
    assert parts.values == "%s, %s, 'whats''app', 3, FALSE, '[]', '50%% off'"


@isolate_apps("messaging")
def test_a_not_null_field_added_without_any_default_stops_the_insert_being_built():
    class Note(models.Model):
        text = models.TextField()
        priority = models.IntegerField()

        class Meta:
            app_label = "messaging"

    with pytest.raises(ImproperlyConfigured, match=r"Note\.priority has no default"):
        insert_parts(Note, given=("text",))
    assert insert_parts(Note, given=("text", "priority")).named == ("text", "priority")


@isolate_apps("messaging")
def test_a_name_the_model_does_not_have_is_refused():
    class Note(models.Model):
        text = models.TextField()

        class Meta:
            app_label = "messaging"

    with pytest.raises(ImproperlyConfigured, match="body"):
        insert_parts(Note, given=("text", "body"))
