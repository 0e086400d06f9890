"""A quote is a quote (SPEC §4.4): what Sara offered a cart stays payable, whatever the product does."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from messaging.models import Message
from recovery.followups import sweep_windows
from recovery.models import Abandonment, Conversation, Product
from tests.factories import ProductFactory, maria_cart

pytestmark = pytest.mark.django_db


@pytest.fixture
def cart() -> Abandonment:
    """Maria's R$ 349,90 cart for a product with a 20 % discount link."""
    product = ProductFactory(
        product_id="curso-python",
        discount_percent=Decimal("20"),
        discount_link="https://pay.example.com/cart/123?cupom=SARA20",
    )
    return maria_cart(external_id="ab-quote", product=product, value=Decimal("349.90"))


@pytest.fixture
def pay(post_signed, django_capture_on_commit_callbacks):
    def post(amount: str, link_type: str = "discounted", payment_id: str = "pay-quote"):
        body = {
            "abandonmentId": "ab-quote",
            "paymentId": payment_id,
            "status": "paid",
            "amount": amount,
            "linkType": link_type,
        }
        with django_capture_on_commit_callbacks(execute=True):
            return post_signed("/webhook/payment", body)

    return post


def test_sara_keeps_the_quote_she_makes_on_the_cart(cart, say, outbox):
    say("Achei caro, qual o valor com desconto?")

    cart.refresh_from_db()
    [quote] = cart.quotes
    assert (quote["percent"], quote["value"], quote["link"]) == (
        "20.00",
        "279.92",
        "https://pay.example.com/cart/123?cupom=SARA20",
    )
    assert "R$ 279,92" in outbox[-1][1].text


def test_a_quoted_price_is_paid_after_support_lowers_the_discount(cart, say, pay, outbox):
    say("Achei caro, qual o valor com desconto?")
    Product.objects.filter(pk=cart.product_id).update(discount_percent=Decimal("15"))

    response = pay("279.92")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "converted"
    cart.refresh_from_db()
    assert (cart.status, cart.conversion_link) == (Abandonment.Status.CONVERTED, "discounted")


def test_a_quoted_price_is_paid_after_the_product_is_deactivated(cart, say, pay):
    say("Achei caro, qual o valor com desconto?")
    Product.objects.filter(pk=cart.product_id).update(active=False, discount_link="")

    response = pay("279.92")

    assert response.json()["status"] == "converted"


def test_a_discounted_price_never_quoted_nor_offered_now_is_refused(cart, pay):
    response = pay("297.42")  # 15 % off: never offered to this cart

    assert response.status_code == 422
    assert response.json()["error"]["details"]["accepted"] == ["279.92"]


def test_a_paid_payment_refused_stops_the_chase_and_flags_the_conversation(cart, pay, say, outbox):
    sent_before = len(outbox)

    response = pay("10.00", link_type="original")

    assert response.status_code == 422
    conversation = Conversation.objects.get(abandonment=cart)
    assert (conversation.needs_human, conversation.handoff_reason) == (True, "payment_mismatch")
    assert conversation.status == Conversation.Status.AWAITING_RESPONSE
    # No reply to the customer, no follow-up from the sweep: a person looks first.
    say("Já paguei! Cadê meu pedido?")
    Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUT,
        kind=Message.Kind.TEMPLATE,
        purpose=Message.Purpose.FIRST_CONTACT,
        status=Message.Status.SENT,
        sent_at=timezone.now() - timedelta(days=2),
    )
    Conversation.objects.filter(pk=conversation.pk).update(status=Conversation.Status.AWAITING_RESPONSE)
    assert sweep_windows(now=timezone.now())["followups"] == 0
    assert len(outbox) == sent_before
    assert not Message.objects.filter(conversation=conversation, purpose=Message.Purpose.REPLY).exists()


def test_ops_find_refused_payments_on_the_dashboard_and_by_a_filter(cart, pay, admin_client):
    pay("10.00", link_type="original")

    dashboard = admin_client.get("/admin/")
    listed = admin_client.get(
        "/admin/recovery/conversation/",
        {"needs_human__exact": "1", "handoff_reason__exact": "payment_mismatch"},
    )

    assert 'id="ops-payment-mismatch"' in dashboard.content.decode()
    assert dashboard.context["dashboard"].payment_mismatches == 1
    assert listed.status_code == 200
    assert listed.context["cl"].result_count == 1
