"""Ops' day in the admin: failed sends and their retry through the gate, stuck work, webhook audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import responses
import time_machine
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from messaging.models import Message, WebhookEvent
from recovery.models import Abandonment, Conversation
from tests.admin.conftest import failed_reply, flash
from tests.conftest import GRAPH_URL, graph_error, graph_ok, meta_payload
from tests.factories import (
    ConversationFactory,
    CustomerFactory,
    InboundMessageFactory,
    OutboundMessageFactory,
)

pytestmark = pytest.mark.django_db

MESSAGES = "/admin/messaging/message/"
WAMID = "wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEjQ4RDE3NjQ1M0U0QTRBNkI0AA=="
PHONE = "+5548999327881"
MASKED = "+55XXXXXXX881"


def sent_json(graph: responses.RequestsMock) -> dict:
    return json.loads(graph.calls[0].request.body)


QUEUED_ONE = (
    "De volta à fila de envio: 1 envio. Ele sai depois das verificações no envio; se falhar de "
    "novo, volta aos envios com falha com o motivo."
)


@pytest.fixture
def retry(ops_client, run_action, django_capture_on_commit_callbacks):
    """Post the retry action; the sends it queued are returned, not run: the worker's, later."""

    def post(*message_ids: int, client=None) -> tuple[object, list]:
        with django_capture_on_commit_callbacks() as queued:
            response = run_action(client or ops_client, MESSAGES, "retry_sends", list(message_ids))
        return response, queued

    return post


def worker_runs(queued: list) -> None:
    for send in queued:
        send()


def retry_help(ops_client) -> str:
    """What the failed sends list says about a retry, for the one failed send on it."""
    page = ops_client.get(MESSAGES, {"ops": "failed"}).content.decode()
    return page.split('class="field-retry_help"', 1)[1].split("</td>", 1)[0]


def test_retry_of_a_message_of_a_held_out_cart_is_blocked_by_the_gate_without_calling_graph(
    ops_client, retry, graph
):
    message = failed_reply()
    Abandonment.objects.filter(pk=message.conversation.abandonment_id).update(
        status=Abandonment.Status.HELD_OUT, held_out=True, holdout_percent=10
    )

    response, queued = retry(message.pk)
    assert flash(response) == [QUEUED_ONE]
    worker_runs(queued)

    assert len(graph.calls) == 0
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", "held_out")
    assert "O carrinho está no grupo de controle, que nunca é contatado." in retry_help(ops_client)


# --- Failed sends -----------------------------------------------------------------------------


def test_the_failed_sends_view_lists_only_failed_sends_with_code_detail_and_attempts(ops_client):
    failed = failed_reply()
    OutboundMessageFactory(status=Message.Status.SENT, whatsapp_message_id="wamid.ok")
    InboundMessageFactory()

    response = ops_client.get(MESSAGES, {"ops": "failed"})

    assert list(response.context["cl"].result_list) == [failed]
    page = response.content.decode()
    assert "131000" in page
    assert "Something went wrong" in page
    assert '<td class="field-attempts">5</td>' in page
    assert "Reenviar as mensagens selecionadas" in page


def test_failed_sends_filter_by_error_code(ops_client):
    failed_reply()
    undeliverable = OutboundMessageFactory(status=Message.Status.FAILED, error_code="131026")

    response = ops_client.get(MESSAGES, {"ops": "failed", "error_code": "131026"})

    assert list(response.context["cl"].result_list) == [undeliverable]


def test_retry_queues_the_failed_send_and_the_worker_sends_it_to_graph(ops_user, retry, graph):
    message = failed_reply()
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    response, queued = retry(message.pk)

    # Queued, not sent: the request waited neither for a send slot nor for Graph.
    assert len(queued) == 1
    assert len(graph.calls) == 0
    message.refresh_from_db()
    assert message.status == Message.Status.PENDING
    assert flash(response) == [QUEUED_ONE]
    entry = LogEntry.objects.get(object_id=str(message.pk), user=ops_user)
    assert entry.get_change_message() == "Reenviado à mão: na fila para envio."

    worker_runs(queued)

    assert sent_json(graph) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": PHONE,
        "type": "text",
        "text": {"preview_url": True, "body": "Pague aqui: https://pay.example.com/cart/123"},
    }
    message.refresh_from_db()
    assert (message.status, message.whatsapp_message_id, message.error_code) == ("sent", WAMID, "")


def test_retry_to_a_customer_who_opted_out_is_blocked_by_the_gate_without_calling_graph(
    ops_client, retry, graph
):
    message = failed_reply(opted_out=True, opted_out_reason="keyword")

    response, queued = retry(message.pk)
    assert flash(response) == [QUEUED_ONE]
    worker_runs(queued)

    assert len(graph.calls) == 0
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", "opted_out")
    assert "O cliente se descadastrou: nada mais é enviado a ele." in retry_help(ops_client)


