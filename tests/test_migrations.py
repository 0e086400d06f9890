"""The conversation moved from messaging to recovery without touching the database."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

BEFORE = [("messaging", "0012_sequence_templates"), ("recovery", "0011_sequence_steps")]
AFTER = [("messaging", "0013_conversation_to_recovery"), ("recovery", "0012_conversation_from_messaging")]
DDL = re.compile(r"^\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE)\b", re.IGNORECASE)


@pytest.mark.django_db
def test_the_models_and_the_migrations_agree() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_moving_the_conversation_issues_no_ddl_and_keeps_its_permissions() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    # Before the move, the API permission is messaging's; a group holds it.
    before = Permission.objects.get(content_type__app_label="messaging", codename="use_api")
    integrations = Group.objects.create(name="integrations")
    integrations.permissions.add(before)
    executor = MigrationExecutor(connection)

    try:
        with CaptureQueriesContext(connection) as queries:
            executor.migrate(AFTER)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert [q["sql"] for q in queries if DDL.match(q["sql"])] == []
    assert not ContentType.objects.filter(app_label="messaging", model="conversation").exists()
    after = Permission.objects.get(content_type__app_label="recovery", codename="use_api")
    assert after.pk == before.pk
    assert integrations.permissions.filter(pk=after.pk).exists()
