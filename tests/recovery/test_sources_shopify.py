"""Shopify's checkouts (SPEC §11): abandonment is a state, found by a sweep after the wait."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from messaging.models import Message, WebhookEvent
from recovery.models import Abandonment, SourceCheckout
from recovery.sources.tasks import sweep_source_checkouts
from tests.recovery.platforms import SECRETS, payload, post, shopify_headers

pytestmark = pytest.mark.django_db

# 10:00 in São Paulo, a weekday: no quiet hours in the way of the first template.
T0 = datetime(2025, 11, 24, 13, 0, tzinfo=ZoneInfo("UTC"))


@pytest.fixture(autouse=True)
def _shopify_connected(settings):
    settings.SHOPIFY_WEBHOOK_SECRET = SECRETS["SHOPIFY_WEBHOOK_SECRET"]
    settings.SHOPIFY_ABANDONED_AFTER_MINUTES = 60


def templates(outbox) -> list:
    return [sent for _, sent in outbox if sent.is_template]


def send(client, topic, body, event_id, capture):
    with capture(execute=True):
        response = post(client, "shopify", body, headers=shopify_headers(topic, event_id))
    assert response.status_code == 200, response.content
    return response.json()


def sweep(capture) -> int:
    with capture(execute=True):
        return sweep_source_checkouts()


def checkout_created(client, capture) -> dict:
    """Shopify's documented checkout, created at T0 (event evt-1)."""
    with time_machine.travel(T0, tick=False):
        return send(client, "checkouts/create", payload("shopify", "checkouts_create"), "evt-1", capture)


def test_a_checkout_waits_then_opens_one_recovery(client, outbox, capture):
    answer = checkout_created(client, capture)
    assert answer["status"] == "waiting"
    assert not Abandonment.objects.exists()
    with time_machine.travel(T0 + timedelta(minutes=59), tick=False):
        assert sweep(capture) == 0
    assert outbox == []
    with time_machine.travel(T0 + timedelta(minutes=61), tick=False):
        assert sweep(capture) == 1
        assert sweep(capture) == 0  # a second sweep finds nothing left to open
    abandonment = Abandonment.objects.get()
    assert abandonment.external_id == "shopify:123123123"
    assert abandonment.value == Decimal("1299.00")
    assert abandonment.payment_link.startswith("https://loja-da-maria.myshopify.com/548380009/checkouts/")
    # The phone was only on the billing address.
    assert abandonment.customer.phone == "+5548999327881"
    assert abandonment.customer.name == "Maria Silva"
    assert len(templates(outbox)) == 1
    assert WebhookEvent.objects.get(external_id="shopify:evt-1").outcome == "opened"


def test_the_same_payload_eight_times_is_one_recovery_and_one_template(client, outbox, capture):
    body = payload("shopify", "checkouts_create")
    # Shopify's retries: the original payload and event id, 8 times over 4 hours.
    for minutes in (0, 1, 3, 7, 15, 30, 90, 240):
        with time_machine.travel(T0 + timedelta(minutes=minutes), tick=False):
            send(client, "checkouts/create", body, "evt-1", capture)
            sweep(capture)
    with time_machine.travel(T0 + timedelta(hours=6), tick=False):
        sweep(capture)
    assert Abandonment.objects.count() == 1
    assert len(templates(outbox)) == 1
    assert WebhookEvent.objects.filter(type=WebhookEvent.Type.SOURCE).count() == 1


def test_an_update_restarts_the_wait(client, outbox, capture):
    checkout_created(client, capture)
    updated = payload("shopify", "checkouts_create")
    updated["total_price"] = "1399.00"
    with time_machine.travel(T0 + timedelta(minutes=40), tick=False):
        send(client, "checkouts/update", updated, "evt-2", capture)
    with time_machine.travel(T0 + timedelta(minutes=70), tick=False):
        assert sweep(capture) == 0
    with time_machine.travel(T0 + timedelta(minutes=101), tick=False):
        assert sweep(capture) == 1
    assert Abandonment.objects.get().value == Decimal("1399.00")


def test_a_checkout_paid_before_the_wait_ends_is_never_chased(client, outbox, capture):
    checkout_created(client, capture)
    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        answer = send(client, "orders/paid", payload("shopify", "orders_paid"), "evt-2", capture)
    assert answer["status"] == "completed"
    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        assert sweep(capture) == 0
    assert not Abandonment.objects.exists()
    assert outbox == []
    assert SourceCheckout.objects.get().status == SourceCheckout.Status.COMPLETED


def test_a_checkout_update_with_completed_at_in_time_is_never_chased(client, outbox, capture):
    checkout_created(client, capture)
    completed = payload("shopify", "checkouts_create")
    completed["completed_at"] = "2025-11-24T10:20:00-03:00"
    with time_machine.travel(T0 + timedelta(minutes=20), tick=False):
        assert send(client, "checkouts/update", completed, "evt-2", capture)["status"] == "completed"
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        sweep(capture)
    assert not Abandonment.objects.exists()
    assert outbox == []


def test_a_paid_order_after_the_template_converts_with_shopifys_amount(client, outbox, capture):
    checkout_created(client, capture)
    with time_machine.travel(T0 + timedelta(minutes=61), tick=False):
        sweep(capture)
    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        answer = send(client, "orders/paid", payload("shopify", "orders_paid"), "evt-2", capture)
        again = send(client, "orders/paid", payload("shopify", "orders_paid"), "evt-2", capture)
    assert answer["status"] == "converted"
    assert again["status"] == "duplicate"
    abandonment = Abandonment.objects.get()
    assert abandonment.status == Abandonment.Status.CONVERTED
    assert abandonment.paid_amount == Decimal("1299.00")
    assert Message.objects.filter(purpose=Message.Purpose.THANK_YOU).count() == 1


def test_a_checkout_without_a_phone_is_skipped_and_says_why(client, outbox, capture):
    body = payload("shopify", "checkouts_create")
    body["billing_address"]["phone"] = None
    with time_machine.travel(T0, tick=False):
        send(client, "checkouts/create", body, "evt-1", capture)
    with time_machine.travel(T0 + timedelta(minutes=61), tick=False):
        sweep(capture)
    cart = SourceCheckout.objects.get()
    assert (cart.status, cart.skip_reason) == ("skipped", "no_phone")
    assert WebhookEvent.objects.get(external_id="shopify:evt-1").outcome == "skipped"
    assert outbox == []


def test_other_topics_are_kept_and_ignored(client, django_capture_on_commit_callbacks):
    answer = send(client, "products/update", {"id": 1}, "evt-9", django_capture_on_commit_callbacks)
    assert answer["status"] == "ignored"
    assert WebhookEvent.objects.get().outcome == "ignored"
