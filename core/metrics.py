"""Prometheus metrics, multiprocess-safe under gunicorn and Celery (PROMETHEUS_MULTIPROC_DIR).

Counters live where the thing happens; this module only declares them, wires the Celery and
HTTP hooks, and serves /metrics to the allowed scrapers.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

WEBHOOKS = Counter(
    "sara_webhooks_received_total", "Webhooks received, by type and HTTP status.", ["type", "status"]
)
INBOUND_PROCESSED = Counter(
    "sara_inbound_processed_total", "Inbound messages processed, by outcome.", ["outcome"]
)
SENDS = Counter("sara_sends_total", "Send attempts decided, by outcome.", ["outcome"])
SEND_FAILURES = Counter("sara_send_failures_total", "Sends failed for good, by error code.", ["error_code"])
SEND_RETRIES = Counter("sara_send_retries_total", "Sends retried after a transient error.")
AI_LATENCY = Histogram(
    "sara_ai_latency_seconds",
    "Time an AI interpretation took, by outcome (ok or fallback).",
    ["outcome"],
    buckets=(0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8),
)
AI_TOKENS = Counter("sara_ai_tokens_total", "Tokens used by the AI.")
AI_TOKENS_BY_KIND = Counter(
    "sara_ai_call_tokens_total",
    "Tokens of AI calls, by kind: input, output, and input served from the provider's prompt cache.",
    ["kind"],
)
GUARDRAIL_HITS = Counter(
    "sara_guardrail_hits_total",
    "Replies whose text broke a guardrail, by rule (url, percent, amount, coupon, discount_promise).",
    ["rule"],
)
TRANSCRIPTIONS = Counter(
    "sara_transcriptions_total", "Voice messages sent for transcription, by outcome.", ["outcome"]
)
CONVERSIONS = Counter("sara_conversions_total", "Carts recovered, by link.", ["link"])
RECOVERED_VALUE = Counter("sara_recovered_value_brl_total", "Value of recovered carts, in BRL.")
HOLDOUT_CONVERSIONS = Counter(
    "sara_holdout_conversions_total", "Held-out carts paid without Sara (the comparison group)."
)
HOLDOUT_CARTS = Counter("sara_holdout_carts_total", "New carts drawn into the holdout group.")
META_COST = Counter(
    "sara_meta_cost_brl_total",
    "Meta's charge for delivered billable messages, in BRL, by pricing category (free tier aside).",
    ["category"],
)
META_BILLABLE = Counter(
    "sara_meta_billable_messages_total", "Delivered messages Meta bills, by pricing category.", ["category"]
)
MODEL_COST = Counter("sara_model_cost_brl_total", "Chat model tokens priced, in BRL, by model.", ["model"])

_WEBHOOK_TYPES = {
    "/webhook/abandonment": "abandonment",
    "/webhook/payment": "payment",
    "/webhook/messages": "whatsapp",
}


class WebhookMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        kind = _WEBHOOK_TYPES.get(request.path)
        if kind and request.method == "POST":
            WEBHOOKS.labels(kind, str(response.status_code)).inc()
        return response


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every gunicorn and Celery process writes its own files; the scrape adds them up.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        for collector in _SCRAPE_TIME_COLLECTORS:
            registry.register(collector)
        return registry
    return REGISTRY


# Gauges read at scrape time (work waiting) belong to the app that owns the rows; it hands
# them over here, since this package imports no app.
_SCRAPE_TIME_COLLECTORS: list[Collector] = []


def collector_register(collector: Collector) -> None:
    _SCRAPE_TIME_COLLECTORS.append(collector)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        REGISTRY.register(collector)


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    if any(header in request.META for header in _PROXIED):
        # A proxy on the same host connects from 127.0.0.1 for anyone on the internet: a request
        # that came through one is never "local".
        return False
    return request.META.get("REMOTE_ADDR", "") in settings.METRICS_ALLOWED_IPS


# Headers a forwarding proxy adds (nginx, Caddy, Traefik, the RFC 7239 one).
_PROXIED = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP", "HTTP_X_FORWARDED_HOST")


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse("Forbidden.", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


def connect_celery_signals() -> None:
    from celery.signals import task_postrun, task_prerun, task_retry

    started: dict[str, float] = {}

    @task_prerun.connect(weak=False)
    def _start(task_id: str = "", **_: Any) -> None:
        started[task_id] = time.monotonic()

    @task_postrun.connect(weak=False)
    def _done(task_id: str = "", task: Any = None, retval: Any = None, state: str = "", **_: Any) -> None:
        started.pop(task_id, None)
        name = getattr(task, "name", "")
        if state != "SUCCESS" or not isinstance(retval, str):
            return
        if name == "messaging.tasks.process_inbound":
            INBOUND_PROCESSED.labels(retval).inc()
        elif name == "messaging.tasks.send_message":
            SENDS.labels(retval).inc()

    @task_retry.connect(weak=False)
    def _retry(**_: Any) -> None:
        SEND_RETRIES.inc()
