"""The WhatsApp client: a setting picks the backend, like Django's EMAIL_BACKEND."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from messaging.whatsapp.base import (
    Media,
    MediaUnavailable,
    OutboundMessage,
    SendResult,
    TemplateInfo,
    WhatsAppBackend,
    WhatsAppError,
)

__all__ = [
    "Media",
    "MediaUnavailable",
    "OutboundMessage",
    "SendResult",
    "TemplateInfo",
    "WhatsAppBackend",
    "WhatsAppError",
    "get_backend",
]


@cache
def _backend(path: str) -> WhatsAppBackend:
    return import_string(path)()


def get_backend() -> WhatsAppBackend:
    return _backend(settings.WHATSAPP_BACKEND)
