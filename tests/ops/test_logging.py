"""Logs: JSON lines with a trace id from the webhook into its tasks; no phone, secret or body."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
from django.conf import settings

from core.logging import JsonFormatter, TraceIdFilter, mask_phone
from messaging.models import Message
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


@pytest.mark.postgres  # PostgreSQL's jsonb error and its CONTEXT line are what is tried here
@pytest.mark.django_db(transaction=True)
def test_a_database_error_on_an_inbound_message_logs_no_message_text(post_signed, log_lines, monkeypatch):
    from django.db import connection

    from messaging import handlers

    def store_badly(*, message_id: int, **_: object) -> str:
        # The failure the issue saw: jsonb refusing a value, PostgreSQL quoting the row's JSON
        # (the customer's text among it) in its CONTEXT line.
        text = Message.objects.get(pk=message_id).text
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s::jsonb", [json.dumps({"text": {"body": text}}) + "\\u0000"])
        return "unreachable"

    monkeypatch.setattr(handlers.inbound_process, "function", store_badly)
    payload = meta_payload("text")
    first_message(payload)["text"]["body"] = SECRET_TEXT

    assert post_signed("/webhook/messages", payload).status_code == 200

    lines = log_lines()
    failures = [line for line in lines if "exc" in line]
    assert failures, "the database error was not logged"
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    assert "abacaxi-roxo" not in text
    assert "Minha senha" not in text
    assert "DataError" in text or "SyntaxError" in text or "InvalidTextRepresentation" in text


def test_a_task_id_is_never_masked_as_a_phone():
    task_id = "d9ee7bab-1c2d-4e5f-8a9b-961234567347"
    record = logging.LogRecord(
        "celery.app.trace",
        logging.INFO,
        __file__,
        1,
        "Task %s[%s] succeeded",
        ("send_message", task_id),
        None,
    )
    record.task_id = task_id
    line = json.loads(JsonFormatter().format(record))
    assert task_id in line["event"]
    assert line["task_id"] == task_id


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "body", "signed", "status"),
    [
        ("/webhook/abandonment", b"{}", True, 400),
        ("/webhook/abandonment", b"{}", False, 403),
        (
            "/webhook/payment",
            b'{"abandonmentId": "nope", "paymentId": "p", "status": "paid", "amount": "1"}',
            True,
            404,
        ),
    ],
    ids=["400", "403", "404"],
)
def test_a_refused_request_is_one_log_line(client, log_lines, url, body, signed, status):
    from core.http import signature_of

    headers = (
        {"HTTP_X_HUB_SIGNATURE_256": signature_of(settings.PAYMENT_WEBHOOK_SECRET, body)} if signed else {}
    )

    response = client.post(url, body, content_type="application/json", **headers)

    assert response.status_code == status
    assert [line["status_code"] for line in log_lines()] == [status]
    assert logging.getLogger("django").handlers == []


def test_the_embedded_mode_queues_work_without_kombus_no_hostname_warning():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    script = (
        "import django; django.setup();"
        "from config.celery import app;"
        "conn = app.connection_for_write(); conn.info(); print(app.conf.broker_url)"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script],
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip().startswith("memory://")
    assert "No hostname was supplied" not in done.stdout + done.stderr
