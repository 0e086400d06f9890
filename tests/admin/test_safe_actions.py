"""Irreversible customer actions ask first and keep the reason; "is this number blocked?" has an answer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.admin.models import LogEntry

from recovery.models import Conversation, Customer
from tests.admin.conftest import flash
from tests.factories import AbandonmentFactory, ConversationFactory, CustomerFactory, InboundMessageFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = "/admin/recovery/customer/"
CHECK = "/admin/recovery/customer/check-phone/"
PHONE = "+5548999327881"
REASON = "Pedido LGPD por e-mail em 30/11, chamado 4521"


@pytest.fixture
def maria() -> Customer:
    customer = CustomerFactory(phone=PHONE, name="Maria Silva")
    conversation = ConversationFactory(abandonment=AbandonmentFactory(customer=customer))
    InboundMessageFactory(conversation=conversation, text="Quanto custa?")
    return customer


@pytest.mark.parametrize("action", ["erase_personal_data", "opt_out"])
def test_the_action_first_shows_a_confirmation_page_and_changes_nothing(
    admin_client, run_action, maria, action
):
    response = run_action(admin_client, CUSTOMERS, action, [maria.pk])

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="confirm-form"' in page
    assert "Maria Silva" in page
    assert "Motivo" in page
    maria.refresh_from_db()
    assert (maria.phone, maria.name, maria.opted_out) == (PHONE, "Maria Silva", False)
    assert not LogEntry.objects.filter(object_id=str(maria.pk)).exists()


@pytest.mark.parametrize("action", ["erase_personal_data", "opt_out"])
def test_confirming_without_a_reason_is_refused(admin_client, run_action, maria, action):
    response = run_action(admin_client, CUSTOMERS, action, [maria.pk], apply="1", reason="   ")

    assert "Este campo é obrigatório." in response.content.decode()
    maria.refresh_from_db()
    assert (maria.phone, maria.opted_out) == (PHONE, False)


def test_an_erased_customer_is_shown_as_erased_with_the_reason_and_its_history(
    admin_client, run_action, maria
):
    with time_machine.travel(datetime(2026, 11, 30, 13, 0, tzinfo=UTC), tick=False):
        run_action(admin_client, CUSTOMERS, "erase_personal_data", [maria.pk], apply="1", reason=REASON)

    listing = admin_client.get(CUSTOMERS).content.decode()
    record = admin_client.get(f"{CUSTOMERS}{maria.pk}/change/").content.decode()
    history = admin_client.get(f"{CUSTOMERS}{maria.pk}/history/").content.decode()

    assert "Dados pessoais apagados em 30/11/2026" in listing
    assert "erased:" not in listing
    assert REASON in record
    assert "30/11/2026 10:00:00" in record  # erased_at, São Paulo time
    assert f"Dados pessoais apagados (LGPD). Motivo: {REASON}" in history
    assert Conversation.objects.get(customer=maria).close_reason == "erased"


def test_the_erased_customers_conversation_says_so_instead_of_a_digest(admin_client, run_action, maria):
    run_action(admin_client, CUSTOMERS, "erase_personal_data", [maria.pk], apply="1", reason=REASON)
    conversation = Conversation.objects.get(customer=maria)

    listing = admin_client.get("/admin/recovery/conversation/").content.decode()
    page = admin_client.get(f"/admin/recovery/conversation/{conversation.pk}/change/").content.decode()

    assert f"Cliente apagado #{maria.pk}" in listing
    assert "Dados pessoais apagados" in page
    assert "erased:" not in listing


def test_a_phone_typed_in_search_finds_the_erased_record(admin_client, run_action, maria):
    run_action(admin_client, CUSTOMERS, "erase_personal_data", [maria.pk], apply="1", reason=REASON)

    response = admin_client.get(CUSTOMERS, {"q": "(48) 99932-7881"})

    assert list(response.context["cl"].result_list) == [maria]


def test_an_erased_opted_out_number_checks_as_blocked_and_erased(admin_client, run_action, maria):
    with time_machine.travel(datetime(2026, 11, 29, 15, 30, 5, tzinfo=UTC), tick=False):
        run_action(admin_client, CUSTOMERS, "opt_out", [maria.pk], apply="1", reason="pediu por telefone")
    run_action(admin_client, CUSTOMERS, "erase_personal_data", [maria.pk], apply="1", reason=REASON)
    customers_before = Customer.objects.count()

    response = admin_client.post(CHECK, {"phone": "48 99932-7881"})

    verdict = response.context["verdict"]
    assert verdict.startswith(
        "Bloqueado: este número se descadastrou em 29/11/2026 12:30:05 (suporte, a pedido do cliente)"
    )
    assert "Os dados pessoais foram apagados em" in verdict
    # The check stores nothing: no new customer, no phone in clear anywhere.
    assert Customer.objects.count() == customers_before
    assert not Customer.objects.filter(phone=PHONE).exists()
    assert not LogEntry.objects.filter(change_message__contains="99932").exists()


@pytest.mark.parametrize(
    ("typed", "verdict"),
    [
        ("+55 11 98765-4321", "Não bloqueado: a Sara não tem registro deste número."),
        ("(48) 99932-7881", "Não bloqueado: a Sara pode contatar este número sobre um novo carrinho."),
    ],
)
def test_a_number_that_is_not_blocked_checks_as_such(admin_client, maria, typed, verdict):
    response = admin_client.post(CHECK, {"phone": typed})

    assert response.context["verdict"].startswith(verdict)


def test_a_number_that_is_not_a_phone_gets_a_clear_error(admin_client):
    response = admin_client.post(CHECK, {"phone": "abc"})

    assert response.status_code == 200
    assert "Isto não é um número de telefone que a Sara consiga ler." in response.content.decode()
    assert response.context["verdict"] is None


def test_the_customer_list_leads_to_the_phone_check(support_client):
    page = support_client.get(CUSTOMERS).content.decode()

    assert f'href="{CHECK}"' in page
    assert "Este número está bloqueado?" in page
    assert support_client.get(CHECK).status_code == 200


def test_a_second_erasure_is_reported_not_repeated(admin_client, run_action, maria):
    run_action(admin_client, CUSTOMERS, "erase_personal_data", [maria.pk], apply="1", reason=REASON)

    again = run_action(
        admin_client, CUSTOMERS, "erase_personal_data", [maria.pk], apply="1", reason="outra vez"
    )

    assert flash(again) == [f"Cliente apagado #{maria.pk} já estava apagado."]
    maria.refresh_from_db()
    assert maria.erasure_reason == REASON


def test_the_confirmation_carries_ids_past_a_thousand_unformatted(admin_client, run_action):
    # Brazilian number formatting writes 1221 as "1.221": an id posted back that way is lost.
    customer = CustomerFactory(id=1221, phone=PHONE, name="Maria Silva")

    page = run_action(admin_client, CUSTOMERS, "erase_personal_data", [customer.pk]).content.decode()
    done = run_action(admin_client, CUSTOMERS, "erase_personal_data", [customer.pk], apply="1", reason=REASON)

    assert 'name="_selected_action" value="1221"' in page
    assert done.status_code == 200
    customer.refresh_from_db()
    assert customer.erasure_reason == REASON


def test_closing_conversations_past_a_thousand_keeps_their_ids(admin_client, run_action):
    conversation = ConversationFactory(id=1222)

    page = run_action(admin_client, "/admin/recovery/conversation/", "close_selected", [conversation.pk])

    assert 'value="1222"' in page.content.decode()
    assert "#1222 —" in page.content.decode()
