"""Meta's webhook (SPEC §4.2, §4.3): the handshake, signatures, and every delivered message stored once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.http import MiB, signature_of
from messaging.models import Message, WebhookEvent
from messaging.tasks import fan_out_event, sweep_stuck
from recovery.models import Conversation
from sara import agent
from tests.conftest import at_once, first_message, meta_payload, signed
from tests.factories import ConversationFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db

WEBHOOK = "/webhook/messages"
MARIA = "+5548999327881"
NOW = datetime(2025, 11, 22, 14, 0, tzinfo=UTC)

TEXT_LIKE = [
    ("text", "text", "Quanto custa o frete?"),
    ("button", "button", "Quero finalizar"),
    ("interactive_button_reply", "interactive", "Pagar agora"),
    ("interactive_list_reply", "interactive", "Pix"),
]
NON_TEXT = [
    ("image", "image", "É esse modelo aqui?"),
    ("audio", "audio", ""),
    ("reaction", "reaction", "👍"),
    ("location", "location", ""),
    ("unsupported", "unsupported", ""),
]


def written_now(payload: dict) -> dict:
    """Every message in the body written at NOW, so Sara's reply falls inside the 24 h window."""
    for entry in payload["entry"]:
        for change in entry["changes"]:
            for message in change["value"].get("messages", []):
                message["timestamp"] = str(int(NOW.timestamp()))
    return payload


def inbound() -> list[Message]:
    return list(Message.objects.filter(direction=Message.Direction.IN))


def nothing_stored() -> bool:
    return not Message.objects.exists() and not WebhookEvent.objects.exists()


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def maria_conversation(frozen):
    return ConversationFactory(abandonment__customer__phone=MARIA)


# --- GET: Meta's verification handshake (§4.2) ---


@pytest.fixture
def verify_token(settings):
    settings.WHATSAPP_VERIFY_TOKEN = "meta-verify-token"
    return settings.WHATSAPP_VERIFY_TOKEN


def test_handshake_with_the_right_token_echoes_the_challenge_as_plain_text(client, verify_token):
    response = client.get(
        WEBHOOK, {"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": "1158201444"}
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong-token", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "meta-verify-token-and-more", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "meta-verify-token", "hub.challenge": "1"},
        {"hub.verify_token": "meta-verify-token", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {},
    ],
    ids=["wrong-token", "longer-token", "wrong-mode", "no-mode", "no-token", "nothing"],
)
def test_handshake_without_the_right_mode_and_token_is_refused(client, verify_token, query):
    response = client.get(WEBHOOK, query)

    assert response.status_code == 403
    assert b"1" not in response.content


