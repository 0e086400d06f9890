"""Meta's webhook: verify, store durably, answer 200 fast; tasks do the rest on commit.

A plain Django view rather than a DRF one: this is the hot path (Meta sends about three status
updates per message sent) and it needs nothing DRF adds.
"""

from __future__ import annotations

import base64
import hmac
import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core import strict_json
from core.http import MiB, PayloadTooLarge, WebhookError, error_response, loads, read_signed_body
from messaging.models import WebhookEvent
from messaging.services.inbound import whatsapp_webhook_receive

logger = logging.getLogger(__name__)

MAX_BODY = 5 * MiB


@csrf_exempt
@require_http_methods(["GET", "POST"])
def meta_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _verify_subscription(request)
    try:
        body = read_signed_body(request, secret=settings.WHATSAPP_APP_SECRET, max_bytes=MAX_BODY)
    except PayloadTooLarge as exc:
        return error_response(exc)
    except WebhookError as exc:
        return error_response(exc)  # bad signature: nothing stored
    try:
        payload = loads(body)
    except ValueError as exc:
        # Answered 200 all the same: Meta would retry a non-200 for days, and retrying can't fix it.
        _unparseable_store(body, error=str(exc))
        payload = _valid_updates(body)
        if payload is None:
            return JsonResponse({"status": "received"})
    whatsapp_webhook_receive(payload=payload)
    return JsonResponse({"status": "received"})


def _unparseable_store(body: bytes, *, error: str) -> None:
    """The raw bytes kept for ops as base64: they may hold what no JSON column can store."""
    WebhookEvent.objects.create(
        type=WebhookEvent.Type.WHATSAPP,
        payload={"raw_base64": base64.b64encode(body).decode("ascii"), "bytes": len(body)},
        processed=True,
        error=f"unparseable body: {error}"[:2000],
    )
    logger.warning("unparseable whatsapp webhook stored", extra={"bytes": len(body)})


def _valid_updates(body: bytes) -> dict[str, Any] | None:
    """The batch with its hostile parts left out: one bad update must not cost the others.

    Each message and status is kept only if it passes the strict checks; so is each part of a
    change's envelope (metadata, contacts). Broken text is kept with "?" for what was lost. None when nothing in the body can be read as a batch.
    """
    try:
        payload = strict_json.loads_lenient(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        return None
    entries = []
    for entry in payload["entry"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            continue
        changes = []
        for change in entry["changes"]:
            kept = _valid_change(change)
            if kept is not None:
                changes.append(kept)
        if changes:
            entries.append({"id": _valid_or_none(entry.get("id")), "changes": changes})
    if not entries:
        return None
    return {"object": _valid_or_none(payload.get("object")), "entry": entries}


def _valid_change(change: Any) -> dict[str, Any] | None:
    if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
        return None
    kept: dict[str, Any] = {}
    for key, item in change["value"].items():
        if key in ("messages", "statuses") and isinstance(item, list):
            kept[key] = [update for update in map(_valid_or_none, item) if update is not None]
        elif (checked := _valid_or_none(item)) is not None:
            kept[_valid_or_none(key)] = checked
    return {"field": _valid_or_none(change.get("field")), "value": kept}


def _valid_or_none(value: Any) -> Any:
    try:
        return strict_json.check(value, repair_text=True)
    except ValueError:
        return None


def _verify_subscription(request: HttpRequest) -> HttpResponse:
    mode = request.GET.get("hub.mode")
    token = request.GET.get("hub.verify_token", "")
    challenge = request.GET.get("hub.challenge", "")

    if (
        mode == "subscribe"
        and token
        and hmac.compare_digest(token.encode(), settings.WHATSAPP_VERIFY_TOKEN.encode())
    ):
        return HttpResponse(challenge, content_type="text/plain")
    return HttpResponseForbidden("Verification failed.", content_type="text/plain")
