"""POST /webhook/sources/<platform> (SPEC §11): each platform's signature, dedup and retries."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from messaging.models import Message, WebhookEvent
from recovery.models import Abandonment, Conversation, SourceCheckout
from tests.factories import ProductFactory
from tests.recovery.platforms import PLATFORMS, SECRETS, payload, post

pytestmark = pytest.mark.django_db

SAMPLES = {
    "shopify": ("shopify", "checkouts_create"),
    "nuvemshop": ("nuvemshop", "order_paid_webhook"),
    "yampi": ("yampi", "cart_reminder"),
    "hotmart": ("hotmart", "purchase_out_of_shopping_cart"),
    "kiwify": ("kiwify", "carrinho_abandonado"),
}


@pytest.fixture(autouse=True)
def _platforms_connected(settings):
    for name, value in SECRETS.items():
        setattr(settings, name, value)


def templates_sent(outbox) -> list:
    return [sent for _, sent in outbox if sent.is_template]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_platform_whose_secret_is_unset_answers_404(client, settings, platform):
    setattr(
        settings,
        {
            "shopify": "SHOPIFY_WEBHOOK_SECRET",
            "nuvemshop": "NUVEMSHOP_APP_SECRET",
            "yampi": "YAMPI_WEBHOOK_SECRET",
            "hotmart": "HOTMART_HOTTOK",
            "kiwify": "KIWIFY_WEBHOOK_TOKEN",
        }[platform],
        "",
    )
    response = post(client, platform, payload(*SAMPLES[platform]))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert not WebhookEvent.objects.exists()


def test_an_unknown_platform_answers_404(client):
    assert post(client, "shopify", b"{}", signed=False).status_code != 404  # known, wrong signature
    response = client.post("/webhook/sources/magento", b"{}", content_type="application/json")
    assert response.status_code == 404


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_wrong_signature_is_403_and_nothing_is_stored(client, platform, outbox):
    body = json.dumps(payload(*SAMPLES[platform])).encode()
    forged = {
        "shopify": {"HTTP_X_SHOPIFY_HMAC_SHA256": "bm90IHRoZSBzaWduYXR1cmU="},
        "nuvemshop": {"HTTP_X_LINKEDSTORE_HMAC_SHA256": "0" * 64},
        "yampi": {"HTTP_X_YAMPI_HMAC_SHA256": "bm90IHRoZSBzaWduYXR1cmU="},
        "hotmart": {"HTTP_X_HOTMART_HOTTOK": "guessed-token"},
        "kiwify": {"QUERY_STRING": "signature=" + "0" * 40},
    }[platform]
    for extra in (forged, {}):
        response = client.post(f"/webhook/sources/{platform}", body, content_type="application/json", **extra)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "HMAC_VERIFICATION_FAILED"
    assert not WebhookEvent.objects.exists()
    assert not SourceCheckout.objects.exists()
    assert outbox == []


def test_a_signature_of_another_body_is_refused(client):
    """The HMAC covers the raw bytes: the same JSON re-serialised is not the signed body."""
    original = payload("yampi", "cart_reminder")
    signed_body = json.dumps(original).encode()
    tampered = json.dumps(original, indent=2).encode()
    from tests.recovery.platforms import signature

    response = client.post(
        "/webhook/sources/yampi", tampered, content_type="application/json", **signature("yampi", signed_body)
    )
    assert response.status_code == 403


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_body_over_one_mebibyte_is_413(client, platform):
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = post(client, platform, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("raw", [b"not json", b'{"a": 1e400', b"[1, 2]", b'{"x": NaN}', b"\xff\xfe"])
def test_authentic_garbage_is_a_400_and_kept_for_ops(client, raw):
    response = post(client, "yampi", raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    event = WebhookEvent.objects.get(type=WebhookEvent.Type.SOURCE)
    assert event.outcome == "invalid"


def test_yampi_cart_reminder_opens_one_recovery_with_the_carts_value_and_link(
    client, outbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "yampi", payload("yampi", "cart_reminder"))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "opened"
    abandonment = Abandonment.objects.get()
    assert abandonment.external_id == "yampi:38114521"
    assert abandonment.value == Decimal("189.90")
    assert abandonment.payment_link.startswith("https://seguro.teste-webhook.com.br/cart")
    assert abandonment.customer.phone == "+5511987654321"
    assert abandonment.customer.name == "João Pereira"
    assert response.json()["conversationId"] == abandonment.conversation.pk
    assert len(templates_sent(outbox)) == 1
    event = WebhookEvent.objects.get(type=WebhookEvent.Type.SOURCE)
    assert event.external_id == "yampi:cart.reminder:38114521"
    assert event.outcome == "opened"


def test_yampi_delivered_twice_opens_once(client, outbox, django_capture_on_commit_callbacks):
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, "yampi", payload("yampi", "cart_reminder"))
        assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert Abandonment.objects.count() == 1
    assert len(templates_sent(outbox)) == 1


def test_yampi_order_paid_converts_the_cart_with_the_platforms_amount(
    client, outbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post(client, "yampi", payload("yampi", "cart_reminder"))
    order = payload("yampi", "order_paid")
    order["resource"]["value_total"] = 179.9  # a coupon at the checkout: the platform is the truth
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "yampi", order)
    assert response.status_code == 200
    assert response.json()["status"] == "converted"
    abandonment = Abandonment.objects.get()
    assert abandonment.status == Abandonment.Status.CONVERTED
    assert abandonment.paid_amount == Decimal("179.90")
    assert abandonment.conversation.status == Conversation.Status.CLOSED
    event = WebhookEvent.objects.get(external_id="yampi:order.paid:9201234")
    assert event.outcome == "converted"
    assert "R$ 179,90" in event.error and "R$ 189,90" in event.error
    assert Message.objects.filter(purpose=Message.Purpose.THANK_YOU).count() == 1


def test_hotmart_abandonment_takes_price_and_link_from_the_mapped_product(
    client, outbox, django_capture_on_commit_callbacks
):
    ProductFactory(
        product_id="4774438", price=Decimal("497.00"), payment_link="https://pay.hotmart.com/X1234"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "hotmart", payload("hotmart", "purchase_out_of_shopping_cart"))
    assert response.status_code == 200
    assert response.json()["status"] == "opened"
    abandonment = Abandonment.objects.get()
    assert abandonment.value == Decimal("497.00")
    assert abandonment.payment_link == "https://pay.hotmart.com/X1234"
    assert abandonment.customer.phone == "+5521998765432"
    assert len(templates_sent(outbox)) == 1


def test_hotmart_abandonment_without_a_mapped_product_is_kept_and_skipped(client, outbox):
    response = post(client, "hotmart", payload("hotmart", "purchase_out_of_shopping_cart"))
    assert response.status_code == 200
    assert response.json() == {"status": "skipped", "detail": "unknown_product"}
    event = WebhookEvent.objects.get(type=WebhookEvent.Type.SOURCE)
    assert event.payload["data"]["buyer"]["email"] == "ana.souza@example.com"
    assert (event.outcome, event.error) == ("skipped", "unknown_product")
    cart = SourceCheckout.objects.get()
    assert (cart.status, cart.skip_reason) == ("skipped", "unknown_product")
    assert not Abandonment.objects.exists()
    assert outbox == []


def test_hotmart_purchase_approved_converts_the_cart(client, outbox, django_capture_on_commit_callbacks):
    ProductFactory(
        product_id="4774438", price=Decimal("497.00"), payment_link="https://pay.hotmart.com/X1234"
    )
    with django_capture_on_commit_callbacks(execute=True):
        post(client, "hotmart", payload("hotmart", "purchase_out_of_shopping_cart"))
        response = post(client, "hotmart", payload("hotmart", "purchase_approved"))
    assert response.json()["status"] == "converted"
    abandonment = Abandonment.objects.get()
    assert abandonment.status == Abandonment.Status.CONVERTED
    assert abandonment.paid_amount == Decimal("497.00")
    complete = payload("hotmart", "purchase_approved")
    complete["id"], complete["event"] = "5a1f0c7e-complete", "PURCHASE_COMPLETE"
    assert post(client, "hotmart", complete).json()["status"] == "duplicate"
    assert Abandonment.objects.get().payment_id == "hotmart:1d85822f-fa41-4c58-8c09-0ac945198972"


@pytest.mark.parametrize("raw", [b"definitely not json", b'{"event": "PURCHASE_APPROVED"}', b"[]"])
def test_hotmart_gets_a_2xx_for_an_authentic_event_it_cannot_use_once_it_is_kept(client, raw):
    response = post(client, "hotmart", raw)
    assert response.status_code == 200
    assert response.json()["status"] == "invalid"
    assert WebhookEvent.objects.get(type=WebhookEvent.Type.SOURCE).outcome == "invalid"


def test_kiwify_cart_opens_with_its_checkout_link_and_the_products_price(
    client, outbox, django_capture_on_commit_callbacks
):
    ProductFactory(product_id="ba22c4a0-5c94-11ee-9c2d-8d32d7a17894", price=Decimal("297.00"))
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "kiwify", payload("kiwify", "carrinho_abandonado"))
    assert response.json()["status"] == "opened"
    abandonment = Abandonment.objects.get()
    assert abandonment.payment_link == "https://pay.kiwify.com.br/Xb7kP2q"
    assert abandonment.value == Decimal("297.00")
    assert len(templates_sent(outbox)) == 1


def test_kiwify_retries_of_one_cart_and_one_order_count_once(
    client, outbox, django_capture_on_commit_callbacks
):
    """Kiwify's deliveries of one event differ on every retry: the cart and the order ids do not."""
    ProductFactory(product_id="ba22c4a0-5c94-11ee-9c2d-8d32d7a17894", price=Decimal("297.00"))
    for attempt in range(3):
        cart = payload("kiwify", "carrinho_abandonado")
        cart["created_at"] = f"2025-11-22T10:0{attempt}:00.000Z"
        with django_capture_on_commit_callbacks(execute=True):
            assert post(client, "kiwify", cart).status_code == 200
    for attempt in range(3):
        order = payload("kiwify", "order_approved")
        order["updated_at"] = f"2025-11-22 13:1{attempt}"
        with django_capture_on_commit_callbacks(execute=True):
            assert post(client, "kiwify", order).status_code == 200
    abandonment = Abandonment.objects.get()
    assert abandonment.status == Abandonment.Status.CONVERTED
    assert abandonment.paid_amount == Decimal("297.00")
    assert len(templates_sent(outbox)) == 1
    assert Message.objects.filter(purpose=Message.Purpose.THANK_YOU).count() == 1
    assert WebhookEvent.objects.filter(type=WebhookEvent.Type.SOURCE).count() == 2


