"""Health, readiness and metrics: what an operator's probes and scrapers see (SPEC §9)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import first_message, meta_payload

CART = {
    "userId": "u-1",
    "name": "Maria Silva",
    "phone": "+5548999327881",
    "productId": "nope",
    "paymentLink": "https://pay.example.com/cart/1",
    "abandonmentId": "ab-metrics",
    "value": "150.00",
}


def test_health_answers_without_touching_the_database(client):
    # No django_db mark: pytest-django makes any database access here an error.
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_checks_the_database_and_names_redis_when_it_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("down")


@pytest.mark.django_db
@pytest.mark.redis
def test_ready_is_ok_when_database_and_redis_answer(client):
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_metrics_are_refused_to_an_address_outside_the_allow_list(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.9.9.9"]
    assert client.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_metrics_with_a_token_need_the_token(client, settings):
    settings.METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        metric, _, value = line.rpartition(" ")
        head, _, rest = metric.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if head == name and got == want:
            return float(value)
    return 0.0


@pytest.mark.django_db(transaction=True)
def test_metrics_count_webhooks_processing_sends_and_recovered_value(client, post_signed, outbox):
    before = client.get("/metrics").content.decode()
    assert post_signed("/webhook/abandonment", CART).status_code == 200
    payload = meta_payload("text")
    first_message(payload)["timestamp"] = str(int(time.time()))
    assert post_signed("/webhook/messages", payload).status_code == 200
    payment = {"abandonmentId": "ab-metrics", "paymentId": "pay-m", "status": "paid", "amount": "150.00"}
    assert post_signed("/webhook/payment", payment).status_code == 200
    assert post_signed("/webhook/payment", b"{", secret="wrong").status_code == 403
    after = client.get("/metrics").content.decode()

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("sara_webhooks_received_total", type="abandonment", status="200") == 1
    assert grew("sara_webhooks_received_total", type="whatsapp", status="200") == 1
    assert grew("sara_webhooks_received_total", type="payment", status="200") == 1
    assert grew("sara_webhooks_received_total", type="payment", status="403") == 1
    assert grew("sara_inbound_processed_total", outcome="replied") == 1
    assert grew("sara_sends_total", outcome="sent") == len(outbox) == 3
    assert grew("sara_conversions_total", link="original") == 1
    assert grew("sara_recovered_value_brl_total") == 150.0
    assert "sara_work_waiting" in after
