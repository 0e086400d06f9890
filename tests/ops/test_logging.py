"""Logs: JSON lines with a trace id from the webhook into its tasks; no phone, secret or body."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
from django.conf import settings

from core.logging import JsonFormatter, TraceIdFilter, mask_phone
from tests.conftest import first_message, meta_payload

PHONE = "+5548999327881"
SECRET_TEXT = "Minha senha do banco é abacaxi-roxo, quanto fica com desconto?"


@pytest.fixture
def log_lines():
    """Every INFO+ record, formatted exactly as production writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TraceIdFilter())
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    root.removeHandler(handler)
    root.setLevel(previous)


def play_a_recovery(post_signed, headers: dict[str, str] | None = None) -> None:
    cart = {
        "userId": "u-1",
        "name": "Maria Silva",
        "phone": PHONE,
        "productId": "nope",
        "paymentLink": "https://pay.example.com/cart/1",
        "abandonmentId": "ab-logs",
        "value": "620.00",
    }
    assert post_signed("/webhook/abandonment", cart, headers=headers).status_code == 200
    payload = meta_payload("text")
    message = first_message(payload)
    message["timestamp"] = str(int(time.time()))
    message["text"]["body"] = SECRET_TEXT
    assert post_signed("/webhook/messages", payload, headers=headers).status_code == 200
    payment = {"abandonmentId": "ab-logs", "paymentId": "pay-logs", "status": "paid", "amount": "620.00"}
    assert post_signed("/webhook/payment", payment, headers=headers).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_whole_recovery_logs_no_phone_no_secret_and_no_message_body(post_signed, log_lines, outbox):
    play_a_recovery(post_signed)
    assert len(outbox) == 3, "the recovery did not run end to end"
    lines = log_lines()
    assert lines, "nothing was logged"
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    for needle in (PHONE, PHONE.lstrip("+"), "554899327881", "999327881"):
        assert needle not in text
    for secret in (settings.WHATSAPP_APP_SECRET, settings.PAYMENT_WEBHOOK_SECRET, settings.SECRET_KEY):
        assert secret not in text
    assert "abacaxi-roxo" not in text and "desconto?" not in text
    assert all(line["level"] in {"INFO", "WARNING", "ERROR"} and line["event"] for line in lines)


@pytest.mark.django_db(transaction=True)
def test_one_trace_id_follows_a_webhook_into_the_tasks_it_causes(post_signed, log_lines, outbox):
    play_a_recovery(post_signed, headers={"HTTP_X_REQUEST_ID": "trace-from-checkout-42"})
    sent = [line for line in log_lines() if line["event"] == "message sent"]
    assert len(sent) == 3
    assert {line.get("trace_id") for line in sent} == {"trace-from-checkout-42"}


@pytest.mark.django_db
def test_the_trace_id_is_returned_and_put_in_error_bodies(client):
    response = client.post(
        "/webhook/abandonment", b"{}", content_type="application/json", HTTP_X_REQUEST_ID="abc-123"
    )
    assert response.status_code == 403
    assert response["X-Request-ID"] == "abc-123"
    assert response.json()["error"]["traceId"] == "abc-123"


def test_phones_are_masked_in_the_documented_shape():
    assert mask_phone("+5548999327881") == "+55XXXXXXX881"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent to %s", ("+5548999327881",), None)
    record.recipient = "5548999327881"
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "sent to +55XXXXXXX881"
    assert line["recipient"] == "+55XXXXXXX881"
