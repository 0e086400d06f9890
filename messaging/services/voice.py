"""Voice notes read like text: fetched from WhatsApp, transcribed, stored as the message's text."""

from __future__ import annotations

import logging

from django.conf import settings

from messaging.models import Message
from messaging.whatsapp import MediaUnavailable, get_backend

logger = logging.getLogger(__name__)


def message_transcribe(*, message_id: int) -> bool:
    """Transcribe an unprocessed voice message once; False leaves it for the ask-for-text reply.

    Runs before the message is processed and outside any lock: the download and the
    transcription take seconds. Without an OpenAI key nothing is fetched.
    """
    message = Message.objects.filter(
        pk=message_id, direction=Message.Direction.IN, kind=Message.Kind.AUDIO, status=Message.Status.RECEIVED
    ).first()
    if message is None or message.metadata.get("transcribed") or not settings.OPENAI_API_KEY:
        return False
    media_id = ((message.metadata.get("whatsapp") or {}).get("audio") or {}).get("id")
    if not media_id:
        return False
    from sara.llm.transcribe import TranscriptionFailed, transcribe

    try:
        media = get_backend().fetch_media(str(media_id))
        text = transcribe(media.content, mime_type=media.mime_type)
    except (MediaUnavailable, TranscriptionFailed) as exc:
        logger.warning("voice message not transcribed", extra={"message_id": message_id, "error": str(exc)})
        _note(message, {"transcription_error": str(exc)[:200]})
        return False
    metadata = {**message.metadata, "transcribed": True, "transcribe_model": settings.OPENAI_TRANSCRIBE_MODEL}
    # Only while still unprocessed: a repeat that transcribed it first wins, nothing is overwritten.
    updated = Message.objects.filter(pk=message_id, status=Message.Status.RECEIVED).update(
        text=text, metadata=metadata
    )
    logger.info("voice message transcribed", extra={"message_id": message_id, "chars": len(text)})
    return bool(updated)


def _note(message: Message, fields: dict) -> None:
    Message.objects.filter(pk=message.pk, status=Message.Status.RECEIVED).update(
        metadata={**message.metadata, **fields}
    )
