"""Voice notes (SPEC §5): fetched from Graph's media endpoint, transcribed, read like text.

Graph is faked with `responses` (the media's two GETs and the reply's POST), OpenAI with an
httpx.MockTransport answering both the transcription and the chat completion.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import responses
from django.utils import timezone
from responses import matchers

from messaging.models import Message
from sara import agent
from tests.conftest import GRAPH_URL, first_message, graph_ok, meta_payload, openai_completion

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]

NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)
PHONE = "+5548999327881"
MEDIA_ID = "1051923746502817"
MEDIA_URL = (
    f"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid={MEDIA_ID}&ext=1763785560&hash=ATsP0wq7"
)
OGG = b"OggS\x00\x02" + bytes(200)
BEARER = matchers.header_matcher({"Authorization": "Bearer test-token"})


@pytest.fixture
def speak(post_signed, django_capture_on_commit_callbacks):
    """Maria sends the recorded voice note (a fresh wamid, now)."""

    def send() -> Message:
        payload = meta_payload("audio")
        message = first_message(payload)
        message["id"] = f"wamid.voice.{uuid.uuid4().hex}"
        message["timestamp"] = str(int(timezone.now().timestamp()))
        with django_capture_on_commit_callbacks(execute=True):
            assert post_signed("/webhook/messages", payload).status_code == 200
        return Message.objects.get(whatsapp_message_id=message["id"])

    return send


def media_on_graph(graph: responses.RequestsMock) -> None:
    graph.add(
        responses.GET,
        f"https://graph.test/v21.0/{MEDIA_ID}",
        json={
            "messaging_product": "whatsapp",
            "url": MEDIA_URL,
            "mime_type": "audio/ogg",
            "sha256": "3zK1pQ0xv5Tg7m9Yw2LhJcVbNfRdSa8eU4oI6yHtGqE=",
            "file_size": str(len(OGG)),
            "id": MEDIA_ID,
        },
        match=[BEARER],
    )
    graph.add(responses.GET, MEDIA_URL, body=OGG, content_type="audio/ogg", match=[BEARER])


def reply_accepted(graph: responses.RequestsMock) -> list[str]:
    """The reply's POST to Graph; returns the list its text bodies are collected in."""
    bodies: list[str] = []

    def accept(request):
        bodies.append(json.loads(request.body)["text"]["body"])
        return (200, {}, json.dumps(graph_ok()))

    graph.add_callback(responses.POST, GRAPH_URL, callback=accept, content_type="application/json")
    return bodies


def openai_server(transcript: str | None, chat: dict | None = None):
    """Transcriptions answer `transcript` (None: a 500); chat completions answer `chat`."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/audio/transcriptions"):
            if transcript is None:
                return httpx.Response(
                    500, json={"error": {"message": "server error", "type": "server_error"}}
                )
            return httpx.Response(200, json={"text": transcript})
        return openai_completion(chat or {"intent": "question", "sentiment": "neutral", "reply": "Tem sim!"})

    return handle


def test_a_voice_note_is_transcribed_stored_as_text_and_answered(
    conversation, speak, graph, openai_fake, settings
):
    settings.OPENAI_TRANSCRIBE_MODEL = "gpt-4o-mini-transcribe"
    media_on_graph(graph)
    sent = reply_accepted(graph)
    seen = openai_fake(
        openai_server(
            "Oi, esse curso tem certificado?",
            {"intent": "question", "sentiment": "positive", "reply": "Tem sim, com 40 horas!"},
        )
    )

    inbound = speak()

    transcription, chat = seen
    assert transcription.url == "https://openai.test/v1/audio/transcriptions"
    form = transcription.content
    assert b'name="model"\r\n\r\ngpt-4o-mini-transcribe' in form
    assert b'name="language"\r\n\r\npt' in form
    assert OGG in form and b'filename="voice.ogg"' in form
    document = json.loads(json.loads(chat.content)["messages"][1]["content"].split("\n", 1)[1])
    assert document["mensagem_do_cliente"] == "Oi, esse curso tem certificado?"
    inbound.refresh_from_db()
    assert inbound.kind == Message.Kind.AUDIO
    assert inbound.text == "Oi, esse curso tem certificado?"
    assert inbound.metadata["transcribed"] is True
    assert (inbound.status, inbound.intent) == (Message.Status.PROCESSED, "question")
    assert sent == ["Tem sim, com 40 horas!\n\nFinalize sua compra aqui: https://pay.example.com/cart/123"]


def test_a_spoken_stop_opts_the_customer_out_like_a_written_one(conversation, speak, graph, openai_fake):
    media_on_graph(graph)
    sent = reply_accepted(graph)
    openai_fake(openai_server("Parar."))

    speak()

    conversation.customer.refresh_from_db()
    assert conversation.customer.opted_out is True
    assert sent == [agent.FAREWELL]


def test_without_a_key_a_voice_note_gets_the_ask_for_text_reply_and_nothing_is_fetched(
    conversation, speak, graph, settings
):
    settings.OPENAI_API_KEY = ""
    sent = reply_accepted(graph)

    inbound = speak()

    assert sent == [agent.ASK_FOR_TEXT]
    inbound.refresh_from_db()
    assert inbound.text == "" and "transcribed" not in inbound.metadata


def test_a_failed_transcription_gets_the_ask_for_text_reply(conversation, speak, graph, openai_fake):
    media_on_graph(graph)
    sent = reply_accepted(graph)
    openai_fake(openai_server(None))

    inbound = speak()

    assert sent == [agent.ASK_FOR_TEXT]
    inbound.refresh_from_db()
    assert inbound.metadata["transcription_error"] == "InternalServerError"


def test_a_transcription_that_cannot_reach_openai_gets_the_ask_for_text_reply(
    conversation, speak, graph, openai_fake
):
    media_on_graph(graph)
    sent = reply_accepted(graph)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    openai_fake(refused)

    inbound = speak()

    assert sent == [agent.ASK_FOR_TEXT]
    inbound.refresh_from_db()
    assert inbound.metadata["transcription_error"] == "APIConnectionError"


def test_media_graph_cannot_find_is_not_sent_for_transcription(conversation, speak, graph, openai_fake):
    graph.add(
        responses.GET,
        f"https://graph.test/v21.0/{MEDIA_ID}",
        status=404,
        json={"error": {"message": "Unsupported get request.", "type": "GraphMethodException", "code": 100}},
    )
    sent = reply_accepted(graph)
    seen = openai_fake(openai_server("nunca chamado"))

    speak()

    assert seen == []
    assert sent == [agent.ASK_FOR_TEXT]


def test_the_console_backend_has_no_media_and_asks_for_text(conversation, speak, outbox, openai_fake):
    seen = openai_fake(openai_server("nunca chamado"))

    speak()

    assert seen == []
    assert [m.text for _, m in outbox] == [agent.ASK_FOR_TEXT]
