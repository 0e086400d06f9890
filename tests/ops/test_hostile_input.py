"""Hostile input: whatever arrives, the answer is never a 500 and nothing is half-stored."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.http import signature_of
from messaging.models import Conversation, Message, WebhookEvent
from recovery.models import Abandonment, Customer

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
# Shapes close to the real ones, with each field replaced by anything at all.
cart_like = st.fixed_dictionaries(
    {},
    optional={
        "userId": json_values,
        "name": json_values | st.text(max_size=300),
        "phone": json_values | st.sampled_from(["+5548999327881", "48999327881", "+1", "x" * 50]),
        "productId": json_values,
        "paymentLink": json_values | st.just("https://pay.example.com/c"),
        "abandonmentId": json_values | st.text(min_size=1, max_size=120),
        "value": json_values | st.sampled_from(["10.00", "0", "-1", "1e9", "NaN", 10**30]),
        "timestamp": json_values,
    },
)
payment_like = st.fixed_dictionaries(
    {},
    optional={
        "abandonmentId": json_values,
        "paymentId": json_values | st.text(min_size=1, max_size=120),
        "status": json_values | st.sampled_from(["paid", "refused", "PAID"]),
        "amount": json_values | st.sampled_from(["10.00", "10.001", "-5", 1e308]),
        "linkType": json_values | st.sampled_from(["original", "discounted", "other"]),
    },
)
FUZZ = hypothesis_settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def post_raw(
    client, url: str, body: bytes, *, content_type: str = "application/json", secret: str | None = None
):
    secret = secret or (
        settings.WHATSAPP_APP_SECRET if url.endswith("messages") else settings.PAYMENT_WEBHOOK_SECRET
    )
    return client.post(
        url, body, content_type=content_type, HTTP_X_HUB_SIGNATURE_256=signature_of(secret, body)
    )


@FUZZ
@given(body=cart_like | json_values)
def test_any_abandonment_body_gets_a_clear_answer_and_a_rejected_one_stores_nothing(client, body):
    before = (Customer.objects.count(), Abandonment.objects.count(), Conversation.objects.count())
    response = post_raw(client, "/webhook/abandonment", json.dumps(body).encode())
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
        assert (Customer.objects.count(), Abandonment.objects.count(), Conversation.objects.count()) == before


@FUZZ
@given(body=payment_like | json_values)
def test_any_payment_body_gets_a_clear_answer(client, body):
    response = post_raw(client, "/webhook/payment", json.dumps(body).encode())
    assert response.status_code in (200, 400, 404, 422), response.content[:300]
    if response.status_code != 200:
        assert set(response.json()["error"]) == {"code", "message", "details", "traceId"}
    assert not Abandonment.objects.filter(status="converted").exists()


@FUZZ
@given(raw=st.binary(max_size=2000))
def test_any_bytes_at_all_get_a_clear_answer_on_every_webhook(client, raw):
    for url in ("/webhook/abandonment", "/webhook/payment", "/webhook/messages"):
        response = post_raw(client, url, raw)
        assert response.status_code in (200, 400), (url, response.content[:300])


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_wrong_content_types_are_read_as_bytes_and_never_crash(client, content_type):
    body = b'{"abandonmentId": "a"}'
    response = post_raw(client, "/webhook/abandonment", body, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_absurdly_deep_nesting_is_a_validation_error(client):
    body = b"[" * 100_000 + b"]" * 100_000
    assert post_raw(client, "/webhook/abandonment", body).status_code == 400
    assert post_raw(client, "/webhook/messages", body).status_code == 200
    assert WebhookEvent.objects.filter(type="whatsapp").exclude(error="").count() == 1


def test_a_replayed_signature_over_a_changed_body_is_rejected(client):
    original = json.dumps(
        {"abandonmentId": "ab-1", "paymentId": "p-1", "status": "paid", "amount": "10.00"}
    ).encode()
    signature = signature_of(settings.PAYMENT_WEBHOOK_SECRET, original)
    changed = original.replace(b"10.00", b"0.01")
    response = client.post(
        "/webhook/payment", changed, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=signature
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "HMAC_VERIFICATION_FAILED"
    assert not WebhookEvent.objects.exists()


def test_huge_strings_in_a_meta_message_are_stored_cut_not_crashed(client):
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"messages": [
            {"from": "5548999327881" * 100, "id": "wamid." + "x" * 5000, "timestamp": "9" * 40, "type": "text",
             "text": {"body": "é" * 100_000}}]}}]}],
    }  # fmt: skip
    response = post_raw(client, "/webhook/messages", json.dumps(payload).encode())
    assert response.status_code == 200
    message = Message.objects.get()
    assert len(message.text) <= 4096 and len(message.whatsapp_message_id) <= 200


@pytest.mark.parametrize("url", ["/webhook/abandonment", "/webhook/payment"])
def test_a_wrong_method_is_405_in_the_error_shape(client, url):
    response = client.get(url)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert response["Allow"] == "POST"
