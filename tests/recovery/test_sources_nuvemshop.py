"""Nuvemshop (SPEC §11): the checkout poller against a faked API, and order webhooks by id."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
import responses
from responses import matchers

from messaging.models import Message, WebhookEvent
from recovery.models import Abandonment, SourceCheckout
from recovery.sources import nuvemshop
from recovery.sources.tasks import poll_nuvemshop
from tests.recovery.platforms import NUVEMSHOP_API, SECRETS, payload, post

pytestmark = pytest.mark.django_db

AUTH = matchers.header_matcher({"Authentication": "bearer nuvem-access-token"})


@pytest.fixture(autouse=True)
def _nuvemshop_connected(settings, monkeypatch):
    for name in ("NUVEMSHOP_APP_SECRET", "NUVEMSHOP_STORE_ID", "NUVEMSHOP_ACCESS_TOKEN"):
        setattr(settings, name, SECRETS[name])
    # One checkout a page, so two recorded checkouts make two pages.
    monkeypatch.setattr(nuvemshop, "PAGE_SIZE", 1)


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def checkout(**changes):
    found = copy.deepcopy(payload("nuvemshop", "checkouts_page")[0])
    found.update(changes)
    return found


SECOND = {
    "id": 411335300,
    "token": "ffe589b2ba4fef1a4155dc071c253dfk1j341990",
    "contact_phone": "+5548999327881",
    "contact_name": "Maria Silva",
    "total": "120.00",
    "abandoned_checkout_url": "https://nuvemteste.lojavirtualnuvem.com.br/checkout/v3/order/proxy/411335300/ffe5",
}


def page(api, number, body, status=200):
    api.get(
        f"{NUVEMSHOP_API}/checkouts",
        json=body,
        status=status,
        match=[AUTH, matchers.query_param_matcher({"page": str(number), "per_page": "1"})],
    )


def poll(capture):
    with capture(execute=True):
        return poll_nuvemshop.apply().get()


def templates(outbox):
    return [sent for _, sent in outbox if sent.is_template]


def test_the_poller_reads_every_page_and_opens_each_new_checkout(
    api, outbox, django_capture_on_commit_callbacks
):
    page(api, 1, [checkout()])
    page(api, 2, [checkout(**SECOND)])
    page(api, 3, [], status=404)
    poll(django_capture_on_commit_callbacks)
    assert sorted(Abandonment.objects.values_list("external_id", flat=True)) == [
        "nuvemshop:411335234",
        "nuvemshop:411335300",
    ]
    first = Abandonment.objects.get(external_id="nuvemshop:411335234")
    assert first.value == Decimal("291.35")
    assert first.payment_link.endswith("/411335234/d0e589b2ba4fef1a4155dc071c253dfk1j34198b9")
    assert first.customer.phone == "+5513995593019"
    assert len(templates(outbox)) == 2


def test_a_checkout_seen_twice_opens_once(api, outbox, django_capture_on_commit_callbacks):
    for _ in range(2):
        page(api, 1, [checkout()])
        page(api, 2, [], status=404)
    poll(django_capture_on_commit_callbacks)
    counts = poll(django_capture_on_commit_callbacks)
    assert counts == {"duplicate": 1}
    assert Abandonment.objects.count() == 1
    assert len(templates(outbox)) == 1


def test_a_429_is_retried_with_backoff_and_loses_nothing(api, outbox, django_capture_on_commit_callbacks):
    page(api, 1, {"code": 429, "message": "Too Many Requests"}, status=429)
    page(api, 1, [checkout()])
    page(api, 2, [], status=404)
    poll(django_capture_on_commit_callbacks)
    assert Abandonment.objects.count() == 1
    assert len(templates(outbox)) == 1


def test_a_revoked_token_fails_clearly_where_ops_look(api, outbox, django_capture_on_commit_callbacks):
    page(api, 1, {"code": 401, "message": "Unauthorized", "description": "Invalid access token"}, status=401)
    result = poll(django_capture_on_commit_callbacks)
    assert "refused the access token" in result["failed"]
    failure = WebhookEvent.objects.get(type=WebhookEvent.Type.SOURCE)
    assert failure.outcome == "failed"
    assert failure.external_id.startswith("nuvemshop:poll-failed:")
    assert "token" in failure.error
    assert outbox == []


def test_a_polled_checkout_with_completed_at_converts_its_cart(
    api, outbox, django_capture_on_commit_callbacks
):
    page(api, 1, [checkout()])
    page(api, 2, [], status=404)
    page(api, 1, [checkout(completed_at="2021-05-14T10:00:00+0000", total="281.35")])
    page(api, 2, [], status=404)
    poll(django_capture_on_commit_callbacks)
    poll(django_capture_on_commit_callbacks)
    abandonment = Abandonment.objects.get()
    assert abandonment.status == Abandonment.Status.CONVERTED
    assert abandonment.paid_amount == Decimal("281.35")
    converted = WebhookEvent.objects.get(external_id="nuvemshop:checkout:411335234:completed")
    assert converted.outcome == "converted"
    assert "R$ 281,35" in converted.error


def test_order_paid_webhook_fetches_the_order_and_converts_its_checkout(
    api, client, outbox, django_capture_on_commit_callbacks
):
    page(api, 1, [checkout()])
    page(api, 2, [], status=404)
    poll(django_capture_on_commit_callbacks)
    api.get(f"{NUVEMSHOP_API}/orders/411335234", json=payload("nuvemshop", "order"), match=[AUTH])
    # Nuvemshop sends some webhooks twice: the second delivery is a duplicate, no second fetch.
    for expected in ("pending", "duplicate"):
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, "nuvemshop", payload("nuvemshop", "order_paid_webhook"))
        assert response.status_code == 200
        assert response.json()["status"] == expected
    abandonment = Abandonment.objects.get()
    assert abandonment.status == Abandonment.Status.CONVERTED
    assert abandonment.paid_amount == Decimal("291.35")
    assert WebhookEvent.objects.get(external_id="nuvemshop:order/paid:411335234").outcome == "converted"
    assert Message.objects.filter(purpose=Message.Purpose.THANK_YOU).count() == 1


def test_an_order_paid_before_its_checkout_is_polled_is_never_chased(
    api, client, outbox, django_capture_on_commit_callbacks
):
    """Webhooks come unordered and checkouts up to 6 hours late: a paid cart stays paid."""
    api.get(f"{NUVEMSHOP_API}/orders/411335234", json=payload("nuvemshop", "order"), match=[AUTH])
    with django_capture_on_commit_callbacks(execute=True):
        post(client, "nuvemshop", payload("nuvemshop", "order_paid_webhook"))
    assert WebhookEvent.objects.get().outcome == "completed"
    page(api, 1, [checkout()])
    page(api, 2, [], status=404)
    poll(django_capture_on_commit_callbacks)
    assert not Abandonment.objects.exists()
    assert SourceCheckout.objects.get().status == SourceCheckout.Status.COMPLETED
    assert outbox == []


def test_other_order_events_are_kept_and_ignored(client):
    body = {"store_id": 167985134, "event": "order/created", "id": 411335234}
    response = post(client, "nuvemshop", body)
    assert response.json()["status"] == "ignored"


def test_the_poller_is_off_until_the_store_is_connected(settings):
    settings.NUVEMSHOP_ACCESS_TOKEN = ""
    assert poll_nuvemshop.apply().get() == {"skipped": "Nuvemshop is not connected"}


def test_an_order_webhook_without_a_connected_store_fails_where_ops_look(
    client, settings, django_capture_on_commit_callbacks
):
    settings.NUVEMSHOP_ACCESS_TOKEN = ""
    with django_capture_on_commit_callbacks(execute=True):
        post(client, "nuvemshop", payload("nuvemshop", "order_paid_webhook"))
    event = WebhookEvent.objects.get()
    assert event.outcome == "failed"
    assert "NUVEMSHOP_ACCESS_TOKEN" in event.error
