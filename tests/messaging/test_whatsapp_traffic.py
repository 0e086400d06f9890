"""Real WhatsApp traffic (SPEC §4.5): Meta's documented payloads for every kind, through the webhook.

Reactions, stickers, edits, revokes, system notices and unsupported messages are kept but never
answered nor counted; captions are read; a person known only by their business-scoped user id
(BSUID) is matched and may opt out; Meta's marketing "stop" opts out; a number change moves
the customer; Sara marks a message read (typing indicator) before answering it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses
import time_machine
from django.utils import timezone

from messaging.models import Message, WebhookEvent
from messaging.tasks import send_message
from messaging.whatsapp import console
from recovery.models import Conversation, Customer
from sara import agent
from tests.conftest import GRAPH_URL, first_message, graph_ok, meta_payload
from tests.factories import ConversationFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db

WEBHOOK = "/webhook/messages"
NOW = datetime(2025, 11, 22, 14, 0, tzinfo=UTC)
MARIA = "+5548999327881"
MARIA_NEW = "+5548988776655"
BSUID = "BR.1502576394655843"
NEW_BSUID = "BR.2817305912873645029"
NOT_TURNS = ["reaction", "reaction_removed", "sticker", "edit", "revoke", "unsupported", "errors_only"]


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def maria() -> Conversation:
    """Maria's open recovery, after one question already answered."""
    return ConversationFactory(
        abandonment__customer__phone=MARIA,
        abandonment__customer__name="Maria Silva",
        status=Conversation.Status.ACTIVE,
        exchanges=1,
        last_user_message_at=NOW,
    )


@pytest.fixture
def post(post_signed, django_capture_on_commit_callbacks):
    """Post a recorded Meta payload, fresh and written now (a new wamid unless `keep_id`), and
    run the work it queues. Returns the body posted."""

    def send(name: str, *, change: Any = None, keep_id: bool = False) -> dict[str, Any]:
        payload = meta_payload(name)
        value = payload["entry"][0]["changes"][0]["value"]
        for message in value.get("messages", []):
            if not keep_id:
                message["id"] = f"wamid.test.{uuid.uuid4().hex}"
            message["timestamp"] = str(int(timezone.now().timestamp()))
        if change is not None:
            change(payload)
        with django_capture_on_commit_callbacks(execute=True):
            assert post_signed(WEBHOOK, payload).status_code == 200
        return payload

    return send


def sent(outbox: list) -> list[tuple[str, str]]:
    return [(m.to, m.text) for _, m in outbox]


def stored(payload: dict[str, Any]) -> Message:
    return Message.objects.get(whatsapp_message_id=first_message(payload)["id"])


def abandonment_for(post_signed, phone: str, abandonment_id: str) -> Any:
    body = {
        "userId": "u-1",
        "name": "Maria Silva",
        "phone": phone,
        "productId": "curso-python",
        "paymentLink": "https://pay.example.com/cart/77",
        "abandonmentId": abandonment_id,
        "value": "297.00",
    }
    return post_signed("/webhook/abandonment", body)


# --- Not turns: stored, shown, never answered, never counted ---


@pytest.mark.parametrize("name", NOT_TURNS)
def test_a_non_message_gets_no_reply_and_leaves_the_exchange_count_unchanged(maria, post, outbox, name):
    payload = post(name)

    assert outbox == []
    message = stored(payload)
    assert (message.status, message.conversation) == (Message.Status.PROCESSED, maria)
    maria.refresh_from_db()
    assert (maria.exchanges, maria.needs_human) == (1, False)
    assert not WebhookEvent.objects.exists()


def test_a_question_followed_by_four_thumbs_up_and_a_sticker_is_not_handed_to_a_person(
    maria, post, say, outbox
):
    say("Tem certificado?")
    for _ in range(4):
        post("reaction")
    post("sticker")

    assert len(outbox) == 1, "only the question is answered"
    maria.refresh_from_db()
    assert (maria.exchanges, maria.needs_human, maria.handoff_reason) == (2, False, "")
    assert Message.objects.filter(direction="in", kind="reaction").count() == 4


def test_an_edit_keeps_the_new_words_on_the_original_message(maria, post, say, outbox):
    original = say("Quanto custa o frete?")

    def edits_it(payload: dict[str, Any]) -> None:
        edit = first_message(payload)["edit"]
        edit["original_message_id"] = edit["message"]["context"]["id"] = original.whatsapp_message_id

    post("edit", change=edits_it)

    original.refresh_from_db()
    assert original.text == "Quanto custa o frete?"
    assert original.metadata["edited_text"] == "Quanto custa o frete pra Florianópolis?"
    assert len(outbox) == 1, "the edit itself is not answered"


