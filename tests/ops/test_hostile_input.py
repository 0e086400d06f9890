"""Hostile input: whatever arrives, the answer is never a 500 and nothing is half-stored."""

from __future__ import annotations

import base64
import json

import pytest
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.http import signature_of
from messaging.models import Message, WebhookEvent
from recovery.models import Abandonment, Conversation, Customer

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


# Tokens no layer below the edge may see (SPEC §4): each is spliced, as raw bytes, into a valid
# body at any position — in place of a value, of a key, or as an extra field nobody validates.
HOSTILE_TOKENS = {
    "overflowing float": b"1e400",
    "overflowing negative float": b"-1e400",
    "overflowing integer": b"9" * 400,
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "-Infinity": b"-Infinity",
    "escaped lone low surrogate": b'"oi \\udc00"',
    "escaped lone high surrogate": b'"\\ud83d!"',
    "raw surrogate bytes": b'"oi \xed\xa0\x80"',
    "invalid UTF-8": b'"\xff\xfe\xc3("',
    "nesting deeper than 64": b"[" * 65 + b"]" * 65,
}
SENTINEL = "__hostile__"


def paths_of(value: object, path: tuple = ()) -> list[tuple]:
    """Every value's position in a JSON document (the root's being the empty path)."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_of(item, (*path, index))
    return found


def poisoned(document: dict, path: tuple, token: bytes, how: str) -> bytes:
    """The document with `token` as the value at `path`, as an extra key beside it, or as its key."""
    document = json.loads(json.dumps(document))
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if not path:
        document = {**document, "extra": SENTINEL} if how != "value" else SENTINEL
    elif how == "value":
        parent[path[-1]] = SENTINEL
    elif how == "extra" and isinstance(parent, dict):
        parent["unvalidated_extra"] = SENTINEL
    elif how == "key" and isinstance(parent, dict):
        parent[SENTINEL] = parent.pop(path[-1])
    else:
        parent[path[-1]] = SENTINEL
    body = json.dumps(document).encode()
    if how == "key" and b'"__hostile__":' in body and not token.startswith(b'"'):
        token = b'"' + token.replace(b'"', b"") + b'"'  # a key is a string; keep the string hostile
        token = b'"\\udc00' + token[1:] if b"\\u" not in token and b"\xed" not in token else token
    return body.replace(f'"{SENTINEL}"'.encode(), token, 1)


CART = {
    "userId": "user-42",
    "name": "Maria Silva",
    "phone": "+5548999327881",
    "productId": "curso-python",
    "paymentLink": "https://pay.example.com/cart/123",
    "abandonmentId": "ab-hostile",
    "value": 279.92,
    "timestamp": "2026-11-29T10:00:00Z",
}
PAYMENT = {
    "abandonmentId": "ab-hostile",
    "paymentId": "pay-hostile",
    "status": "paid",
    "amount": "279.92",
    "productId": "curso-python",
    "linkType": "original",
}
placements = st.sampled_from(["value", "extra", "key"])
tokens = st.sampled_from(sorted(HOSTILE_TOKENS))
HOSTILE_FUZZ = hypothesis_settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@HOSTILE_FUZZ
@given(path=st.sampled_from(paths_of(CART)), token=tokens, how=placements)
def test_a_hostile_token_anywhere_in_a_cart_is_a_validation_error_and_stores_nothing(
    client, path, token, how
):
    response = post_raw(client, "/webhook/abandonment", poisoned(CART, path, HOSTILE_TOKENS[token], how))

    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert not Abandonment.objects.exists() and not WebhookEvent.objects.exists()


@HOSTILE_FUZZ
@given(path=st.sampled_from(paths_of(PAYMENT)), token=tokens, how=placements)
def test_a_hostile_token_anywhere_in_a_payment_is_a_validation_error(client, path, token, how):
    response = post_raw(client, "/webhook/payment", poisoned(PAYMENT, path, HOSTILE_TOKENS[token], how))

    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert not WebhookEvent.objects.exists()


BATCH = json.loads((settings.BASE_DIR / "tests/fixtures/whatsapp/batch.json").read_text())


def batch_wamids() -> dict[tuple, str]:
    """Each inbound message's position in the batch fixture, with its wamid."""
    found = {}
    for e, entry in enumerate(BATCH["entry"]):
        for c, change in enumerate(entry["changes"]):
            for m, message in enumerate(change["value"].get("messages", [])):
                found[("entry", e, "changes", c, "value", "messages", m)] = message["id"]
    return found


@HOSTILE_FUZZ
@given(path=st.sampled_from(paths_of(BATCH)), token=tokens, how=placements)
def test_a_hostile_token_anywhere_in_a_meta_batch_is_kept_raw_and_spares_the_other_updates(
    client, path, token, how
):
    body = poisoned(BATCH, path, HOSTILE_TOKENS[token], how)
    # Hypothesis runs every example in the one test transaction: start each from nothing.
    Message.objects.all().delete()
    WebhookEvent.objects.all().delete()

    response = post_raw(client, "/webhook/messages", body)

    assert response.status_code == 200, response.content[:300]
    [kept] = WebhookEvent.objects.filter(type="whatsapp", error__startswith="unparseable body")
    assert base64.b64decode(kept.payload["raw_base64"]) == body
    spared = {
        wamid for position, wamid in batch_wamids().items() if path[: len(position)] != position[: len(path)]
    }
    stored = set(Message.objects.filter(direction="in").values_list("whatsapp_message_id", flat=True))
    assert spared <= stored


def test_a_batch_poisoned_by_one_overflowing_number_still_stores_every_other_update(client):
    batch = json.loads(json.dumps(BATCH))
    position = next(iter(batch_wamids()))
    body = poisoned(batch, (*position, "timestamp"), b"1e400", "value")

    assert post_raw(client, "/webhook/messages", body).status_code == 200

    stored = set(Message.objects.filter(direction="in").values_list("whatsapp_message_id", flat=True))
    assert stored == set(batch_wamids().values()) - {batch_wamids()[position]}
    assert WebhookEvent.objects.filter(error__startswith="unparseable body").count() == 1


def test_money_sent_as_a_long_json_number_is_read_exactly_not_rounded_by_a_float():
    from core.http import loads

    value = loads(b'{"amount": 279.9200000000000001}')["amount"]
    assert str(value) == "279.9200000000000001"
    assert value == 279.92  # still a number for everything that reads it as one