def test_retry_of_a_text_after_the_24h_window_is_blocked_without_calling_graph(ops_client, retry, graph):
    message = failed_reply(minutes_since_customer_wrote=25 * 60)

    _, queued = retry(message.pk)
    worker_runs(queued)

    assert len(graph.calls) == 0
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", "window_closed")
    assert (
        "O cliente escreveu pela última vez há mais de 24 horas: mensagens livres só quando ele escrever de novo."
        in retry_help(ops_client)
    )


def test_retry_of_a_first_contact_in_quiet_hours_waits_for_the_morning(retry, graph, settings):
    settings.SARA_QUIET_HOURS = "21:00-08:00"
    with time_machine.travel(datetime(2025, 11, 25, 2, 0, tzinfo=UTC), tick=False):  # 23:00 in Florianópolis
        message = failed_reply()
        Message.objects.filter(pk=message.pk).update(
            kind=Message.Kind.TEMPLATE,
            purpose=Message.Purpose.FIRST_CONTACT,
            metadata={"template": {"name": "recovery_invitation", "language": "pt_BR", "parameters": []}},
        )

        response, queued = retry(message.pk)
        worker_runs(queued)

    assert flash(response) == [QUEUED_ONE]
    assert len(graph.calls) == 0
    message.refresh_from_db()
    assert message.status == Message.Status.PENDING
    assert timezone.localtime(message.send_after).strftime("%d/%m %H:%M") == "25/11 08:00"


def test_retry_that_meta_refuses_again_stays_failed_with_metas_reason(ops_client, retry, graph):
    message = failed_reply()
    graph.add(
        responses.POST,
        GRAPH_URL,
        json=graph_error(131026, "Message undeliverable", details="Recipient cannot receive"),
        status=400,
    )

    _, queued = retry(message.pk)
    worker_runs(queued)

    message.refresh_from_db()
    assert (message.status, message.error_code, message.attempts) == ("failed", "131026", 6)
    assert "Recipient cannot receive" in retry_help(ops_client)


def test_retry_of_several_sends_queues_the_failed_and_says_why_the_others_were_left(retry, graph):
    failed = failed_reply()
    already_sent = OutboundMessageFactory(status=Message.Status.SENT, whatsapp_message_id="wamid.ok")
    inbound = InboundMessageFactory()
    graph.add(responses.POST, GRAPH_URL, json=graph_ok(WAMID))

    response, queued = retry(failed.pk, already_sent.pk, inbound.pk)

    reports = flash(response)
    assert reports[0] == QUEUED_ONE
    assert reports[1].endswith(
        "não reenviada: a Meta já a aceitou uma vez, e uma mensagem nunca é enviada duas vezes."
    )
    assert reports[2].endswith("não reenviada: está recebida, não é um envio com falha.")
    assert len(queued) == 1
    worker_runs(queued)
    assert len(graph.calls) == 1


def test_support_staff_cannot_retry_sends(support_client, retry, graph):
    message = failed_reply()

    listing = support_client.get(MESSAGES, {"ops": "failed"})
    response, queued = retry(message.pk, client=support_client)

    assert "Reenviar as mensagens selecionadas" not in listing.content.decode()
    assert queued == []
    assert len(graph.calls) == 0
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert not LogEntry.objects.exists()
    assert response.status_code == 200


# --- Stuck work -------------------------------------------------------------------------------


def stuck(message: Message, minutes: int = 10) -> Message:
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))
    return message


@pytest.fixture
def maria_writing() -> Conversation:
    return ConversationFactory(
        abandonment__customer=CustomerFactory(phone=PHONE, name="Maria Silva"),
        status=Conversation.Status.ACTIVE,
        last_user_message_at=timezone.now(),
    )


def test_the_stuck_view_shows_unprocessed_inbound_and_overdue_pending_sends_only(ops_client, maria_writing):
    inbound = stuck(InboundMessageFactory(wa_id=PHONE.lstrip("+")))
    pending = stuck(OutboundMessageFactory(conversation=maria_writing))
    InboundMessageFactory()  # received a moment ago: its task is still on the way
    stuck(
        OutboundMessageFactory(
            conversation=maria_writing, status=Message.Status.SENT, whatsapp_message_id="w"
        )
    )

    response = ops_client.get(MESSAGES, {"ops": "stuck"})

    assert sorted(m.pk for m in response.context["cl"].result_list) == [inbound.pk, pending.pk]


