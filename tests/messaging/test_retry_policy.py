"""Which Graph failures are retried and which fail at once (SPEC §6): Meta's code first, HTTP second."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses

from messaging.models import Message
from messaging.tasks import backoff_seconds, send_message
from messaging.whatsapp import WhatsAppError
from recovery.models import Conversation
from tests.conftest import GRAPH_URL, graph_error, graph_ok
from tests.factories import ConversationFactory, OutboundMessageFactory, reply_in_window

pytestmark = pytest.mark.django_db

WAMID = "wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEjQ4RDE3NjQ1M0U0QTRBNkI0AA=="

# Each entry: how Graph answers (keyword arguments of `responses.add`) and the error_code stored.
TRANSIENT = {
    "http 429": ({"json": {}, "status": 429}, "http_429"),
    "http 500": ({"body": "Internal Server Error", "status": 500}, "http_500"),
    "http 503": ({"body": "Service Unavailable", "status": 503}, "http_503"),
    "unknown code, http 503": ({"json": graph_error(999001, "Temporarily down"), "status": 503}, "999001"),
    "connect timeout": ({"body": requests.ConnectTimeout("Connection to graph.test timed out")}, "network"),
    "read timeout": ({"body": requests.ReadTimeout("Read timed out")}, "network"),
    **{
        f"code {code}, http 400": ({"json": graph_error(code, "Temporary problem"), "status": 400}, str(code))
        for code in (130429, 131056, 80007, 4, 131057, 131000, 1, 2, 131016, 133004)
    },
}

PERMANENT = {
    **{
        f"code {code}": (
            {"json": graph_error(code, "Rejected", f"Details of {code}"), "status": 400},
            str(code),
        )
        for code in (100, 190, 368, 130403, 131026, 131031, 131047, 131050, 131051)
    },
    "code 131026 even with http 500": (
        {"json": graph_error(131026, "Rejected", "Details of 131026"), "status": 500},
        "131026",
    ),
    "unknown code, http 403": (
        {"json": graph_error(999002, "Rejected", "Details of 999002"), "status": 403},
        "999002",
    ),
    "http 404 without a body": ({"body": "Not Found", "status": 404}, "http_404"),
}


def first_contact() -> Message:
    """A pending first-contact template (templates go out whatever the 24 h window says)."""
    conversation = ConversationFactory(abandonment__customer__phone="+5548999327881")
    return OutboundMessageFactory(
        conversation=conversation,
        kind=Message.Kind.TEMPLATE,
        purpose=Message.Purpose.FIRST_CONTACT,
        text="",
        metadata={
            "template": {
                "name": "recovery_invitation",
                "language": "pt_BR",
                "parameters": ["Maria", "Curso de Python"],
            }
        },
    )


@pytest.fixture
def countdowns(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The countdown of every retry the send task asks Celery for."""
    seen: list[float] = []
    retry = send_message.retry

    def recording_retry(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["countdown"])
        return retry(*args, **kwargs)

    monkeypatch.setattr(send_message, "retry", recording_retry)
    return seen


@pytest.mark.parametrize(("graph_answer", "error_code"), TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_failure_is_retried_until_graph_accepts(graph, countdowns, graph_answer, error_code):
    message = reply_in_window("O link é https://pay.example.com/cart/123")
    graph.add(responses.POST, GRAPH_URL, **graph_answer)
    graph.add(responses.POST, GRAPH_URL, **graph_answer)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    send_message.delay(message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.whatsapp_message_id == WAMID
    assert message.attempts == 3
    assert message.error_code == ""
    assert len(graph.calls) == 3
    assert len(countdowns) == 2
    # Every try sends the same message.
    assert len({call.request.body for call in graph.calls}) == 1


@pytest.mark.parametrize(("graph_answer", "error_code"), TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_failure_gives_up_after_four_retries_with_the_code_stored(
    graph, countdowns, graph_answer, error_code
):
    message = reply_in_window("O link é https://pay.example.com/cart/123")
    for _ in range(5):
        graph.add(responses.POST, GRAPH_URL, **graph_answer)

    send_message.delay(message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.error_code == error_code
    assert message.error_detail
    assert message.failed_at is not None
    assert message.whatsapp_message_id is None
    assert message.attempts == 5
    assert len(graph.calls) == 5
    assert len(countdowns) == 4


def test_final_transient_failure_keeps_metas_message_and_details(graph):
    message = reply_in_window("O link é https://pay.example.com/cart/123")
    for _ in range(5):
        graph.add(
            responses.POST,
            GRAPH_URL,
            json=graph_error(
                131000, "Something went wrong", "Message failed to send due to an unknown error"
            ),
            status=500,
        )

    send_message.delay(message.pk)

    message.refresh_from_db()
    assert message.error_code == "131000"
    assert "Something went wrong" in message.error_detail
    assert "Message failed to send due to an unknown error" in message.error_detail


@pytest.mark.parametrize(("graph_answer", "error_code"), PERMANENT.values(), ids=PERMANENT.keys())
def test_permanent_failure_fails_at_once_after_one_call(graph, countdowns, graph_answer, error_code):
    message = first_contact()
    graph.add(responses.POST, GRAPH_URL, **graph_answer)

    send_message.delay(message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.error_code == error_code
    assert message.failed_at is not None
    assert message.attempts == 1
    assert len(graph.calls) == 1
    assert countdowns == []
    if "json" in graph_answer:
        assert "Rejected" in message.error_detail
        assert f"Details of {error_code}" in message.error_detail
    # The recovery never started: ops see the conversation as an error.
    message.conversation.refresh_from_db()
    assert message.conversation.status == Conversation.Status.ERROR


def test_retries_wait_about_one_two_four_and_eight_seconds(graph, countdowns):
    message = reply_in_window("O link é https://pay.example.com/cart/123")
    for _ in range(5):
        graph.add(responses.POST, GRAPH_URL, json={}, status=503)

    send_message.delay(message.pk)

    assert len(countdowns) == 4
    for wait, base in zip(countdowns, (1, 2, 4, 8), strict=True):
        assert base * 0.75 <= wait <= base * 1.25


@pytest.mark.parametrize(("retries", "base"), [(0, 1), (1, 2), (2, 4), (3, 8)])
def test_backoff_doubles_with_jitter(retries, base):
    error = WhatsAppError("HTTP 503", http_status=503)

    waits = [backoff_seconds(retries, error) for _ in range(200)]

    assert all(base * 0.75 <= wait <= base * 1.25 for wait in waits)
    # Jitter: workers retrying together spread out instead of hitting Graph at the same instant.
    assert len(set(waits)) > 100


def test_pair_rate_limit_waits_longer_than_other_transient_errors():
    pair_limit = WhatsAppError("Pair rate limit", code=131056, http_status=400)
    throughput = WhatsAppError("Throughput", code=130429, http_status=400)

    for retries in (0, 1):
        shortest_pair_wait = min(backoff_seconds(retries, pair_limit) for _ in range(200))
        longest_other_wait = max(backoff_seconds(retries, throughput) for _ in range(200))
        assert shortest_pair_wait > longest_other_wait


def test_backoff_countdowns_reach_celery_for_the_pair_rate_limit(graph, countdowns):
    message = reply_in_window("O link é https://pay.example.com/cart/123")
    graph.add(responses.POST, GRAPH_URL, json=graph_error(131056, "Pair rate limit hit"), status=400)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    send_message.delay(message.pk)

    assert len(countdowns) == 1
    assert countdowns[0] > 1.25
