"""The window sweep (SPEC §7): one follow-up to a silent customer, expiry after 72 h of silence."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import responses
from django.utils import timezone

from compliance.tasks import sweep_windows
from messaging.models import Message
from messaging.tasks import sweep_stuck
from recovery.models import Abandonment, Conversation
from tests.conftest import GRAPH_URL, abandon, at_once, first_message, graph_ok, meta_payload, template_sent
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

PHONE = "+5548999327881"
T0 = datetime.fromisoformat("2025-11-22 12:00:00+00:00")


def open_recovery(post_signed, capture, *, send: bool = True) -> Conversation:
    """A cart abandoned now; with send=False the send task is lost (as when Redis goes away)."""
    ProductFactory(product_id="curso-python", name="Curso de Python")
    return abandon(post_signed, capture, send=send, productId="curso-python", abandonmentId="ab-sweep-1")


def customer_writes(post_signed, capture, text: str) -> None:
    payload = meta_payload("text")
    message = first_message(payload)
    message["text"]["body"] = text
    message["timestamp"] = str(int(timezone.now().timestamp()))
    with capture(execute=True):
        assert post_signed("/webhook/messages", payload).status_code == 200


def sweep(capture) -> dict[str, Any]:
    with capture(execute=True):
        return sweep_windows.delay().get()


@pytest.mark.parametrize("after_hours", [20, 6])
def test_silent_customer_gets_one_followup_template_after_followup_after_hours(
    graph, settings, post_signed, capture, time_machine, after_hours
):
    settings.FOLLOWUP_AFTER_HOURS = after_hours
    time_machine.move_to(T0, tick=False)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.first"))
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.followup"))
    conversation = open_recovery(post_signed, capture)

    time_machine.move_to(T0 + timedelta(hours=after_hours) - timedelta(minutes=1), tick=False)
    assert sweep(capture)["followups"] == 0
    assert len(graph.calls) == 1

    time_machine.move_to(T0 + timedelta(hours=after_hours), tick=False)
    assert sweep(capture)["followups"] == 1

    assert json.loads(graph.calls[1].request.body) == template_sent(
        settings.WHATSAPP_FOLLOWUP_TEMPLATE_NAME, to=PHONE
    )
    followup = conversation.messages.get(purpose=Message.Purpose.FOLLOWUP)
    assert (followup.status, followup.whatsapp_message_id) == (Message.Status.SENT, "wamid.followup")
    conversation.refresh_from_db()
    assert conversation.followup_sent
    assert conversation.status == Conversation.Status.AWAITING_RESPONSE

    time_machine.move_to(T0 + timedelta(hours=after_hours + 1), tick=False)
    assert sweep(capture)["followups"] == 0
    assert len(graph.calls) == 2


def test_followup_counts_from_when_the_first_template_was_sent_not_queued(
    outbox, post_signed, capture, time_machine
):
    time_machine.move_to(T0, tick=False)
    open_recovery(post_signed, capture, send=False)
    time_machine.move_to(T0 + timedelta(hours=3), tick=False)
    sweep_stuck.delay()
    assert len(outbox) == 1

    time_machine.move_to(T0 + timedelta(hours=22), tick=False)
    assert sweep(capture)["followups"] == 0

    time_machine.move_to(T0 + timedelta(hours=23), tick=False)
    assert sweep(capture)["followups"] == 1
    assert [sent.template_name for _, sent in outbox] == ["recovery_invitation", "recovery_followup"]


def test_customer_who_answered_gets_no_followup(outbox, post_signed, capture, time_machine):
    time_machine.move_to(T0, tick=False)
    conversation = open_recovery(post_signed, capture)
    time_machine.move_to(T0 + timedelta(hours=1), tick=False)
    customer_writes(post_signed, capture, "Quanto custa o frete?")
    sent_before = len(outbox)

    time_machine.move_to(T0 + timedelta(hours=21), tick=False)
    assert sweep(capture)["followups"] == 0

    assert len(outbox) == sent_before
    assert not conversation.messages.filter(purpose=Message.Purpose.FOLLOWUP).exists()
    conversation.refresh_from_db()
    assert not conversation.followup_sent


def test_first_template_never_sent_means_no_followup(outbox, post_signed, capture, time_machine):
    time_machine.move_to(T0, tick=False)
    conversation = open_recovery(post_signed, capture, send=False)

    time_machine.move_to(T0 + timedelta(hours=21), tick=False)
    assert sweep(capture)["followups"] == 0
    assert not conversation.messages.filter(purpose=Message.Purpose.FOLLOWUP).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_one_followup(outbox, post_signed, time_machine):
    time_machine.move_to(T0, tick=False)
    # Transactional test: on_commit runs for real, so the first template is sent here.
    conversation = open_recovery(post_signed, lambda execute: contextlib.nullcontext())
    assert len(outbox) == 1
    time_machine.move_to(T0 + timedelta(hours=21), tick=False)
    results = at_once([lambda: sweep_windows.apply().result] * 3)

    assert len(results) == 3
    assert sum(result["followups"] for result in results) == 1
    assert conversation.messages.filter(purpose=Message.Purpose.FOLLOWUP).count() == 1
    assert [sent.template_name for _, sent in outbox] == ["recovery_invitation", "recovery_followup"]


def test_conversation_silent_for_72_hours_is_closed_and_its_cart_expired(
    outbox, post_signed, capture, time_machine
):
    time_machine.move_to(T0, tick=False)
    conversation = open_recovery(post_signed, capture)
    time_machine.move_to(T0 + timedelta(hours=1), tick=False)
    customer_writes(post_signed, capture, "Vou pensar")

    time_machine.move_to(T0 + timedelta(hours=1 + 72) - timedelta(minutes=1), tick=False)
    assert sweep(capture)["expired"] == 0
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ACTIVE

    time_machine.move_to(T0 + timedelta(hours=1 + 72, minutes=1), tick=False)
    assert sweep(capture)["expired"] == 1

    conversation.refresh_from_db()
    assert (conversation.status, conversation.close_reason) == (Conversation.Status.CLOSED, "expired")
    assert conversation.closed_at == timezone.now()
    assert conversation.abandonment.status == Abandonment.Status.EXPIRED


def test_customer_who_never_answered_expires_72_hours_after_the_cart_arrived(
    outbox, post_signed, capture, time_machine
):
    time_machine.move_to(T0, tick=False)
    conversation = open_recovery(post_signed, capture)

    time_machine.move_to(T0 + timedelta(hours=72, minutes=1), tick=False)
    sweep(capture)

    conversation.refresh_from_db()
    assert (conversation.status, conversation.close_reason) == (Conversation.Status.CLOSED, "expired")
    assert conversation.abandonment.status == Abandonment.Status.EXPIRED


def test_converted_conversation_is_left_alone_by_the_expiry(outbox, post_signed, capture, time_machine):
    time_machine.move_to(T0, tick=False)
    conversation = open_recovery(post_signed, capture)
    with capture(execute=True):
        post_signed(
            "/webhook/payment",
            {
                "abandonmentId": "ab-sweep-1",
                "paymentId": "pay-1",
                "status": "paid",
                "amount": "297.00",
                "linkType": "original",
            },
        )

    time_machine.move_to(T0 + timedelta(hours=100), tick=False)
    assert sweep(capture) == {"followups": 0, "expired": 0}

    conversation.refresh_from_db()
    assert conversation.close_reason == "converted"
    assert conversation.abandonment.status == Abandonment.Status.CONVERTED


def test_a_conversation_waiting_for_a_person_gets_no_followup_and_does_not_expire(
    outbox, post_signed, capture, time_machine
):
    time_machine.move_to(T0, tick=False)
    conversation = open_recovery(post_signed, capture)
    Conversation.objects.filter(pk=conversation.pk).update(
        needs_human=True, handoff_reason=Conversation.HandoffReason.MANUAL, handoff_at=T0
    )

    time_machine.move_to(T0 + timedelta(hours=80), tick=False)
    assert sweep(capture) == {"followups": 0, "expired": 0}

    assert [sent.template_name for _, sent in outbox] == ["recovery_invitation"]
    conversation.refresh_from_db()
    assert conversation.is_open
