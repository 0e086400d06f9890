"""A send that fails for good is reported to Sentry (when configured), without personal data."""

from __future__ import annotations

import json

import pytest
import sentry_sdk
from sentry_sdk.transport import Transport

from messaging.models import Message
from messaging.tasks import send_message
from tests.conftest import GRAPH_URL, graph_error
from tests.factories import OutboundMessageFactory

pytestmark = pytest.mark.django_db


class RecordingTransport(Transport):
    def __init__(self, options=None) -> None:
        super().__init__(options)
        self.envelopes: list = []

    def capture_envelope(self, envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict]:
        return [item.payload.json for env in self.envelopes for item in env.items if item.type == "event"]


@pytest.fixture
def sentry():
    transport = RecordingTransport()
    sentry_sdk.init(
        dsn="https://key@sentry.example.com/1", transport=transport, data_collection={"user_info": False}
    )
    yield transport
    sentry_sdk.init()  # back to a disabled client


def first_template() -> Message:
    return OutboundMessageFactory(
        kind=Message.Kind.TEMPLATE,
        purpose=Message.Purpose.FIRST_CONTACT,
        metadata={
            "template": {"name": "recovery_invitation", "language": "pt_BR", "parameters": ["Maria", "Curso"]}
        },
    )


def test_a_permanent_send_failure_is_reported_once_with_its_code(graph, sentry):
    message = first_template()
    graph.post(
        GRAPH_URL, status=400, json=graph_error(131026, "Message undeliverable", "Receiver is incapable")
    )
    send_message.delay(message.pk)
    sentry_sdk.flush()

    [event] = sentry.events()
    assert event["tags"]["error_code"] == "131026"
    assert "131026" in event["message"]
    assert message.conversation.customer.phone not in json.dumps(event)


def test_a_retried_send_that_finally_succeeds_reports_nothing(graph, sentry):
    message = first_template()
    graph.post(GRAPH_URL, status=503, json={})
    graph.post(GRAPH_URL, status=200, json={"messages": [{"id": "wamid.ok"}]})
    send_message.delay(message.pk)
    sentry_sdk.flush()
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert sentry.events() == []