def test_redrive_processes_stuck_inbound_and_sends_stuck_replies(
    ops_client, ops_user, run_action, maria_writing, outbox, django_capture_on_commit_callbacks
):
    inbound = stuck(InboundMessageFactory(wa_id=PHONE.lstrip("+"), text="Quanto custa?"))
    pending = stuck(OutboundMessageFactory(conversation=maria_writing, text="Olá de novo"))
    done = InboundMessageFactory(status=Message.Status.PROCESSED)

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(ops_client, MESSAGES, "redrive_stuck", [inbound.pk, pending.pk, done.pk])

    inbound.refresh_from_db()
    pending.refresh_from_db()
    assert inbound.status == Message.Status.PROCESSED
    assert inbound.intent == "price_question"
    assert pending.status == Message.Status.SENT
    sent_texts = [m.text for _, m in outbox]
    assert "Olá de novo" in sent_texts
    assert len(sent_texts) == 2  # the re-driven send and the answer to the re-driven question
    assert flash(response) == [
        "De volta à fila: 1 mensagem recebida para processar, 1 envio.",
        f"Não estão parados, não alterados: {done.pk} (já processados ou enviados, ou ainda no prazo).",
    ]
    assert LogEntry.objects.filter(user=ops_user).count() == 2


def test_support_staff_cannot_redrive_work(support_client, run_action, maria_writing, outbox):
    pending = stuck(OutboundMessageFactory(conversation=maria_writing))

    run_action(support_client, MESSAGES, "redrive_stuck", [pending.pk])

    pending.refresh_from_db()
    assert pending.status == Message.Status.PENDING
    assert outbox == []


# --- Webhook events ---------------------------------------------------------------------------


def test_a_webhook_event_shows_its_payload_pretty_printed_and_cannot_be_edited(ops_client):
    event = WebhookEvent.objects.create(
        type=WebhookEvent.Type.PAYMENT, external_id="pay-1", payload={"amount": "297.00", "status": "paid"}
    )
    url = f"/admin/messaging/webhookevent/{event.pk}/change/"

    page = ops_client.get(url).content.decode()
    edit = ops_client.post(url, {"type": "payment", "external_id": "pay-2", "processed": "on"})

    assert (
        '<pre class="sara-json">{\n  &quot;amount&quot;: &quot;297.00&quot;,\n  &quot;status&quot;: &quot;paid&quot;\n}</pre>'
        in page
    )
    assert edit.status_code == 403
    event.refresh_from_db()
    assert event.external_id == "pay-1"


def test_redrive_fans_out_a_stuck_meta_batch(ops_client, run_action, django_capture_on_commit_callbacks):
    event = WebhookEvent.objects.create(type=WebhookEvent.Type.WHATSAPP, payload=meta_payload("text"))
    WebhookEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(ops_client, "/admin/messaging/webhookevent/", "redrive_stuck", [event.pk])

    event.refresh_from_db()
    assert event.processed is True
    assert Message.objects.filter(direction="in", text="Quanto custa o frete?").count() == 1
    assert flash(response) == ["De volta à fila: 1 lote."]


def test_provider_ids_of_a_message_are_read_only(ops_client):
    message = OutboundMessageFactory(status=Message.Status.SENT, whatsapp_message_id="wamid.original")

    response = ops_client.post(
        f"/admin/messaging/message/{message.pk}/change/", {"whatsapp_message_id": "wamid.forged"}
    )

    assert response.status_code == 403
    message.refresh_from_db()
    assert message.whatsapp_message_id == "wamid.original"


def test_retry_skips_the_sends_a_retry_cannot_help_and_says_how_many_and_why(retry, graph):
    first = failed_reply()
    transient = [
        first,
        OutboundMessageFactory(conversation=first.conversation, status="failed", error_code="http_503"),
    ]
    opted_out = OutboundMessageFactory(
        conversation=first.conversation, status="failed", error_code="opted_out"
    )
    undeliverable = [
        OutboundMessageFactory(conversation=first.conversation, status="failed", error_code="131026")
        for _ in range(2)
    ]

    response, queued = retry(*[m.pk for m in [*transient, opted_out, *undeliverable]])

    assert len(queued) == 2
    statuses = dict(
        Message.objects.filter(pk__in=[opted_out.pk, undeliverable[0].pk]).values_list("pk", "status")
    )
    assert statuses == {opted_out.pk: "failed", undeliverable[0].pk: "failed"}
    queued_report, skipped_report = flash(response)
    assert queued_report.startswith("De volta à fila de envio: 2 envios. Cada um sai")
    assert skipped_report.startswith("3 envios não foram reenviados porque reenviar não adianta:")
    assert "O cliente se descadastrou: nada mais é enviado a ele." in skipped_report
    assert "Não entregável: o número não está no WhatsApp" in skipped_report and "(×2)" in skipped_report


def test_a_single_send_a_retry_cannot_help_is_reported_in_the_singular(retry, graph):
    message = failed_reply()
    Message.objects.filter(pk=message.pk).update(error_code="131026")

    response, queued = retry(message.pk)

    assert queued == []
    (report,) = flash(response)
    assert report.startswith("1 envio não foi reenviado porque reenviar não adianta: Não entregável")
