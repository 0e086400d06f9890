"""Sending through Graph (SPEC §6): the exact request, the stored result, one send per message."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from django.utils import timezone

from messaging.models import Message
from messaging.services.ops import failed_sends_retry
from messaging.services.outbound import SendOutcome
from messaging.tasks import send_message
from recovery.models import Conversation
from tests.conftest import GRAPH_URL, abandonment_body, at_once, graph_error, graph_ok, template_sent
from tests.factories import ProductFactory, reply_in_window

pytestmark = pytest.mark.django_db

WAMID = "wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEjQ4RDE3NjQ1M0U0QTRBNkI0AA=="


def sent_json(graph: responses.RequestsMock, index: int = 0) -> dict[str, Any]:
    return json.loads(graph.calls[index].request.body)


def test_first_contact_template_goes_to_graph_as_the_approved_template_with_body_parameters(
    graph, post_signed, django_capture_on_commit_callbacks
):
    ProductFactory(product_id="curso-python", name="Curso de Python")
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed("/webhook/abandonment", abandonment_body())

    assert response.status_code == 200
    assert sent_json(graph) == template_sent("recovery_invitation")


def test_send_posts_to_the_versioned_phone_number_url_with_the_bearer_token(graph):
    message = reply_in_window()
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    send_message.delay(message.pk)

    request = graph.calls[0].request
    assert request.url == "https://graph.test/v21.0/106540352242922/messages"
    assert request.headers["Authorization"] == "Bearer test-token"
    assert request.headers["Content-Type"] == "application/json"


def test_text_reply_goes_to_graph_as_text_with_link_preview(graph):
    message = reply_in_window("Claro! Pague aqui: https://pay.example.com/cart/123")
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    send_message.delay(message.pk)

    assert sent_json(graph) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+5548999327881",
        "type": "text",
        "text": {"preview_url": True, "body": "Claro! Pague aqui: https://pay.example.com/cart/123"},
    }


def test_text_longer_than_whatsapp_allows_is_cut_to_4096_characters(graph):
    message = reply_in_window("a" * 5000)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    send_message.delay(message.pk)

    assert sent_json(graph)["text"]["body"] == "a" * 4096


def test_accepted_send_stores_the_wamid_and_marks_the_message_sent(graph, time_machine):
    time_machine.move_to("2025-11-22 15:00:00+00:00", tick=False)
    message = reply_in_window()
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    outcome = send_message.delay(message.pk).get()

    message.refresh_from_db()
    assert outcome == SendOutcome.SENT
    assert message.whatsapp_message_id == WAMID
    assert message.status == Message.Status.SENT
    assert message.sent_at == timezone.now()
    assert message.attempts == 1
    assert message.claimed_at is None


def test_running_the_send_task_twice_calls_graph_once(graph):
    message = reply_in_window()
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    first = send_message.delay(message.pk).get()
    second = send_message.delay(message.pk).get()

    assert (first, second) == (SendOutcome.SENT, SendOutcome.SKIPPED)
    assert len(graph.calls) == 1


def test_a_message_that_already_has_a_wamid_is_never_sent_again(graph):
    message = reply_in_window()
    # Pending yet carrying a wamid: Meta already accepted it, whatever the status says.
    Message.objects.filter(pk=message.pk).update(whatsapp_message_id=WAMID)

    assert send_message.delay(message.pk).get() == SendOutcome.SKIPPED
    assert len(graph.calls) == 0


def test_ops_retry_of_a_message_already_sent_sends_nothing(graph, django_capture_on_commit_callbacks):
    message = reply_in_window()
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))
    send_message.delay(message.pk)
    message.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True) as queued:
        retried = failed_sends_retry(message_ids=[message.pk])

    assert (retried.queued, retried.accepted, queued) == ([], [message.pk], [])
    assert len(graph.calls) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_the_same_message_send_it_once(graph):
    message = reply_in_window()
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))
    racers = 4

    outcomes = at_once([lambda: send_message.apply(args=[message.pk]).result] * racers)

    assert sorted(outcomes) == [SendOutcome.SENT] + [SendOutcome.SKIPPED] * (racers - 1)
    assert len(graph.calls) == 1
    message.refresh_from_db()
    assert message.whatsapp_message_id == WAMID


def test_meta_outside_window_error_on_a_text_fails_it_as_window_closed(graph):
    message = reply_in_window()
    graph.add(
        responses.POST,
        GRAPH_URL,
        json=graph_error(131047, "Re-engagement message", "More than 24 hours have passed"),
        status=400,
    )

    send_message.delay(message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.error_code == "window_closed"
    assert "More than 24 hours have passed" in message.error_detail
    assert message.failed_at is not None
    assert len(graph.calls) == 1


def failed_after_five_tries(graph, code: int, text: str, *, status: int) -> Message:
    """A reply Graph refused with a transient error on every try, until its retries ran out."""
    message = reply_in_window()
    for _ in range(5):
        graph.add(responses.POST, GRAPH_URL, json=graph_error(code, text), status=status)
    send_message.delay(message.pk)
    message.refresh_from_db()
    return message


def test_ops_retry_of_a_text_whose_window_has_since_closed_stays_failed_without_calling_graph(
    graph, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to("2025-11-22 15:00:00+00:00", tick=False)
    message = failed_after_five_tries(graph, 131000, "Something went wrong", status=500)
    assert (message.status, message.error_code) == (Message.Status.FAILED, "131000")

    time_machine.move_to("2025-11-23 15:00:00+00:00", tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        retried = failed_sends_retry(message_ids=[message.pk])

    message.refresh_from_db()
    assert retried.queued == [message.pk]
    assert (message.status, message.error_code) == (Message.Status.FAILED, "window_closed")
    assert len(graph.calls) == 5


def test_ops_retry_of_a_transient_failure_sends_it_once_graph_recovers(
    graph, django_capture_on_commit_callbacks
):
    message = failed_after_five_tries(graph, 130429, "Rate limit hit", status=400)
    assert (message.status, message.error_code) == (Message.Status.FAILED, "130429")

    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))
    with django_capture_on_commit_callbacks(execute=True):
        failed_sends_retry(message_ids=[message.pk])

    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.whatsapp_message_id == WAMID
    assert message.error_code == ""
    assert message.failed_at is None
    assert len(graph.calls) == 6


def test_console_backend_records_the_send_without_leaving_the_machine(outbox):
    message = reply_in_window("Oi Maria!")

    send_message.delay(message.pk)

    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    [(wamid, sent)] = outbox
    assert message.whatsapp_message_id == wamid
    assert (sent.to, sent.text) == ("+5548999327881", "Oi Maria!")


def test_ops_retry_that_delivers_a_failed_first_contact_reopens_the_recovery(
    graph, post_signed, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to("2025-11-22 12:00:00+00:00", tick=False)
    for _ in range(5):
        graph.add(responses.POST, GRAPH_URL, json=graph_error(131000, "Something went wrong"), status=500)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed("/webhook/abandonment", abandonment_body())
    conversation = Conversation.objects.get(pk=response.json()["conversationId"])
    template = conversation.messages.get()
    assert conversation.status == Conversation.Status.ERROR

    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))
    with django_capture_on_commit_callbacks(execute=True):
        failed_sends_retry(message_ids=[template.pk])
    template.refresh_from_db()
    assert template.status == Message.Status.SENT

    conversation.refresh_from_db()
    # Sent after all: the customer is now awaiting a reply like any other, follow-up included.
    assert conversation.status == Conversation.Status.AWAITING_RESPONSE
