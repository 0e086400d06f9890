"""The gate runs after the send slot, on fresh rows (SPEC §6), and an opt-out cancels what is queued."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.utils import timezone

from messaging import ratelimit
from messaging.models import Message
from messaging.services.outbound import SendOutcome, send_message
from recovery.lifecycle import optout_register
from recovery.models import Conversation
from tests.conftest import GRAPH_URL, graph_ok
from tests.factories import OutboundMessageFactory, reply_in_window

pytestmark = pytest.mark.django_db


def while_waiting_for_the_slot(monkeypatch: pytest.MonkeyPatch, happen: Any) -> None:
    """`happen` runs as the limiter grants the slot: after the first look, before the request."""
    reserve = ratelimit.reserve

    def reserve_then(*args: Any, **kwargs: Any) -> float:
        wait = reserve(*args, **kwargs)
        happen()
        return wait

    monkeypatch.setattr(ratelimit, "reserve", reserve_then)


def test_an_optout_committed_while_a_reply_waits_for_its_slot_stops_the_reply(graph, monkeypatch):
    message = reply_in_window("O link é https://pay.example.com/cart/1")
    customer = message.conversation.customer
    # The customer opts out while the reply sits in the limiter: a direct write, as if another
    # worker committed it, so only a gate that reads fresh rows after the slot can see it.
    while_waiting_for_the_slot(
        monkeypatch,
        lambda: (
            type(customer).objects.filter(pk=customer.pk).update(opted_out=True, opted_out_at=timezone.now())
        ),
    )

    assert send_message(message_id=message.pk) == SendOutcome.BLOCKED

    assert len(graph.calls) == 0
    message.refresh_from_db()
    assert (message.status, message.error_code, message.attempts) == (Message.Status.FAILED, "opted_out", 0)


def test_a_reply_cancelled_by_an_optout_while_it_waits_never_reaches_graph(graph, monkeypatch):
    message = reply_in_window("O link é https://pay.example.com/cart/1")
    while_waiting_for_the_slot(
        monkeypatch, lambda: optout_register(phone=message.conversation.customer.phone, reason="keyword")
    )

    assert send_message(message_id=message.pk) == SendOutcome.BLOCKED

    assert len(graph.calls) == 0
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Message.Status.FAILED, "opted_out")


def test_an_optout_cancels_the_pending_replies_but_not_the_farewell(graph):
    reply = reply_in_window("O link é https://pay.example.com/cart/1")
    conversation = reply.conversation
    farewell = OutboundMessageFactory(
        conversation=conversation, purpose=Message.Purpose.FAREWELL, text="Tchau"
    )

    optout_register(phone=conversation.customer.phone, reason="keyword")

    reply.refresh_from_db()
    farewell.refresh_from_db()
    assert (reply.status, reply.error_code) == (Message.Status.FAILED, "opted_out")
    assert farewell.status == Message.Status.PENDING
    graph.add(responses.POST, GRAPH_URL, json=graph_ok())
    assert send_message(message_id=farewell.pk) == SendOutcome.SENT
    assert send_message(message_id=reply.pk) == SendOutcome.SKIPPED


def test_a_conversation_handed_to_a_person_while_the_reply_waited_gets_no_reply_from_sara(graph, monkeypatch):
    message = reply_in_window("O link é https://pay.example.com/cart/1")
    conversation = message.conversation
    while_waiting_for_the_slot(
        monkeypatch,
        lambda: Conversation.objects.filter(pk=conversation.pk).update(
            needs_human=True, handoff_reason=Conversation.HandoffReason.MANUAL, handoff_at=timezone.now()
        ),
    )

    assert send_message(message_id=message.pk) == SendOutcome.BLOCKED

    assert len(graph.calls) == 0
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Message.Status.FAILED, "needs_human")


def test_a_reply_still_allowed_after_the_slot_goes_out_once(graph, monkeypatch):
    message = reply_in_window("O link é https://pay.example.com/cart/1")
    while_waiting_for_the_slot(monkeypatch, lambda: None)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok())

    assert send_message(message_id=message.pk) == SendOutcome.SENT

    message.refresh_from_db()
    assert (message.status, message.attempts) == (Message.Status.SENT, 1)
