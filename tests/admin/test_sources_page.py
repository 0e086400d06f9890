"""The admin's Sources page (SPEC §11): what to paste where, which platforms are on, what came."""

from __future__ import annotations

import pytest

from tests.recovery.platforms import SECRETS, payload, post

pytestmark = pytest.mark.django_db

URL = "/admin/recovery/sourcecheckout/"


@pytest.fixture
def _hotmart_and_yampi_connected(settings):
    settings.HOTMART_HOTTOK = SECRETS["HOTMART_HOTTOK"]
    settings.YAMPI_WEBHOOK_SECRET = SECRETS["YAMPI_WEBHOOK_SECRET"]
    settings.SHOPIFY_WEBHOOK_SECRET = ""


@pytest.mark.usefixtures("_hotmart_and_yampi_connected")
def test_ops_see_each_platforms_url_whether_its_secret_is_set_and_its_last_events(client, ops_client):
    post(client, "hotmart", payload("hotmart", "purchase_out_of_shopping_cart"))
    post(client, "yampi", payload("yampi", "cart_reminder"))

    response = ops_client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    for platform in ("shopify", "nuvemshop", "yampi", "hotmart", "kiwify"):
        assert f"http://testserver/webhook/sources/{platform}" in page
    sources = {source.name: source for source in response.context["sources"]}
    assert sources["hotmart"].secret_set and sources["yampi"].secret_set
    assert not sources["shopify"].secret_set
    # Whether a secret is set, never the secret.
    for secret in SECRETS.values():
        assert secret not in page
    hotmart_events = sources["hotmart"].events
    assert [(e.outcome, e.error) for e in hotmart_events] == [("skipped", "unknown_product")]
    assert "unknown_product" in page
    assert [e.outcome for e in sources["yampi"].events] == ["opened"]
    # The carts themselves are listed below, the skipped one with its reason.
    assert response.context["cl"].result_count == 2


def test_support_can_read_the_sources_page_but_change_nothing(support_client):
    assert support_client.get(URL).status_code == 200
    assert support_client.get(URL + "add/").status_code == 403
