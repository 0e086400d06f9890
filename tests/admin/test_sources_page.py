"""The admin's Sources page (SPEC §11): what to paste where, which platforms are on, what came."""

from __future__ import annotations

import pytest
import responses

from messaging.models import WebhookEvent
from recovery.sources.tasks import nuvemshop_order_fetch
from tests.conftest import abandonment_body
from tests.recovery.platforms import NUVEMSHOP_API, SECRETS, payload, post, shopify_headers

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


def test_carts_from_the_generic_webhook_show_on_the_sources_page(post_signed, ops_client):
    assert post_signed("/webhook/abandonment", abandonment_body(value="1299.00")).status_code == 200

    response = ops_client.get(URL)
    page = response.content.decode()
    generic = response.context["generic"]
    assert generic.cart_count == 1
    assert [cart.external_id for cart in generic.carts] == ["ab-1001"]
    assert "http://testserver/webhook/abandonment" in page
    assert "ab-1001" in page and "R$ 1.299,00" in page
    assert "0 plataformas" not in page


def test_a_shopify_checkout_paid_during_the_wait_no_longer_says_waiting(client, ops_client, settings):
    settings.SHOPIFY_WEBHOOK_SECRET = SECRETS["SHOPIFY_WEBHOOK_SECRET"]
    post(
        client,
        "shopify",
        payload("shopify", "checkouts_create"),
        headers=shopify_headers("checkouts/create", "e1"),
    )
    post(client, "shopify", payload("shopify", "orders_paid"), headers=shopify_headers("orders/paid", "e2"))

    response = ops_client.get(URL)
    shopify = {source.name: source for source in response.context["sources"]}["shopify"]
    assert [(e.external_id, e.outcome) for e in shopify.events] == [
        ("shopify:e2", "completed"),
        ("shopify:e1", "completed"),
    ]
    assert "unless paid" not in response.content.decode()


def test_failed_nuvemshop_work_shows_with_the_count_of_what_waits(client, ops_client, settings):
    for name in ("NUVEMSHOP_APP_SECRET", "NUVEMSHOP_STORE_ID", "NUVEMSHOP_ACCESS_TOKEN"):
        setattr(settings, name, SECRETS[name])
    for order_id in (1, 2):
        post(client, "nuvemshop", {"store_id": 167985134, "event": "order/paid", "id": order_id})
    # The fetch is queued after the commit: run it as the worker would.
    for event in WebhookEvent.objects.filter(outcome="pending"):
        with responses.RequestsMock() as api:
            api.get(f"{NUVEMSHOP_API}/orders/{event.payload['id']}", json={"code": 401}, status=401)
            nuvemshop_order_fetch.apply(args=[event.pk])

    response = ops_client.get(URL)
    nuvem = {source.name: source for source in response.context["sources"]}["nuvemshop"]
    assert nuvem.due_work == 2
    page = response.content.decode()
    assert "2 eventos aguardam nova tentativa" in page
    assert "recusou o token de acesso" in page or "refused the access token" in page
