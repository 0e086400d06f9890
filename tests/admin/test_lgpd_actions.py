"""LGPD from the admin: export a person's data as JSON, erase it keeping the opt-out."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.models import LogEntry

from messaging.models import Message
from recovery.models import Customer
from tests.admin.conftest import flash
from tests.factories import ConversationFactory, CustomerFactory, InboundMessageFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/recovery/customer/"


@pytest.fixture
def maria() -> Customer:
    customer = CustomerFactory(
        phone="+5548999327881", name="Maria Silva", opted_out=True, opted_out_reason="keyword"
    )
    conversation = ConversationFactory(customer=customer, abandonment__customer=customer)
    InboundMessageFactory(conversation=conversation, text="PARAR")
    return customer


def test_export_action_downloads_everything_about_the_selected_people(admin_client, maria):
    response = admin_client.post(
        CHANGELIST, {"action": "export_personal_data", "_selected_action": [maria.pk]}
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="sara-personal-data.json"'
    [export] = json.loads(response.content)
    assert export["customer"]["phone"] == "+5548999327881"
    assert export["conversations"][0]["messages"][0]["text"] == "PARAR"
    assert LogEntry.objects.filter(object_id=str(maria.pk), change_message__contains="exportados").exists()


def test_erase_action_anonymises_and_keeps_the_opt_out(admin_client, run_action, maria):
    reason = "Pedido LGPD por e-mail em 30/11, chamado 4521"
    response = run_action(
        admin_client, CHANGELIST, "erase_personal_data", [maria.pk], apply="1", reason=reason
    )
    assert any("apagados" in text and "descadastro continua valendo" in text for text in flash(response))
    maria.refresh_from_db()
    assert maria.phone.startswith("erased:") and maria.name == "" and maria.opted_out
    assert maria.erasure_reason == reason and maria.erased_at is not None
    assert not Message.objects.exclude(text="").exists()
    entry = LogEntry.objects.get(object_id=str(maria.pk), change_message__contains="apagados")
    assert reason in entry.change_message


def test_support_can_export_but_not_erase(support_client, maria):
    response = support_client.get(CHANGELIST)
    actions = [value for value, _ in response.context["action_form"].fields["action"].choices]
    assert "export_personal_data" in actions
    assert "erase_personal_data" not in actions
