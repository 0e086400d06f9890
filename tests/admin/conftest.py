"""Staff users of the back-office: a support person and an ops person, in the migration's groups."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

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


@pytest.fixture
def support_client(support_user) -> Client:
    client = Client()
    client.force_login(support_user)
    return client


@pytest.fixture
def ops_client(ops_user) -> Client:
    client = Client()
    client.force_login(ops_user)
    return client


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
