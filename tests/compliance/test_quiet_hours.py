"""Quiet hours (SPEC §6): no proactive message at night in the customer's local time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import responses
from django.utils import timezone

from compliance.quiet_hours import next_allowed_at
from compliance.tasks import sweep_windows
from messaging.models import Message
from messaging.tasks import send_message, sweep_stuck
from recovery.models import Conversation
from tests.conftest import GRAPH_URL, abandonment_body, graph_ok
from tests.factories import ConversationFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
MANAUS = ZoneInfo("America/Manaus")
SP_PHONE = "+5511987654321"
MANAUS_PHONE = "+5592991234567"


@pytest.fixture
def quiet_nights(settings: Any) -> None:
    settings.SARA_QUIET_HOURS = "21:00-08:00"


def local(tz: ZoneInfo, hour: int, minute: int = 0, day: int = 22) -> datetime:
    return datetime(2025, 11, day, hour, minute, tzinfo=tz)


def open_recovery(post_signed, django_capture_on_commit_callbacks, phone: str, external_id: str) -> Message:
    """A cart abandoned now: the first-contact template is queued and its send attempted."""
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(
            "/webhook/abandonment",
            abandonment_body(
                userId="user-1", phone=phone, productId="unknown-product", abandonmentId=external_id
            ),
        )
    assert response.status_code == 200
    return Message.objects.get(
        conversation_id=response.json()["conversationId"], direction=Message.Direction.OUT
    )


def test_first_contact_at_2230_local_waits_for_0800_and_goes_out_with_the_sweep(
    graph, quiet_nights, post_signed, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(local(SAO_PAULO, 22, 30), tick=False)

    template = open_recovery(post_signed, django_capture_on_commit_callbacks, SP_PHONE, "ab-night")

    assert template.status == Message.Status.PENDING
    assert template.error_code == "quiet_hours"
    assert template.send_after == local(SAO_PAULO, 8, 0, day=23)
    assert len(graph.calls) == 0

    time_machine.move_to(local(SAO_PAULO, 7, 59, day=23), tick=False)
    sweep_stuck.delay()
    template.refresh_from_db()
    assert template.status == Message.Status.PENDING
    assert len(graph.calls) == 0

    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.morning", to=SP_PHONE))
    time_machine.move_to(local(SAO_PAULO, 8, 1, day=23), tick=False)
    sweep_stuck.delay()

    template.refresh_from_db()
    assert template.status == Message.Status.SENT
    assert template.whatsapp_message_id == "wamid.morning"
    assert template.error_code == ""
    assert template.sent_at == timezone.now()
    sent = json.loads(graph.calls[0].request.body)
    assert (sent["to"], sent["type"], sent["template"]["name"]) == (
        SP_PHONE,
        "template",
        "recovery_invitation",
    )


def test_manaus_customer_is_quiet_on_manaus_time_while_sao_paulo_is_already_awake(
    graph, quiet_nights, post_signed, django_capture_on_commit_callbacks, time_machine
):
    # 07:30 in Manaus is 08:30 in São Paulo.
    time_machine.move_to(local(MANAUS, 7, 30), tick=False)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.sp", to=SP_PHONE))

    sao_paulo = open_recovery(post_signed, django_capture_on_commit_callbacks, SP_PHONE, "ab-sp")
    manaus = open_recovery(post_signed, django_capture_on_commit_callbacks, MANAUS_PHONE, "ab-manaus")

    assert sao_paulo.status == Message.Status.SENT
    assert (manaus.status, manaus.error_code) == (Message.Status.PENDING, "quiet_hours")
    assert manaus.send_after == local(MANAUS, 8, 0)
    assert [json.loads(call.request.body)["to"] for call in graph.calls] == [SP_PHONE]


def test_manaus_customer_still_gets_a_template_at_2030_manaus_time(
    graph, quiet_nights, post_signed, django_capture_on_commit_callbacks, time_machine
):
    # 20:30 in Manaus is 21:30 in São Paulo: quiet there, not here.
    time_machine.move_to(local(MANAUS, 20, 30), tick=False)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.manaus", to=MANAUS_PHONE))

    manaus = open_recovery(post_signed, django_capture_on_commit_callbacks, MANAUS_PHONE, "ab-manaus")

    assert manaus.status == Message.Status.SENT


def test_reply_to_a_customer_who_just_wrote_goes_out_at_2300(graph, quiet_nights, time_machine):
    time_machine.move_to(local(SAO_PAULO, 23, 0), tick=False)
    conversation = ConversationFactory(
        abandonment__customer__phone=SP_PHONE,
        status=Conversation.Status.ACTIVE,
        last_user_message_at=timezone.now() - timedelta(minutes=1),
    )
    reply = OutboundMessageFactory(conversation=conversation, text="Segue o link de pagamento.")
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.reply", to=SP_PHONE))

    send_message.delay(reply.pk)

    reply.refresh_from_db()
    assert reply.status == Message.Status.SENT
    assert reply.send_after is None


def test_empty_quiet_hours_setting_lets_a_first_contact_go_out_at_night(
    graph, settings, post_signed, django_capture_on_commit_callbacks, time_machine
):
    settings.SARA_QUIET_HOURS = ""
    time_machine.move_to(local(SAO_PAULO, 23, 0), tick=False)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.night", to=SP_PHONE))

    template = open_recovery(post_signed, django_capture_on_commit_callbacks, SP_PHONE, "ab-night")

    assert template.status == Message.Status.SENT
    assert template.send_after is None


def test_followup_due_at_night_waits_for_the_morning(
    outbox, quiet_nights, post_signed, django_capture_on_commit_callbacks, time_machine
):
    time_machine.move_to(local(SAO_PAULO, 10, 0), tick=False)
    open_recovery(post_signed, django_capture_on_commit_callbacks, SP_PHONE, "ab-day")
    assert len(outbox) == 1

    # Twenty hours after 10:00 is 06:00 the next day, inside quiet hours.
    time_machine.move_to(local(SAO_PAULO, 6, 0, day=23), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        sweep_windows.delay()

    followup = Message.objects.get(purpose=Message.Purpose.FOLLOWUP)
    assert (followup.status, followup.error_code) == (Message.Status.PENDING, "quiet_hours")
    assert followup.send_after == local(SAO_PAULO, 8, 0, day=23)
    assert len(outbox) == 1


@pytest.mark.parametrize(
    ("moment", "allowed_at"),
    [
        (local(SAO_PAULO, 20, 59), None),
        (local(SAO_PAULO, 21, 0), local(SAO_PAULO, 8, 0, day=23)),
        (local(SAO_PAULO, 23, 45), local(SAO_PAULO, 8, 0, day=23)),
        (local(SAO_PAULO, 2, 0, day=23), local(SAO_PAULO, 8, 0, day=23)),
        (local(SAO_PAULO, 7, 59, day=23), local(SAO_PAULO, 8, 0, day=23)),
        (local(SAO_PAULO, 8, 0, day=23), None),
    ],
    ids=["20:59", "21:00", "23:45", "02:00", "07:59", "08:00"],
)
def test_next_allowed_moment_is_the_end_of_the_quiet_window(moment, allowed_at):
    assert next_allowed_at(SP_PHONE, moment, spec="21:00-08:00") == allowed_at


def test_next_allowed_moment_uses_the_customers_area_code_timezone():
    # 01:00 UTC is 22:00 in São Paulo and 21:00 in Manaus.
    moment = datetime(2025, 11, 23, 1, 0, tzinfo=ZoneInfo("UTC"))

    assert next_allowed_at(MANAUS_PHONE, moment, spec="21:00-08:00") == local(MANAUS, 8, 0, day=23)
    assert next_allowed_at(SP_PHONE, moment, spec="21:00-08:00") == local(SAO_PAULO, 8, 0, day=23)
    assert next_allowed_at(MANAUS_PHONE, moment, spec="22:00-08:00") is None


def test_foreign_number_uses_sao_paulo_time():
    moment = local(SAO_PAULO, 22, 0)

    assert next_allowed_at("+14155550123", moment, spec="21:00-08:00") == local(SAO_PAULO, 8, 0, day=23)


def test_quiet_window_within_one_day_is_understood():
    assert next_allowed_at(SP_PHONE, local(SAO_PAULO, 13, 0), spec="12:00-14:00") == local(SAO_PAULO, 14, 0)
    assert next_allowed_at(SP_PHONE, local(SAO_PAULO, 15, 0), spec="12:00-14:00") is None


def test_send_deferred_now_really_sends_a_first_contact_deferred_at_night(
    graph, quiet_nights, post_signed, django_capture_on_commit_callbacks, time_machine
):
    from io import StringIO

    from django.core.management import call_command

    time_machine.move_to(local(SAO_PAULO, 22, 30), tick=False)
    template = open_recovery(post_signed, django_capture_on_commit_callbacks, SP_PHONE, "ab-demo-night")
    assert template.error_code == "quiet_hours"
    # Neither the sweep nor emptying the setting sends it: its send time was fixed at deferral.
    sweep_stuck.delay()
    assert len(graph.calls) == 0

    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.demo-night", to=SP_PHONE))
    out = StringIO()
    call_command("send_deferred_now", "--yes", stdout=out)

    assert "1 proactive message(s) wait" in out.getvalue()
    template.refresh_from_db()
    assert (template.status, template.whatsapp_message_id) == (Message.Status.SENT, "wamid.demo-night")
    assert template.metadata["quiet_hours_waived"] is True


def test_send_deferred_now_asks_first_and_sends_nothing_on_no(
    graph, quiet_nights, post_signed, django_capture_on_commit_callbacks, time_machine, monkeypatch
):
    from io import StringIO

    from django.core.management import call_command

    time_machine.move_to(local(SAO_PAULO, 22, 30), tick=False)
    template = open_recovery(post_signed, django_capture_on_commit_callbacks, SP_PHONE, "ab-demo-no")
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    out = StringIO()

    call_command("send_deferred_now", stdout=out)

    assert "Nothing sent." in out.getvalue()
    template.refresh_from_db()
    assert template.status == Message.Status.PENDING
    assert len(graph.calls) == 0
