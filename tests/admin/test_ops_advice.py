"""Failed sends tell ops whether a retry can help, and why; the ones decided on can be dismissed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from messaging.models import Message
from recovery.models import Conversation
from tests.admin.conftest import flash
from tests.conftest import first_status, meta_payload
from tests.factories import ConversationFactory, CustomerFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db

MESSAGES = "/admin/messaging/message/"
WAMID = "wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEjQ4RDE3NjQ1M0U0QTRBNkI0AA=="


def sent_message(**conversation: object) -> Message:
    return OutboundMessageFactory(
        conversation=ConversationFactory(
            abandonment__customer=CustomerFactory(phone="+5548999327881", name="Maria Silva"),
            status=Conversation.Status.ACTIVE,
            **conversation,
        ),
        kind=Message.Kind.TEMPLATE,
        purpose=Message.Purpose.FIRST_CONTACT,
        status=Message.Status.SENT,
        whatsapp_message_id=WAMID,
        sent_at=timezone.now(),
    )


def meta_reports_failed(post_signed, code: int, title: str, details: str) -> None:
    """Meta's failed status for the wamid, as its status webhook delivers it."""
    payload = meta_payload("status_failed")
    first_status(payload)["errors"] = [
        {"code": code, "title": title, "message": title, "error_data": {"details": details}}
    ]
    assert post_signed("/webhook/messages", payload).status_code == 200


def advice_cell(page: str, pk: int) -> str:
    row = page.split(f'value="{pk}"', 1)[1].split("</tr>", 1)[0]
    return row.split('class="field-retry_help"', 1)[1].split("</td>", 1)[0]


@pytest.mark.parametrize(
    ("code", "title", "why"),
    [
        (131026, "Message undeliverable", "Não entregável: o número não está no WhatsApp"),
        (
            131049,
            "This message was not delivered to maintain healthy ecosystem engagement.",
            "Limite do ecossistema da Meta",
        ),
    ],
)
def test_a_send_meta_accepted_then_failed_reads_as_not_worth_a_retry(
    ops_client, post_signed, django_capture_on_commit_callbacks, code, title, why
):
    message = sent_message()
    with django_capture_on_commit_callbacks(execute=True):
        meta_reports_failed(post_signed, code, title, "Delivery failed")

    page = ops_client.get(MESSAGES, {"ops": "failed"}).content.decode()

    cell = advice_cell(page, message.pk)
    assert "<strong>Não.</strong>" in cell
    assert why in cell
    assert "uma mensagem nunca é enviada duas vezes" in cell


def test_a_transient_meta_error_reads_as_worth_a_retry(ops_client):
    message = OutboundMessageFactory(
        status=Message.Status.FAILED, error_code="131000", error_detail="Something went wrong"
    )

    cell = advice_cell(ops_client.get(MESSAGES, {"ops": "failed"}).content.decode(), message.pk)

    assert "<strong>Sim.</strong>" in cell
    assert "Erro temporário na Meta (código 131000): reenviar pode adiantar." in cell
    assert "Something went wrong" in cell


WINDOW_REASONS = [
    (None, "O cliente nunca escreveu: mensagens livres só depois de uma mensagem dele."),
    (timedelta(hours=30), "O cliente escreveu pela última vez há mais de 24 horas"),
]


def window_closed_send(last_wrote: timedelta | None) -> Message:
    conversation = ConversationFactory(
        last_user_message_at=timezone.now() - last_wrote if last_wrote else None
    )
    return OutboundMessageFactory(
        conversation=conversation,
        purpose=Message.Purpose.THANK_YOU,
        status=Message.Status.FAILED,
        error_code="window_closed",
        error_detail="More than 24 hours since the customer's last message; only templates may go out.",
    )


@pytest.mark.parametrize(("last_wrote", "why"), WINDOW_REASONS)
def test_the_window_message_tells_never_wrote_from_wrote_long_ago(ops_client, last_wrote, why):
    message = window_closed_send(last_wrote)

    cell = advice_cell(ops_client.get(MESSAGES, {"ops": "failed"}).content.decode(), message.pk)

    assert why in cell
    assert "More than 24 hours" not in cell


@pytest.mark.parametrize(("last_wrote", "why"), WINDOW_REASONS)
def test_a_retry_of_a_send_past_the_window_says_whether_the_customer_ever_wrote(
    ops_client, run_action, last_wrote, why
):
    message = window_closed_send(last_wrote)

    response = run_action(ops_client, MESSAGES, "retry_sends", [message.pk])

    (report,) = flash(response)
    assert report.startswith(f"1 envio não foi reenviado porque reenviar não adianta: {why}")
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Message.Status.FAILED, "window_closed")


def test_ops_dismiss_failed_sends_and_the_history_keeps_it(ops_client, ops_user, run_action):
    decided = OutboundMessageFactory(status=Message.Status.FAILED, error_code="131026")
    still_open = OutboundMessageFactory(status=Message.Status.FAILED, error_code="131000")
    delivered = OutboundMessageFactory(status=Message.Status.DELIVERED)

    response = run_action(ops_client, MESSAGES, "dismiss_failed", [decided.pk, delivered.pk])

    assert flash(response) == [
        "1 envio com falha arquivado: sai da lista e continua como falha no histórico.",
        f"Não alterado(s) (não é envio com falha ou já foi arquivado): {delivered.pk}.",
    ]
    listed = ops_client.get(MESSAGES, {"ops": "failed"}).context["cl"].result_list
    assert list(listed) == [still_open]
    decided.refresh_from_db()
    assert decided.status == Message.Status.FAILED and decided.dismissed_at is not None
    entry = LogEntry.objects.get(object_id=str(decided.pk), user=ops_user)
    assert entry.get_change_message() == "Arquivado dos envios com falha: não há mais nada a fazer."
    index = ops_client.get("/admin/").content.decode()
    assert 'id="ops-failed">Envios com falha: <strong>1</strong>' in index


def test_support_cannot_dismiss_failed_sends(support_client, run_action):
    failed = OutboundMessageFactory(status=Message.Status.FAILED, error_code="131026")

    run_action(support_client, MESSAGES, "dismiss_failed", [failed.pk])

    failed.refresh_from_db()
    assert failed.dismissed_at is None


def test_a_possible_duplicate_reads_as_a_possibility(support_client):
    message = OutboundMessageFactory(possible_duplicate=True, status=Message.Status.DELIVERED)

    page = support_client.get(
        f"/admin/recovery/conversation/{message.conversation_id}/change/"
    ).content.decode()

    assert "pode ter sido enviada duas vezes" in page
    assert "resultado incerto" in page


def test_messages_list_newest_first(ops_client):
    older = OutboundMessageFactory()
    newer = OutboundMessageFactory()

    listed = ops_client.get(MESSAGES).context["cl"].result_list

    assert list(listed)[:2] == [newer, older]
