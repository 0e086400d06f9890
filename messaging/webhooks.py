"""Meta's webhook: verify, store durably, answer 200 fast; tasks do the rest on commit.

A plain Django view rather than a DRF one: this is the hot path (Meta sends about three status
updates per message sent) and it needs nothing DRF adds.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.http import MiB, PayloadTooLarge, WebhookError, error_response, loads, read_signed_body
from messaging.models import WebhookEvent
from messaging.services.inbound import whatsapp_webhook_receive

logger = logging.getLogger(__name__)

MAX_BODY = 5 * MiB

# A \uD800–\uDFFF escape: maybe half of a surrogate pair (fine) or a lone one (unstorable).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


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
    except (ValueError, RecursionError) as exc:
        # Answered 200 all the same: Meta would retry a non-200 for days, and retrying can't fix it.
        WebhookEvent.objects.create(
            type=WebhookEvent.Type.WHATSAPP,
            payload={"raw": body[:65536].decode("utf-8", "replace").replace("\x00", "\ufffd")},
            processed=True,
            error=f"unparseable body: {exc.__class__.__name__}",
        )
        logger.warning("unparseable whatsapp webhook stored")
        return JsonResponse({"status": "received"})
    if _SURROGATE_ESCAPE.search(body):
        payload = _without_lone_surrogates(payload)
    whatsapp_webhook_receive(payload=payload)
    return JsonResponse({"status": "received"})


def _without_lone_surrogates(payload: Any) -> Any:
    """Lone surrogates replaced by "?": valid JSON escapes, but no database can store them as text."""
    text = json.dumps(payload, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.loads(text.encode("utf-8", "replace").decode("utf-8"))
    return payload


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
