"""Meta's WhatsApp Cloud API over `requests`: the only code that knows Graph URLs and JSON."""

from __future__ import annotations

import logging
import os
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from messaging.whatsapp import base
from messaging.whatsapp.events import json_object

logger = logging.getLogger(__name__)

TEXT_LIMIT = 4096
# WhatsApp caps audio at 16 MB; anything larger is not a voice note worth transcribing.
MEDIA_MAX_BYTES = 16 * 1024 * 1024


def graph_payload(message: base.OutboundMessage) -> dict[str, Any]:
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
        components: list[dict[str, Any]] = []
        if message.template_parameters:
            components.append(
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": p} for p in message.template_parameters],
                }
            )
        for index, button_payload in enumerate(message.template_buttons):
            components.append(
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": str(index),
                    "parameters": [{"type": "payload", "payload": button_payload}],
                }
            )
        if components:
            template["components"] = components
        payload["type"] = "template"
        payload["template"] = template
    else:
        payload["type"] = "text"
        payload["text"] = {"preview_url": True, "body": message.text[:TEXT_LIMIT]}
    return payload


def graph_url(path: str) -> str:
    return f"{settings.WHATSAPP_API_BASE_URL.rstrip('/')}/{settings.WHATSAPP_API_VERSION}/{path}"


class CloudAPIBackend(base.WhatsAppBackend):
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
        return graph_url(f"{settings.WHATSAPP_PHONE_NUMBER_ID}/messages")

    def send(self, message: base.OutboundMessage) -> base.SendResult:
        status, body = self._graph(
            "POST", self.url, json=graph_payload(message), timeout=settings.WHATSAPP_TIMEOUT_SECONDS
        )
        try:
            return base.SendResult(wamid=body["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise base.WhatsAppError("Graph answered without a message id.", http_status=status) from exc

    def _graph(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        """One Graph call: its HTTP status and JSON ({} when the answer is not JSON). Network
        failures and Graph's errors (an HTTP error, or an `error` object) raise WhatsAppError."""
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise base.WhatsAppError(f"{exc.__class__.__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400 or (isinstance(body, dict) and "error" in body):
            raise _error_from(response.status_code, body)
        return response.status_code, body

    def mark_read(self, wamid: str) -> None:
        """Graph's read receipt with the typing indicator: one POST to the same messages endpoint."""
        payload = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": wamid,
            "typing_indicator": {"type": "text"},
        }
        self._graph("POST", self.url, json=payload, timeout=settings.WHATSAPP_READ_RECEIPT_TIMEOUT_SECONDS)

    def list_templates(self) -> list[base.TemplateInfo]:
        """GET /{waba-id}/message_templates, every page (Graph's `paging.next`)."""
        if not settings.WHATSAPP_BUSINESS_ACCOUNT_ID:
            raise base.WhatsAppError("WHATSAPP_BUSINESS_ACCOUNT_ID is not set.", permanent=True)
        url: str | None = graph_url(f"{settings.WHATSAPP_BUSINESS_ACCOUNT_ID}/message_templates")
        params: dict[str, Any] | None = {
            "fields": "id,name,language,status,category,quality_score,components",
            "limit": 100,
        }
        found: list[base.TemplateInfo] = []
        pages = 0
        while url and pages < TEMPLATE_PAGES_MAX:
            status, body = self._graph("GET", url, params=params, timeout=settings.WHATSAPP_TIMEOUT_SECONDS)
            if not isinstance(body, dict):
                raise _error_from(status, {})
            found += [info for info in map(_template_info, body.get("data") or []) if info is not None]
            paging = json_object(body.get("paging"))
            # The next page's URL carries its own query (cursor and fields).
            url, params = paging.get("next"), None
            pages += 1
        return found

    def fetch_media(self, media_id: str) -> base.Media:
        """Graph's two steps: GET /{media-id} for a short-lived URL, then that URL, both with the token."""
        try:
            info = self.session.get(
                graph_url(media_id),
                timeout=settings.WHATSAPP_TIMEOUT_SECONDS,
            )
            info.raise_for_status()
            described = info.json()
            if int(described.get("file_size") or 0) > MEDIA_MAX_BYTES:
                raise base.MediaUnavailable(f"media {media_id} is larger than {MEDIA_MAX_BYTES} bytes")
            download = self.session.get(
                described["url"],
                timeout=settings.WHATSAPP_TIMEOUT_SECONDS,
                proxies=requests.utils.get_environ_proxies(described["url"]),
            )
            download.raise_for_status()
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise base.MediaUnavailable(f"media {media_id}: {exc.__class__.__name__}") from exc
        if len(download.content) > MEDIA_MAX_BYTES:
            raise base.MediaUnavailable(f"media {media_id} is larger than {MEDIA_MAX_BYTES} bytes")
        mime_type = described.get("mime_type") or download.headers.get("Content-Type", "")
        return base.Media(content=download.content, mime_type=str(mime_type))


# A WABA holds at most a few thousand templates: 100 pages of 100 is far beyond any, and a
# paging loop Graph never ends cannot hang the command.
TEMPLATE_PAGES_MAX = 100


def _template_info(item: Any) -> base.TemplateInfo | None:
    """One template of Graph's list; None for an entry without a name or a language."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item.get("language"):
        return None
    quality = json_object(item.get("quality_score"))
    body = ""
    quick_replies: list[str] = []
    for component in item.get("components") or []:
        if not isinstance(component, dict):
            continue
        if component.get("type") == "BODY":
            body = str(component.get("text") or "")
        if component.get("type") == "BUTTONS":
            quick_replies = [
                str(button.get("text") or "")
                for button in component.get("buttons") or []
                if isinstance(button, dict) and button.get("type") == "QUICK_REPLY"
            ]
    return base.TemplateInfo(
        name=item["name"][:512],
        language=str(item["language"])[:20],
        status=str(item.get("status") or "").lower(),
        category=str(item.get("category") or "").lower(),
        quality=str(quality.get("score") or "").lower(),
        meta_id=str(item.get("id") or "")[:40],
        body=body,
        quick_replies=quick_replies,
    )


def _error_from(http_status: int, body: dict[str, Any]) -> base.WhatsAppError:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return base.WhatsAppError(f"HTTP {http_status}", http_status=http_status)
    code = error.get("code")
    details = (
        (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    )
    detail = " — ".join(str(part) for part in (error.get("message"), details) if part)
    return base.WhatsAppError(
        detail or f"HTTP {http_status}",
        code=code if isinstance(code, int) else None,
        http_status=http_status,
    )
