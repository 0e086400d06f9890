"""Voice notes to text through the openai SDK's transcription endpoint, within a deadline."""

from __future__ import annotations

import logging
import time
from concurrent.futures import TimeoutError as FutureTimeout

import openai
from django.conf import settings

from core import metrics
from sara.llm import openai_client

logger = logging.getLogger(__name__)

# WhatsApp voice notes are Ogg/Opus; the endpoint tells formats apart by the file's extension.
EXTENSIONS = {
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/aac": "m4a",
    "audio/amr": "amr",
    "audio/wav": "wav",
    "audio/webm": "webm",
}


class TranscriptionFailed(Exception):
    pass


def transcribe(audio: bytes, *, mime_type: str, client: openai.OpenAI | None = None) -> str:
    """The Portuguese transcript of a voice note; TranscriptionFailed on timeout, error or silence."""
    started = time.monotonic()
    # As with interpretations, the future bounds the whole call, not each network phase.
    future = openai_client._EXECUTOR.submit(
        _create, client or openai_client._default_client(), audio, mime_type
    )
    try:
        text = future.result(timeout=settings.OPENAI_TRANSCRIBE_TIMEOUT_SECONDS)
    except (FutureTimeout, openai.OpenAIError, ValueError, TypeError) as exc:
        metrics.TRANSCRIPTIONS.labels("failed").inc()
        logger.warning(
            "transcription failed",
            extra={"error": exc.__class__.__name__, "elapsed_ms": round((time.monotonic() - started) * 1000)},
        )
        raise TranscriptionFailed(exc.__class__.__name__) from exc
    if not text:
        metrics.TRANSCRIPTIONS.labels("empty").inc()
        raise TranscriptionFailed("empty transcript")
    metrics.TRANSCRIPTIONS.labels("ok").inc()
    return text


def _create(client: openai.OpenAI, audio: bytes, mime_type: str) -> str:
    extension = EXTENSIONS.get(mime_type.split(";")[0].strip().lower(), "ogg")
    result = client.audio.transcriptions.create(
        model=settings.OPENAI_TRANSCRIBE_MODEL,
        file=(f"voice.{extension}", audio, mime_type.split(";")[0].strip() or "audio/ogg"),
        language="pt",
        timeout=settings.OPENAI_TRANSCRIBE_TIMEOUT_SECONDS,
    )
    return str(getattr(result, "text", "") or "").strip()