def test_kiwify_signature_is_checked_on_the_query_string(client):
    body = json.dumps(payload("kiwify", "carrinho_abandonado")).encode()
    from tests.recovery.platforms import signature

    good = signature("kiwify", body)["QUERY_STRING"]
    response = client.post(f"/webhook/sources/kiwify?{good}", body, content_type="application/json")
    assert response.status_code == 200


def test_an_opted_out_customer_is_skipped(client, outbox):
    from tests.factories import CustomerFactory

    CustomerFactory(phone="+5511987654321", opted_out=True)
    response = post(client, "yampi", payload("yampi", "cart_reminder"))
    assert response.json() == {"status": "skipped", "detail": "opted_out"}
    assert Abandonment.objects.get().status == Abandonment.Status.SKIPPED
    assert outbox == []


HOSTILE = [
    b'{"event": "cart.reminder", "resource": {"id": "\\udc00"}}',
    b'{"event": "cart.reminder", "resource": {"id": 1, "x": "\xed\xb0\x80"}}',
    b'{"event": "cart.reminder", "resource": {"id": 1e400}}',
    b'{"event": "cart.reminder", "resource": {"id": Infinity}}',
    b'{"a": ' * 200 + b"1" + b"}" * 200,
    b'{"event": "cart.reminder", "resource": {"id": "x\\u0000y"}}',
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_bytes_never_get_a_500(client, raw):
    response = post(client, "yampi", raw)
    assert response.status_code in (200, 400), response.content
    hotmart = post(client, "hotmart", raw)
    assert hotmart.status_code == 200, hotmart.content


def test_hotmart_retries_of_one_abandonment_send_one_template_and_keep_no_email_in_ids(
    client, outbox, django_capture_on_commit_callbacks
):
    ProductFactory(
        product_id="4774438", price=Decimal("497.00"), payment_link="https://pay.hotmart.com/X1234"
    )
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert (
                post(client, "hotmart", payload("hotmart", "purchase_out_of_shopping_cart")).status_code
                == 200
            )
    assert len(templates_sent(outbox)) == 1
    cart = SourceCheckout.objects.get()
    ids = [
        cart.checkout_id,
        cart.token,
        Abandonment.objects.get().external_id,
        WebhookEvent.objects.get(type="source").reference,
    ]
    assert all("ana.souza" not in value for value in ids)
    # Hotmart names no cart: the abandonment event is the cart, the buyer and product its second key.
    assert cart.checkout_id == "event:b2ac014c-06e7-4047-af8e-99715ef5976f"
    assert cart.token.startswith("4774438:")
