"""Meta's WhatsApp Cloud API over `requests`: the only code that knows Graph URLs and JSON."""

from __future__ import annotations

import logging
import os
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from messaging.whatsapp.base import (
    Media,
    MediaUnavailable,
    OutboundMessage,
    SendResult,
    WhatsAppBackend,
    WhatsAppError,
)

logger = logging.getLogger(__name__)

TEXT_LIMIT = 4096
# WhatsApp caps audio at 16 MB; anything larger is not a voice note worth transcribing.
MEDIA_MAX_BYTES = 16 * 1024 * 1024


def graph_payload(message: OutboundMessage) -> dict[str, Any]:
    """The exact JSON Graph expects for a text or a template message."""
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to,
    }
    if message.is_template:
        template: dict[str, Any] = {
            "name": message.template_name,
            "language": {"code": message.template_language},
        }
        if message.template_parameters:
            template["components"] = [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": p} for p in message.template_parameters],
                }
            ]
        payload["type"] = "template"
        payload["template"] = template
    else:
        payload["type"] = "text"
        payload["text"] = {"preview_url": True, "body": message.text[:TEXT_LIMIT]}
    return payload


class CloudAPIBackend(WhatsAppBackend):
    def __init__(self) -> None:
        # One pooled session per process: keep-alive connections to Graph between sends.
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}"
        # As many keep-alive connections as worker threads may send at once (requests keeps 10,
        # and past that opens and drops a TCP + TLS connection per send).
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.CELERY_WORKER_CONCURRENCY)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # With trust_env, requests reads the environment (proxies and no_proxy, the CA bundle,
        # ~/.netrc) again for every request: a fifth of a send's CPU (bench/RESULTS.md). Read
        # once here instead; media downloads, on other hosts, ask for their own proxies.
        self.session.trust_env = False
        self.session.proxies = requests.utils.get_environ_proxies(self.url)
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True

    @property
    def url(self) -> str:
        base = settings.WHATSAPP_API_BASE_URL.rstrip("/")
        return f"{base}/{settings.WHATSAPP_API_VERSION}/{settings.WHATSAPP_PHONE_NUMBER_ID}/messages"

    def send(self, message: OutboundMessage) -> SendResult:
        try:
            response = self.session.post(
                self.url, json=graph_payload(message), timeout=settings.WHATSAPP_TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            raise WhatsAppError(f"{exc.__class__.__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400 or "error" in body:
            raise _error_from(response.status_code, body)
        try:
            return SendResult(wamid=body["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise WhatsAppError(
                "Graph answered without a message id.", http_status=response.status_code
            ) from exc

    def mark_read(self, wamid: str) -> None:
        """Graph's read receipt with the typing indicator: one POST to the same messages endpoint."""
        payload = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": wamid,
            "typing_indicator": {"type": "text"},
        }
        try:
            response = self.session.post(
                self.url, json=payload, timeout=settings.WHATSAPP_READ_RECEIPT_TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            raise WhatsAppError(f"{exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise _error_from(response.status_code, body if isinstance(body, dict) else {})

    def fetch_media(self, media_id: str) -> Media:
        """Graph's two steps: GET /{media-id} for a short-lived URL, then that URL, both with the token."""
        base = settings.WHATSAPP_API_BASE_URL.rstrip("/")
        try:
            info = self.session.get(
                f"{base}/{settings.WHATSAPP_API_VERSION}/{media_id}",
                timeout=settings.WHATSAPP_TIMEOUT_SECONDS,
            )
            info.raise_for_status()
            described = info.json()
            if int(described.get("file_size") or 0) > MEDIA_MAX_BYTES:
                raise MediaUnavailable(f"media {media_id} is larger than {MEDIA_MAX_BYTES} bytes")
            download = self.session.get(
                described["url"],
                timeout=settings.WHATSAPP_TIMEOUT_SECONDS,
                proxies=requests.utils.get_environ_proxies(described["url"]),
            )
            download.raise_for_status()
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise MediaUnavailable(f"media {media_id}: {exc.__class__.__name__}") from exc
        if len(download.content) > MEDIA_MAX_BYTES:
            raise MediaUnavailable(f"media {media_id} is larger than {MEDIA_MAX_BYTES} bytes")
        mime_type = described.get("mime_type") or download.headers.get("Content-Type", "")
        return Media(content=download.content, mime_type=str(mime_type))


def _error_from(http_status: int, body: dict[str, Any]) -> WhatsAppError:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return WhatsAppError(f"HTTP {http_status}", http_status=http_status)
    code = error.get("code")
    details = (
        (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    )
    detail = " — ".join(str(part) for part in (error.get("message"), details) if part)
    return WhatsAppError(
        detail or f"HTTP {http_status}",
        code=code if isinstance(code, int) else None,
        http_status=http_status,
    )
