"""Raw webhook payloads are purged after SARA_RAW_RETENTION_DAYS (SPEC §14), by the beat task."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings

from messaging.models import Message, WebhookEvent
from messaging.tasks import purge_raw_payloads
from tests.conftest import first_message, meta_payload

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 11, 3, 14, 0, tzinfo=UTC)
CART = {
    "userId": "u-42",
    "name": "Maria Silva",
    "phone": "+5548999327881",
    "productId": "curso-python",
    "paymentLink": "https://pay.example.com/cart/42",
    "abandonmentId": "ab-42",
    "value": "297.00",
}


def _batch(size: int) -> dict:
    body = meta_payload("text")
    value = body["entry"][0]["changes"][0]["value"]
    template = first_message(body)
    value["messages"] = [
        {
            **template,
            "from": f"55119876{n:05d}",
            "id": f"wamid.ret.{n}",
            "timestamp": str(int(T0.timestamp())),
        }
        for n in range(size)
    ]
    return body


def test_the_beat_schedule_runs_the_purge():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "messaging.tasks.purge_raw_payloads" in tasks


def test_raw_payloads_go_after_the_retention_and_work_still_to_do_keeps_its_own(
    post_signed, django_capture_on_commit_callbacks, settings
):
    settings.SARA_RAW_RETENTION_DAYS = 30
    settings.SARA_INLINE_BATCH_LIMIT = 50
    with time_machine.travel(T0, tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert post_signed("/webhook/abandonment", CART).status_code == 200
            assert post_signed("/webhook/messages", _batch(60)).status_code == 200
        # A payment for a cart that has not arrived: kept, unprocessed, until its cart comes.
        early = post_signed(
            "/webhook/payment",
            {"abandonmentId": "ab-99", "paymentId": "pay-99", "status": "paid", "amount": "10.00"},
        )
        assert early.status_code == 404

    with time_machine.travel(T0 + timedelta(days=29, hours=23), tick=False):
        assert purge_raw_payloads() == {"events": 0, "messages": 0}
    assert "Maria Silva" in json.dumps(list(WebhookEvent.objects.values_list("payload", flat=True)))

    with time_machine.travel(T0 + timedelta(days=30, minutes=1), tick=False):
        counts = purge_raw_payloads()
    assert counts["events"] == 2  # the checkout's and Meta's batch
    assert counts["messages"] == 60
    kept = WebhookEvent.objects.get(type=WebhookEvent.Type.PAYMENT)
    assert kept.payload["paymentId"] == "pay-99", "a payment still waiting for its cart lost its payload"
    others = WebhookEvent.objects.exclude(pk=kept.pk)
    assert {json.dumps(p) for p in others.values_list("payload", flat=True)} == {'{"purged": true}'}
    assert not Message.objects.filter(metadata__has_key="whatsapp").exists()
    assert Message.objects.filter(direction="in").count() == 60  # the messages themselves stay
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        assert purge_raw_payloads() == {"events": 0, "messages": 0}
