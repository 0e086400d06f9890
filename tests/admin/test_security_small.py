"""Smaller findings of the security review (SPEC §8, §9): a regex lookup never answers 500,
staff without permissions see no revenue, deactivating PARAR says what it does, /metrics is
not public through a proxy on the same host."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from compliance.models import OptOutKeyword
from tests.admin.conftest import flash
from tests.factories import OutboundMessageFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/admin/messaging/message/?error_code__regex=(",
        "/admin/messaging/message/?error_code__iregex=[",
        "/admin/recovery/customer/?phone__regex=(",
    ],
)
def test_a_regex_lookup_in_an_admin_list_is_refused_not_a_500(admin_client, url):
    OutboundMessageFactory(status="failed", error_code="131026")
    response = admin_client.get(url)
    assert response.status_code == 400


def test_an_ordinary_filter_still_works(admin_client):
    OutboundMessageFactory(status="failed", error_code="131026")
    assert admin_client.get("/admin/messaging/message/?error_code=131026").status_code == 200


def test_a_staff_member_without_permissions_sees_no_revenue(client):
    client.force_login(User.objects.create_user("novato", is_staff=True))
    response = client.get("/admin/")
    assert response.status_code == 200
    assert b"sara-dashboard" not in response.content
    assert "R$" not in response.content.decode()


def test_support_sees_the_dashboard(support_client):
    assert b"sara-dashboard" in support_client.get("/admin/").content


def test_deactivating_parar_asks_first_and_says_it_then_goes_to_the_model(support_client, run_action):
    parar = OptOutKeyword.objects.get(keyword="parar")
    page = run_action(support_client, "/admin/compliance/optoutkeyword/", "deactivate", [parar.pk])
    text = page.content.decode()
    assert 'id="confirm-warning"' in text
    assert "PARAR" in text
    parar.refresh_from_db()
    assert parar.active, "deactivated before the person confirmed"

    done = run_action(
        support_client,
        "/admin/compliance/optoutkeyword/",
        "deactivate",
        [parar.pk],
        apply="1",
        reason="teste de campanha",
    )
    parar.refresh_from_db()
    assert not parar.active
    assert any("1" in m for m in flash(done))


def test_unticking_active_on_the_keyword_page_warns(support_client):
    parar = OptOutKeyword.objects.get(keyword="parar")
    response = support_client.post(
        f"/admin/compliance/optoutkeyword/{parar.pk}/change/", {"keyword": "parar"}, follow=True
    )
    assert any("PARAR" in m for m in flash(response))


def test_metrics_from_a_proxy_on_the_same_host_are_refused(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    proxied = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert proxied.status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="203.0.113.9").status_code == 403
