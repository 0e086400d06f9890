"""Two beats by mistake: sweeps running at the same moment do the work once (SPEC §7)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from compliance.tasks import sweep_windows
from messaging.models import Message
from messaging.tasks import sweep_stuck
from recovery.models import Conversation
from tests.conftest import at_once
from tests.factories import ConversationFactory, InboundMessageFactory, OutboundMessageFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(task, times: int = 2) -> list:
    return at_once([task] * times)


def test_two_window_sweeps_at_once_send_one_followup(outbox, settings):
    conversation = ConversationFactory(status=Conversation.Status.AWAITING_RESPONSE)
    sent_at = timezone.now() - timedelta(hours=21)
    OutboundMessageFactory(
        conversation=conversation,
        kind=Message.Kind.TEMPLATE,
        purpose=Message.Purpose.FIRST_CONTACT,
        status=Message.Status.SENT,
        whatsapp_message_id="wamid.first",
        sent_at=sent_at,
    )
    results = run_together(sweep_windows, times=3)
    assert sorted(r["followups"] for r in results) == [0, 0, 1]
    followups = Message.objects.filter(purpose=Message.Purpose.FOLLOWUP)
    assert followups.count() == 1
    assert [m.template_name for _, m in outbox] == [settings.WHATSAPP_FOLLOWUP_TEMPLATE_NAME]


def test_two_stuck_sweeps_at_once_answer_a_lost_message_once(outbox):
    conversation = ConversationFactory(status=Conversation.Status.ACTIVE)
    with time_machine.travel(timezone.now() - timedelta(minutes=5), tick=False):
        message = InboundMessageFactory(
            wa_id=conversation.customer.phone.lstrip("+"),
            text="Quanto custa?",
            whatsapp_timestamp=timezone.now(),
        )
    run_together(sweep_stuck, times=2)
    message.refresh_from_db()
    assert message.status == Message.Status.PROCESSED
    assert Message.objects.filter(direction="out", purpose=Message.Purpose.REPLY).count() == 1
    assert len(outbox) == 1
