"""Meta's delivery statuses (SPEC §4.3): forward only, failed keeps its error, early statuses wait."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from responses import matchers

from messaging.models import Message, StatusUpdate
from messaging.services.inbound import pending_statuses_apply, status_apply
from messaging.tasks import send_message, sweep_stuck
from messaging.whatsapp.events import StatusEvent
from tests.conftest import GRAPH_URL, first_status, graph_ok, meta_payload, text_body
from tests.factories import ConversationFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db

WEBHOOK = "/webhook/messages"
WAMID = "wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEjQ4RDE3NjQ1M0U0QTRBNkI0AA=="  # the one in status_*.json
MARIA = "+5548999327881"
NOW = datetime(2025, 11, 22, 14, 0, tzinfo=UTC)
WINDOW_DETAIL = (
    "Re-engagement message — Message failed to send because more than 24 hours have passed "
    "since the customer last replied to this number."
)


def at(status: str) -> datetime:
    """The timestamp recorded in status_<status>.json."""
    return datetime.fromtimestamp(int(first_status(meta_payload(f"status_{status}"))["timestamp"]), UTC)


@pytest.fixture
def deliver(post_signed):
    """POST the recorded status_<name>.json bodies to the webhook, in the order given."""

    def post(*names: str) -> None:
        for name in names:
            assert post_signed(WEBHOOK, meta_payload(f"status_{name}")).status_code == 200

    return post


def outbound(status: str = Message.Status.SENT, **fields) -> Message:
    return OutboundMessageFactory(whatsapp_message_id=WAMID, status=status, **fields)


def reloaded(message: Message) -> Message:
    message.refresh_from_db()
    return message


@pytest.mark.parametrize(
    ("name", "before"),
    [("sent", "pending"), ("delivered", "sent"), ("read", "delivered"), ("failed", "sent")],
)
def test_a_status_moves_the_outbound_message_with_that_wamid(deliver, name, before):
    message = outbound(before)
    other = OutboundMessageFactory(whatsapp_message_id="wamid.other", status=before)

    deliver(name)

    message = reloaded(message)
    assert message.status == name
    assert getattr(message, f"{name}_at") == at(name)
    assert reloaded(other).status == before


def test_statuses_out_of_order_end_at_read(deliver):
    message = outbound()

    deliver("read", "delivered", "sent")

    message = reloaded(message)
    assert message.status == Message.Status.READ
    assert message.read_at == at("read")


def test_a_repeated_status_keeps_its_first_timestamp(deliver, post_signed):
    message = outbound()
    deliver("delivered")
    later = meta_payload("status_delivered")
    first_status(later)["timestamp"] = str(int(at("delivered").timestamp()) + 3600)

    post_signed(WEBHOOK, later)

    assert reloaded(message).delivered_at == at("delivered")


def test_failed_over_sent_keeps_the_error_code_and_detail(deliver):
    message = outbound()

    deliver("failed")

    message = reloaded(message)
    assert (message.status, message.error_code, message.error_detail) == ("failed", "131047", WINDOW_DETAIL)
    assert message.failed_at == at("failed")


def test_a_sent_after_failed_is_ignored(deliver):
    message = outbound()

    deliver("failed", "sent")

    assert (reloaded(message).status, reloaded(message).error_code) == ("failed", "131047")


def test_a_delivered_after_failed_overrides_it(deliver):
    message = outbound()

    deliver("failed", "delivered")

    message = reloaded(message)
    assert message.status == Message.Status.DELIVERED
    assert message.delivered_at == at("delivered")


def test_a_failed_after_delivered_is_ignored(deliver):
    message = outbound()

    deliver("delivered", "failed")

    message = reloaded(message)
    assert (message.status, message.error_code, message.failed_at) == ("delivered", "", None)


def test_a_status_for_an_inbound_message_changes_nothing(deliver):
    message = OutboundMessageFactory(
        direction=Message.Direction.IN, whatsapp_message_id=WAMID, status=Message.Status.PROCESSED
    )

    deliver("read")

    assert reloaded(message).status == Message.Status.PROCESSED
    assert not StatusUpdate.objects.exists()


def test_a_status_for_an_unknown_wamid_is_kept(deliver):
    deliver("delivered", "failed", "delivered")

    assert sorted(StatusUpdate.objects.values_list("whatsapp_message_id", "status")) == [
        (WAMID, "delivered"),
        (WAMID, "failed"),
    ]
    assert StatusUpdate.objects.get(status="failed").errors[0]["code"] == 131047


@pytest.fixture
def reply_to_maria():
    """A pending free-form reply to Maria, who wrote an hour ago (inside the 24 h window)."""
    with time_machine.travel(NOW, tick=False):
        conversation = ConversationFactory(
            abandonment__customer__phone=MARIA, status="active", last_user_message_at=NOW - timedelta(hours=1)
        )
        yield OutboundMessageFactory(conversation=conversation, text="Segue o link de pagamento.")


@pytest.mark.parametrize(
    ("early", "final"),
    [
        (["read", "delivered"], "read"),
        (["delivered"], "delivered"),
        (["failed"], "failed"),
        (["sent"], "sent"),
    ],
)
def test_statuses_that_arrive_before_the_send_stores_the_wamid_are_applied_by_the_send(
    deliver, graph, reply_to_maria, early, final
):
    deliver(*early)
    assert StatusUpdate.objects.count() == len(early)
    graph.post(
        GRAPH_URL,
        json=graph_ok(WAMID, to=MARIA),
        match=[matchers.json_params_matcher(text_body(MARIA, "Segue o link de pagamento."))],
    )

    send_message.delay(reply_to_maria.pk)

    message = reloaded(reply_to_maria)
    assert (message.whatsapp_message_id, message.status) == (WAMID, final)
    for name in set(early) - {"sent"}:  # sent_at is when Graph accepted the send
        assert getattr(message, f"{name}_at") == at(name)
    if final == "failed":
        assert (message.error_code, message.error_detail) == ("131047", WINDOW_DETAIL)
    assert not StatusUpdate.objects.exists()


def test_a_status_kept_while_the_send_was_committing_is_applied_by_the_sweep(deliver, reply_to_maria):
    deliver("delivered")
    with time_machine.travel(NOW + timedelta(seconds=1), tick=False):
        sweep_stuck.delay()
    assert StatusUpdate.objects.count() == 1  # the wamid is still unknown: it waits

    # The send commits its wamid after having looked for early statuses (the race).
    Message.objects.filter(pk=reply_to_maria.pk).update(whatsapp_message_id=WAMID, status=Message.Status.SENT)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        sweep_stuck.delay()

    message = reloaded(reply_to_maria)
    assert (message.status, message.delivered_at) == ("delivered", at("delivered"))
    assert not StatusUpdate.objects.exists()


# --- the rule, for any sequence: read > delivered > failed > sent > pending ---

FAILED_ERRORS = first_status(meta_payload("status_failed"))["errors"]
sequences = st.lists(st.sampled_from(["sent", "delivered", "read", "failed"]), max_size=10)


def highest_reached(statuses: list[str], start: str) -> str:
    """Failed counts only if neither delivered nor read was seen; sent after failed changes nothing."""
    for status in ("read", "delivered", "failed", "sent"):
        if status in statuses:
            return status
    return start


def events(wamid: str, statuses: list[str]) -> list[StatusEvent]:
    return [
        StatusEvent(
            wamid=wamid,
            status=status,
            timestamp=NOW + timedelta(seconds=n),
            errors=json.loads(json.dumps(FAILED_ERRORS)) if status == "failed" else [],
        )
        for n, status in enumerate(statuses)
    ]


def assert_reached(message: Message, expected: str) -> None:
    message = reloaded(message)
    assert message.status == expected
    if expected == "failed":
        assert (message.error_code, message.error_detail) == ("131047", WINDOW_DETAIL)
    if expected != "pending":
        assert getattr(message, f"{expected}_at") is not None


@pytest.fixture
def conversation():
    return ConversationFactory()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statuses=sequences)
def test_any_sequence_of_statuses_ends_at_the_highest_reached(conversation, statuses):
    wamid = f"wamid.{uuid.uuid4().hex}"
    message = OutboundMessageFactory(conversation=conversation, whatsapp_message_id=wamid, status="pending")

    for event in events(wamid, statuses):
        status_apply(event)

    assert_reached(message, highest_reached(statuses, start="pending"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statuses=sequences)
def test_any_sequence_of_statuses_kept_before_the_send_ends_at_the_highest_reached(conversation, statuses):
    wamid = f"wamid.{uuid.uuid4().hex}"
    for event in events(wamid, statuses):
        status_apply(event)  # the wamid is not stored yet: every status waits
    message = OutboundMessageFactory(
        conversation=conversation, whatsapp_message_id=wamid, status="sent", sent_at=NOW
    )

    pending_statuses_apply(wamid=wamid)

    assert_reached(message, highest_reached(statuses, start="sent"))
    assert not StatusUpdate.objects.filter(whatsapp_message_id=wamid).exists()


@pytest.mark.django_db
def test_statuses_for_unknown_messages_are_purged_after_metas_retry_horizon():
    start = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        StatusUpdate.objects.create(whatsapp_message_id="wamid.never-ours", status="delivered")
    with time_machine.travel(start + timedelta(days=6, hours=23), tick=False):
        StatusUpdate.objects.create(whatsapp_message_id="wamid.recent", status="read")
        sweep_stuck.apply()
        assert StatusUpdate.objects.count() == 2  # Meta may still send the message's own id
    with time_machine.travel(start + timedelta(days=7, minutes=1), tick=False):
        assert sweep_stuck.apply().get()["statuses_purged"] == 1

    assert list(StatusUpdate.objects.values_list("whatsapp_message_id", flat=True)) == ["wamid.recent"]