def test_handshake_is_refused_when_no_verify_token_is_configured(client, settings):
    settings.WHATSAPP_VERIFY_TOKEN = ""

    response = client.get(WEBHOOK, {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"})

    assert response.status_code == 403


# --- POST: signature and size, checked before anything is stored ---


def test_a_post_without_signature_is_refused_and_nothing_is_stored(client):
    body = json.dumps(meta_payload("text")).encode()

    response = client.post(WEBHOOK, body, content_type="application/json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "HMAC_VERIFICATION_FAILED"
    assert nothing_stored()


def header(signature: str) -> dict[str, str]:
    return {"HTTP_X_HUB_SIGNATURE_256": signature}


@pytest.mark.parametrize(
    "signature_for",
    [
        lambda body: signed(body, "not-the-app-secret"),
        lambda body: signed(body + b" ", django_settings.WHATSAPP_APP_SECRET),
        lambda body: header(signature_of(django_settings.WHATSAPP_APP_SECRET, body).removeprefix("sha256=")),
        lambda body: header("sha256="),
        lambda body: header("sha256=zz"),
    ],
    ids=["other-secret", "other-body", "no-prefix", "empty-digest", "not-hex"],
)
def test_a_post_with_a_bad_signature_is_refused_and_nothing_is_stored(client, signature_for):
    body = json.dumps(meta_payload("text")).encode()

    response = client.post(WEBHOOK, body, content_type="application/json", **signature_for(body))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "HMAC_VERIFICATION_FAILED"
    assert nothing_stored()


def padded_to(size: int) -> bytes:
    """text.json padded with trailing spaces (still valid JSON) to exactly `size` bytes."""
    body = json.dumps(meta_payload("text")).encode()
    return body + b" " * (size - len(body))


def test_a_body_over_five_mib_is_refused_with_413_and_nothing_is_stored(post_signed):
    response = post_signed(WEBHOOK, padded_to(5 * MiB + 1))

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert nothing_stored()


def test_a_body_of_exactly_five_mib_is_accepted(post_signed):
    response = post_signed(WEBHOOK, padded_to(5 * MiB))

    assert response.status_code == 200
    assert [m.text for m in inbound()] == ["Quanto custa o frete?"]


# --- POST: inbound messages ---


def test_the_message_is_stored_before_the_answer_and_processed_after_commit(
    post_signed, outbox, maria_conversation, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_signed(WEBHOOK, written_now(meta_payload("text")))

    assert response.status_code == 200
    [message] = inbound()
    assert message.status == Message.Status.RECEIVED
    assert outbox == []
    assert len(callbacks) == 1

    with django_capture_on_commit_callbacks(execute=True):
        callbacks[0]()

    message.refresh_from_db()
    assert message.status == Message.Status.PROCESSED
    assert message.conversation == maria_conversation
    assert len(outbox) == 1


@pytest.mark.parametrize(("name", "kind", "text"), TEXT_LIKE + NON_TEXT)
def test_each_recorded_message_is_stored_once_with_its_kind_and_text_and_queued(
    post_signed, name, kind, text, django_capture_on_commit_callbacks
):
    payload = meta_payload(name)

    with django_capture_on_commit_callbacks() as callbacks:
        response = post_signed(WEBHOOK, payload)

    assert response.status_code == 200
    assert response.json() == {"status": "received"}
    [message] = inbound()
    assert (message.kind, message.text, message.wa_id) == (kind, text, "5548999327881")
    assert message.whatsapp_message_id == first_message(payload)["id"]
    assert message.whatsapp_timestamp == datetime.fromtimestamp(int(first_message(payload)["timestamp"]), UTC)
    assert message.status == Message.Status.RECEIVED
    assert len(callbacks) == 1
    assert not WebhookEvent.objects.exists()


def test_a_voice_note_that_cannot_be_transcribed_gets_the_short_ask_for_text_reply(
    post_signed, outbox, maria_conversation, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(WEBHOOK, written_now(meta_payload("audio")))

    assert [(m.to, m.text) for _, m in outbox] == [(MARIA, agent.ASK_FOR_TEXT)]


@pytest.mark.parametrize(("name", "kind", "text"), TEXT_LIKE)
def test_a_text_button_or_interactive_reply_is_answered_as_text(
    post_signed, outbox, maria_conversation, name, kind, text, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_signed(WEBHOOK, written_now(meta_payload(name)))

    [(_, reply)] = outbox
    assert reply.to == MARIA
    assert reply.text != agent.ASK_FOR_TEXT
    assert maria_conversation.abandonment.payment_link in reply.text


@pytest.mark.parametrize("deliveries", [2, 3])
def test_the_same_message_delivered_again_is_stored_once_and_answered_once(
    post_signed, outbox, maria_conversation, deliveries, django_capture_on_commit_callbacks
):
    payload = written_now(meta_payload("text"))

    for _ in range(deliveries):
        with django_capture_on_commit_callbacks(execute=True):
            assert post_signed(WEBHOOK, payload).status_code == 200

    assert len(inbound()) == 1
    assert len(outbox) == 1
    maria_conversation.refresh_from_db()
    assert maria_conversation.exchanges == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_the_same_message_store_one_row_and_send_one_reply(outbox, frozen):
    ConversationFactory(abandonment__customer__phone=MARIA)
    body = json.dumps(written_now(meta_payload("text"))).encode()
    headers = signed(body, django_settings.WHATSAPP_APP_SECRET)
    threads_count = 6

    def deliver() -> int:
        return Client().post(WEBHOOK, body, content_type="application/json", **headers).status_code

    statuses = at_once([deliver] * threads_count)

    assert statuses == [200] * threads_count
    assert len(inbound()) == 1
    [(_, reply)] = outbox
    assert reply.to == MARIA
    assert Conversation.objects.get().exchanges == 1


def test_a_message_from_an_unknown_number_is_stored_and_gets_no_reply(
    post_signed, outbox, frozen, django_capture_on_commit_callbacks
):
    payload = written_now(meta_payload("text"))
    first_message(payload)["from"] = "5511912345678"

    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(WEBHOOK, payload)

    assert response.status_code == 200
    [message] = inbound()
    assert (message.wa_id, message.conversation, message.status) == ("5511912345678", None, "processed")
    assert outbox == []


# --- POST: batches ---

BATCH_STATUSES = {
    "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEkE5M0I0MEJBMEZEMjAyNTVEMQA=": ("sent", "delivered"),
    "wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEkEzQTMyNkFEMjczQzBFRjNFQgA=": ("delivered", "read"),
    "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEkU4MjkwQTEwOTcxNzk2NUQzRAA=": ("pending", "sent"),
    "wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEkY0RkExNUUwMTEyQzYwODNDQwA=": ("sent", "failed"),
}


def test_a_batch_stores_every_message_and_applies_every_status(
    post_signed, django_capture_on_commit_callbacks
):
    outbound = {
        wamid: OutboundMessageFactory(whatsapp_message_id=wamid, status=before)
        for wamid, (before, _) in BATCH_STATUSES.items()
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(WEBHOOK, meta_payload("batch"))

    assert response.status_code == 200
    assert sorted((m.wa_id, m.text, m.status) for m in inbound()) == [
        ("5511987654321", "Tem desconto no boleto?", "processed"),
        ("5548999327881", "Oi! Recebi a mensagem", "processed"),
        ("5548999327881", "Pode mandar o link de novo?", "processed"),
    ]
    for wamid, (_, after) in BATCH_STATUSES.items():
        outbound[wamid].refresh_from_db()
        assert outbound[wamid].status == after, wamid
    failed = outbound["wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEkY0RkExNUUwMTEyQzYwODNDQwA="]
    assert (failed.error_code, failed.error_detail) == (
        "131026",
        "Message undeliverable — Message Undeliverable.",
    )
    assert not WebhookEvent.objects.exists()


def large_batch(size: int) -> tuple[dict, list[str]]:
    """`size` updates over three entries: text messages from Maria, plus 6 statuses; and their wamids."""
    status_wamids = [f"wamid.out.{n}" for n in range(6)]
    message_count = size - len(status_wamids)
    entries = []
    for entry_number in range(3):
        messages = [
            {
                "from": "5548999327881",
                "id": f"wamid.in.{entry_number}.{n}",
                "timestamp": str(int(NOW.timestamp())),
                "type": "text",
                "text": {"body": f"mensagem {entry_number}.{n}"},
            }
            for n in range(entry_number, message_count, 3)
        ]
        statuses = [
            {
                "id": wamid,
                "status": "delivered",
                "timestamp": str(int(NOW.timestamp())),
                "recipient_id": "5548999327881",
            }
            for wamid in status_wamids[entry_number * 2 : entry_number * 2 + 2]
        ]
        entries.append(
            {
                "id": "102290129340398",
                "changes": [
                    {"value": {"messaging_product": "whatsapp", "messages": messages}, "field": "messages"},
                    {"value": {"messaging_product": "whatsapp", "statuses": statuses}, "field": "messages"},
                ],
            }
        )
    return {"object": "whatsapp_business_account", "entry": entries}, status_wamids


def test_a_large_batch_is_stored_as_one_event_then_fanned_out_by_the_task(
    post_signed, outbox, maria_conversation, settings, django_capture_on_commit_callbacks
):
    settings.SARA_INLINE_BATCH_LIMIT = 50
    payload, status_wamids = large_batch(60)
    for wamid in status_wamids:
        OutboundMessageFactory(whatsapp_message_id=wamid, status=Message.Status.SENT)

    with django_capture_on_commit_callbacks() as callbacks:
        response = post_signed(WEBHOOK, payload)

    assert response.status_code == 200
    [event] = WebhookEvent.objects.all()
    assert (event.type, event.processed, event.payload) == ("whatsapp", False, payload)
    assert inbound() == []

    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()

    event.refresh_from_db()
    assert (event.processed, event.error) == (True, "")
    assert len(inbound()) == 54
    assert all(m.status == Message.Status.PROCESSED for m in inbound())
    assert set(
        Message.objects.filter(whatsapp_message_id__in=status_wamids).values_list("status", flat=True)
    ) == {"delivered"}
    replies = len(outbox)
    assert replies >= 1

    with django_capture_on_commit_callbacks(execute=True):
        fan_out_event.delay(event.pk)
    # Even an event re-driven as unprocessed (an overlapping sweep) adds no row and no reply.
    WebhookEvent.objects.filter(pk=event.pk).update(processed=False)
    with django_capture_on_commit_callbacks(execute=True):
        fan_out_event.delay(event.pk)

    assert len(inbound()) == 54
    assert len(outbox) == replies


def test_a_large_batch_whose_fan_out_was_lost_is_stored_by_the_sweep(
    post_signed, frozen, settings, django_capture_on_commit_callbacks
):
    settings.SARA_INLINE_BATCH_LIMIT = 50
    payload, _ = large_batch(60)
    with django_capture_on_commit_callbacks():  # the queued fan-out never runs: Redis lost it
        post_signed(WEBHOOK, payload)
    assert inbound() == []

    frozen.shift(timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        sweep_stuck.delay()

    assert len(inbound()) == 54
    assert WebhookEvent.objects.get().processed is True


# --- POST: bodies Sara cannot use still answer 200 ---


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "unparseable body: JSONDecodeError"),
        (b"", "unparseable body: JSONDecodeError"),
        (b"\xff\xfe{}", "unparseable body"),
        (b'{"object": "whatsapp_business_account"}', "body has no entry list"),
        (b'{"entry": "everything"}', "body has no entry list"),
        (b"[]", "body has no entry list"),
        (b"null", "body has no entry list"),
        (b'{"entry": [{"changes": [{"value": {"messages": true}}]}]}', "messages is not a list"),
    ],
    ids=[
        "invalid-json",
        "empty",
        "not-utf8",
        "no-entry",
        "entry-not-list",
        "array",
        "null",
        "messages-not-list",
    ],
)
def test_an_unusable_body_is_answered_200_and_kept_with_its_error(post_signed, body, error):
    response = post_signed(WEBHOOK, body)

    assert response.status_code == 200
    [event] = WebhookEvent.objects.all()
    assert event.type == WebhookEvent.Type.WHATSAPP
    assert event.error.startswith(error)
    assert not Message.objects.exists()


def test_a_malformed_item_is_kept_with_its_error_and_the_rest_of_the_batch_is_stored(post_signed):
    payload = meta_payload("batch")
    del payload["entry"][0]["changes"][0]["value"]["messages"][0]["from"]

    response = post_signed(WEBHOOK, payload)

    assert response.status_code == 200
    assert sorted(m.text for m in inbound()) == ["Pode mandar o link de novo?", "Tem desconto no boleto?"]
    assert WebhookEvent.objects.get().error == "message without id or sender"


def test_a_lone_surrogate_in_the_text_is_stored_replaced(post_signed):
    body = json.dumps(meta_payload("text")).replace("Quanto custa o frete?", "Oi \\ud83d").encode()

    response = post_signed(WEBHOOK, body)

    assert response.status_code == 200
    assert [m.text for m in inbound()] == ["Oi ?"]


def test_an_escaped_emoji_is_stored_as_the_emoji(post_signed):
    body = json.dumps(meta_payload("reaction"))  # json.dumps escapes 👍 as a surrogate pair

    response = post_signed(WEBHOOK, body.encode())

    assert response.status_code == 200
    assert [m.text for m in inbound()] == ["👍"]


leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=6)
json_values = st.recursive(
    leaves,
    lambda c: st.lists(c, max_size=2) | st.dictionaries(st.text(max_size=4), c, max_size=2),
    max_leaves=6,
)
meta_items = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(
        ["id", "from", "type", "status", "timestamp", "text", "interactive", "errors"], json_values
    ),
)
meta_bodies = st.fixed_dictionaries(
    {
        "entry": st.lists(
            st.fixed_dictionaries(
                {
                    "changes": st.lists(
                        st.fixed_dictionaries(
                            {
                                "value": st.fixed_dictionaries(
                                    {},
                                    optional={
                                        "messages": st.lists(meta_items, max_size=2) | json_values,
                                        "statuses": st.lists(meta_items, max_size=2) | json_values,
                                    },
                                )
                            }
                        ),
                        max_size=2,
                    )
                }
            ),
            max_size=2,
        )
    }
)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=meta_bodies | json_values)
def test_any_signed_json_body_is_answered_200(post_signed, body):
    assert post_signed(WEBHOOK, body).status_code == 200