def test_a_revoke_marks_the_original_as_deleted_by_the_customer(maria, post, say, outbox):
    original = say("Quanto custa o frete?")

    post(
        "revoke",
        change=lambda p: first_message(p)["revoke"].update(original_message_id=original.whatsapp_message_id),
    )

    original.refresh_from_db()
    assert original.metadata["revoked_at"] == NOW.isoformat()
    assert len(outbox) == 1


def test_a_played_status_is_applied_quietly(post, caplog):
    post("status_played")

    assert not WebhookEvent.objects.exists()
    assert "unusable" not in caplog.text


def test_errors_meta_reports_about_the_account_are_kept_for_ops(post):
    post("value_errors")

    event = WebhookEvent.objects.get()
    assert event.processed
    assert "130429" in event.error and "Rate limit hit" in event.error


# --- Captions are the customer's words; wordless media gets one question ---


@pytest.mark.parametrize("name", ["image", "video_caption", "document_caption"])
def test_a_caption_is_read_and_answered(maria, post, outbox, name):
    def frete(payload: dict[str, Any]) -> None:
        message = first_message(payload)
        message[message["type"]]["caption"] = "quanto fica o frete?"

    payload = post(name, change=frete)

    assert stored(payload).text == "quanto fica o frete?"
    [(to, reply)] = sent(outbox)
    assert to == MARIA
    assert reply not in (agent.ASK_FOR_TEXT, agent.ASK_WHAT_YOU_NEED)
    assert maria.abandonment.payment_link in reply
    maria.refresh_from_db()
    assert maria.exchanges == 2


def test_media_without_words_gets_one_question_per_conversation_and_no_exchange(maria, post, outbox):
    post("image_no_caption")
    post("location")
    post("image_no_caption")

    assert sent(outbox) == [(MARIA, agent.ASK_WHAT_YOU_NEED)]
    maria.refresh_from_db()
    assert maria.exchanges == 1
    assert maria.last_user_message_at == NOW


# --- Business-scoped user ids ---


def test_a_bsuid_only_parar_from_a_known_customer_opts_them_out_and_their_next_cart_is_skipped(
    maria, post, post_signed, outbox
):
    post("text_with_bsuid")  # Meta sends both ids once: Sara keeps the BSUID on Maria
    customer = maria.customer
    customer.refresh_from_db()
    assert (customer.whatsapp_user_id, customer.whatsapp_username) == (BSUID, "maria.silva")
    outbox.clear()

    post("text_bsuid_only")  # "PARAR", from the BSUID alone

    customer.refresh_from_db()
    assert (customer.opted_out, customer.opted_out_reason) == (True, "keyword")
    maria.refresh_from_db()
    assert (maria.status, maria.close_reason) == ("closed", "opted_out")
    assert sent(outbox) == [(MARIA, agent.FAREWELL)]
    outbox.clear()

    response = abandonment_for(post_signed, MARIA, "ab-after-parar")

    assert response.json()["status"] == "skipped"
    assert outbox == []


def test_a_bsuid_only_parar_from_someone_unknown_becomes_a_blocked_identity(post, outbox):
    post("text_bsuid_only")

    person = Customer.objects.get()
    assert (person.phone, person.whatsapp_user_id) == (None, BSUID)
    assert (person.opted_out, person.opted_out_reason) == (True, "keyword")
    assert outbox == []
    assert Message.objects.get(direction="in").status == Message.Status.PROCESSED


def test_a_question_from_the_bsuid_alone_is_answered_on_the_customers_phone(maria, post, outbox):
    Customer.objects.filter(pk=maria.customer_id).update(whatsapp_user_id=BSUID)

    post("text_bsuid_only", change=lambda p: first_message(p)["text"].update(body="Tem desconto no Pix?"))

    [(to, reply)] = sent(outbox)
    assert to == MARIA
    assert maria.abandonment.payment_link in reply


def test_a_user_id_update_moves_the_bsuid_and_the_new_one_finds_the_customer(maria, post, outbox):
    Customer.objects.filter(pk=maria.customer_id).update(whatsapp_user_id=BSUID)

    post("user_id_update")
    post(
        "text_bsuid_only",
        change=lambda p: (
            first_message(p).update(from_user_id=NEW_BSUID),
            p["entry"][0]["changes"][0]["value"]["contacts"][0].update(user_id=NEW_BSUID),
        ),
    )

    maria.customer.refresh_from_db()
    assert maria.customer.whatsapp_user_id == NEW_BSUID
    assert maria.customer.opted_out, "the PARAR under the new BSUID reached Maria"
    assert sent(outbox) == [(MARIA, agent.FAREWELL)]
    assert Customer.objects.count() == 1


# --- Meta's marketing preference ---


