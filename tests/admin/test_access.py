"""Who gets in and what they may do: staff only, ops actions for ops, every action in LogEntry."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, User
from django.test import Client

from compliance.models import OptOutKeyword
from tests.factories import OutboundMessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_a_user_who_is_not_staff_cannot_log_in_to_the_admin(client):
    User.objects.create_user("cliente", password="s3nha-forte")

    response = client.post("/admin/login/?next=/admin/", {"username": "cliente", "password": "s3nha-forte"})

    assert response.status_code == 200  # the login form again, with an error
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_staff_log_in_and_land_on_the_dashboard(client):
    user = User.objects.create_user("suporte", password="s3nha-forte", is_staff=True)
    # The dashboard's figures are for staff given a role (a bare staff account sees none).
    user.groups.add(Group.objects.get(name="support"))

    response = client.post(
        "/admin/login/?next=/admin/", {"username": "suporte", "password": "s3nha-forte"}, follow=True
    )

    assert response.status_code == 200
    assert 'id="sara-dashboard"' in response.content.decode()


def test_the_migration_gives_ops_the_retry_and_redrive_permissions_and_support_neither():
    support = set(Group.objects.get(name="support").permissions.values_list("codename", flat=True))
    ops = set(Group.objects.get(name="ops").permissions.values_list("codename", flat=True))

    assert {"retry_send", "redrive_work"} <= ops
    assert not {"retry_send", "redrive_work"} & support
    assert support <= ops
    assert {"change_product", "add_optoutkeyword", "change_conversation", "view_webhookevent"} <= support
    assert not {p for p in support | ops if p.startswith("delete_")}


def test_support_does_not_see_the_ops_actions(support_client, ops_client):
    OutboundMessageFactory()

    support_page = support_client.get("/admin/messaging/message/").content.decode()
    ops_page = ops_client.get("/admin/messaging/message/").content.decode()

    assert "Reprocessar o trabalho parado selecionado" not in support_page
    assert "Reprocessar o trabalho parado selecionado" in ops_page


def test_staff_without_a_group_see_nothing_but_the_index(client):
    nobody = User.objects.create_user("estagiario", is_staff=True)
    client.force_login(nobody)

    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/recovery/conversation/").status_code == 403
    assert client.get("/admin/recovery/product/").status_code == 403


def test_adding_a_keyword_is_logged_with_who_did_it(support_client, support_user):
    support_client.post("/admin/compliance/optoutkeyword/add/", {"keyword": "basta", "active": "on"})

    keyword = OptOutKeyword.objects.get(keyword="basta")
    entry = LogEntry.objects.get(object_id=str(keyword.pk))
    assert (entry.user, entry.action_flag) == (support_user, ADDITION)


def test_the_api_schema_is_published_with_the_conversation_endpoints_and_token_auth(support_client):
    # Staff read it signed in; anyone else gets nothing (SPEC §9).
    assert Client().get("/api/schema/").status_code in (401, 403)
    response = support_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    assert {"/conversations/{id}", "/conversations/{id}/close"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"',
    }
