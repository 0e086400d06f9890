"""What a message keeps beside its text reaches staff as Portuguese "label: value" lines, never JSON."""

from __future__ import annotations

import pytest
from django.test import Client

from messaging.models import Message, StatusUpdate, WebhookEvent
from tests.factories import InboundMessageFactory, OutboundMessageFactory

pytestmark = pytest.mark.django_db


def message_page(client: Client, message: Message) -> str:
    return client.get(f"/admin/messaging/message/{message.pk}/change/").content.decode()


def test_a_replys_details_are_portuguese_words_not_json(ops_client):
    reply = OutboundMessageFactory(
        metadata={
            "in_reply_to": 41,
            "discount_offered": False,
            "fallback": True,
            "ai_error": "timeout",
            "tokens": {"in": 812, "out": 64, "cached": 0},
            "guardrail": {"violations": ["url", "coupon"], "dropped_sentences": 1, "action": "dropped"},
            "guardrail_exception": ["amount"],
            "staff_name": "Ana Souza",
            "mystery_key": "valor estranho",
        }
    )

    html = message_page(ops_client, reply)

    assert '{"' not in html and "&quot;" not in html
    assert "<strong>falha da IA (as regras responderam):</strong> sem resposta a tempo" in html
    assert "<strong>respondida pelas regras:</strong> sim" in html
    assert "<strong>desconto oferecido:</strong> não" in html
    assert "<strong>violações:</strong> link que não é da loja, cupom que a loja não configurou" in html
    assert "<strong>o que foi feito:</strong> frases removidas" in html
    assert "<strong>exceção confirmada pela equipe para:</strong> valor que não é o do carrinho" in html
    assert "<strong>enviada por:</strong> Ana Souza" in html
    assert "<strong>entrada:</strong> 812" in html
    # A key nobody named yet is listed plainly.
    assert "<strong>mystery_key:</strong> valor estranho" in html


def test_a_voice_messages_transcription_and_whatsapps_original_read_as_fields(ops_client):
    voice = InboundMessageFactory(
        kind=Message.Kind.AUDIO,
        metadata={
            "whatsapp": {"type": "audio", "audio": {"id": "media-1", "mime_type": "audio/ogg"}},
            "transcribed": True,
            "transcribe_model": "gpt-4o-mini-transcribe",
            "profile_name": "Carla",
        },
    )

    html = message_page(ops_client, voice)

    assert '{"' not in html
    assert "<strong>mensagem de voz transcrita:</strong> sim" in html
    assert "<strong>nome no perfil do WhatsApp:</strong> Carla" in html
    assert "<strong>mensagem como o WhatsApp a enviou:</strong>" in html
    assert "<strong>mime_type:</strong> audio/ogg" in html


def test_metas_status_errors_and_pricing_read_as_fields(ops_client):
    update = StatusUpdate.objects.create(
        whatsapp_message_id="wamid.out.1",
        status=Message.Status.FAILED,
        errors=[{"code": 131047, "title": "Re-engagement message"}],
        pricing={"billable": True, "category": "marketing", "pricing_model": "PMP"},
    )

    html = ops_client.get(f"/admin/messaging/statusupdate/{update.pk}/change/").content.decode()

    assert '{"' not in html and "[{" not in html
    assert "<strong>código:</strong> 131047" in html
    assert "<strong>cobrável:</strong> sim" in html
    assert "<strong>categoria:</strong> marketing" in html


def test_the_webhook_events_page_keeps_the_raw_payload_in_a_scrolling_box(ops_client):
    event = WebhookEvent.objects.create(type="whatsapp", external_id="e-1", payload={"entry": [{"id": "1"}]})

    html = ops_client.get(f"/admin/messaging/webhookevent/{event.pk}/change/").content.decode()

    assert '<pre class="sara-json">' in html