def test_a_marketing_stop_in_whatsapp_opts_the_customer_out_and_the_pending_follow_up_never_goes(
    maria, post, post_signed, outbox
):
    follow_up = OutboundMessageFactory(
        conversation=maria, purpose=Message.Purpose.FOLLOWUP, kind=Message.Kind.TEMPLATE, status="pending"
    )

    post("user_preferences_stop")

    customer = maria.customer
    customer.refresh_from_db()
    assert (customer.opted_out, customer.opted_out_reason) == (True, "meta_marketing_stop")
    maria.refresh_from_db()
    assert (maria.status, maria.close_reason) == ("closed", "opted_out")
    send_message.delay(follow_up.pk)
    follow_up.refresh_from_db()
    assert (follow_up.status, follow_up.error_code) == ("failed", "opted_out")
    assert outbox == [], "no farewell: the person turned marketing off in WhatsApp itself"
    assert abandonment_for(post_signed, MARIA, "ab-after-stop").json()["status"] == "skipped"


def test_a_marketing_resume_is_recorded_and_lifts_no_opt_out(maria, post, outbox):
    post("user_preferences_stop")
    post("user_preferences_resume")

    maria.customer.refresh_from_db()
    assert maria.customer.opted_out
    kinds = list(Message.objects.filter(direction="in").values_list("kind", "status"))
    assert kinds == [("user_preferences", "processed"), ("user_preferences", "processed")]


def test_the_same_marketing_stop_delivered_twice_is_stored_once(maria, post):
    post("user_preferences_stop")
    post("user_preferences_stop")

    assert Message.objects.filter(direction="in").count() == 1


# --- A number change ---


def test_a_number_change_moves_the_customer_and_nothing_more_reaches_the_old_number(maria, post, outbox, say):
    Customer.objects.filter(pk=maria.customer_id).update(whatsapp_user_id=BSUID)
    queued = OutboundMessageFactory(
        conversation=maria, text="Seu link: https://pay.example.com/cart/123", status="pending"
    )

    post("system_user_changed_number")

    assert outbox == [], "a system notice is not answered"
    customer = Customer.objects.get(pk=maria.customer_id)
    assert (customer.phone, customer.whatsapp_user_id) == (MARIA_NEW, NEW_BSUID)
    send_message.delay(queued.pk)
    say("E o frete?", wa_id=MARIA_NEW.lstrip("+"))
    assert [to for to, _ in sent(outbox)] == [MARIA_NEW, MARIA_NEW]
    maria.refresh_from_db()
    assert maria.is_open


def test_a_number_change_to_a_number_another_record_holds_stops_the_old_conversation(maria, post, outbox):
    ConversationFactory(abandonment__customer__phone=MARIA_NEW)
    Customer.objects.filter(pk=maria.customer_id).update(opted_out=True, opted_out_reason="keyword")
    queued = OutboundMessageFactory(conversation=maria, text="Oi", status="pending")

    post("system_user_changed_number")

    maria.refresh_from_db()
    assert (maria.status, maria.close_reason) == ("closed", "number_changed")
    queued.refresh_from_db()
    assert queued.status == Message.Status.FAILED
    assert Customer.objects.get(phone=MARIA_NEW).opted_out, "the opt-out follows the person"
    assert outbox == []


def test_a_bsuid_change_notice_moves_the_bsuid(maria, post, outbox):
    Customer.objects.filter(pk=maria.customer_id).update(whatsapp_user_id=BSUID)

    post("system_user_changed_user_id")

    maria.customer.refresh_from_db()
    assert maria.customer.whatsapp_user_id == NEW_BSUID
    assert outbox == []


# --- Read receipt with typing indicator ---


def receipt_body(wamid: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": wamid,
        "typing_indicator": {"type": "text"},
    }


def test_the_read_receipt_reaches_graph_before_the_reply(maria, graph, say):
    graph.add(responses.POST, GRAPH_URL, json={"success": True})
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.reply"))

    inbound = say("Tem certificado?")

    bodies = [json.loads(call.request.body) for call in graph.calls]
    assert bodies[0] == receipt_body(inbound.whatsapp_message_id)
    assert bodies[1]["type"] == "text" and bodies[1]["to"] == MARIA
    assert len(bodies) == 2


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"error": {"message": "Service temporarily unavailable", "code": 2}}},
        {"body": requests.exceptions.ReadTimeout("read timed out")},
    ],
    ids=["http_500", "timeout"],
)
def test_a_failed_read_receipt_is_not_retried_and_does_not_block_the_reply(maria, graph, say, failure):
    graph.add(responses.POST, GRAPH_URL, **failure)
    graph.add(responses.POST, GRAPH_URL, json=graph_ok("wamid.reply"))

    say("Tem certificado?")

    reply = Message.objects.get(direction="out", conversation=maria)
    assert (reply.status, reply.whatsapp_message_id) == (Message.Status.SENT, "wamid.reply")
    assert len(graph.calls) == 2, "the receipt is not retried"


def test_only_messages_sara_answers_are_marked_read(maria, post, say):
    inbound = say("Tem certificado?")
    post("reaction")
    post("sticker")

    assert console.read_receipts == [inbound.whatsapp_message_id]
