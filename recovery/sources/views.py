"""POST /webhook/sources/<platform> (SPEC §11): verify, parse, hand to the services, answer."""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from core.http import (
    MiB,
    PayloadTooLarge,
    SignatureInvalid,
    ValidationFailed,
    WebhookError,
    allow_methods,
    error_body,
    error_response,
    loads,
    parse_json_object,
)
from recovery.errors import PayloadUnusable
from recovery.sources import services
from recovery.sources.registry import source as source_named

MAX_BODY = 1 * MiB


def _body(request: HttpRequest) -> bytes:
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"Body larger than {MAX_BODY} bytes.")
    try:
        body = request.body
    except RequestDataTooBig as exc:
        raise PayloadTooLarge(f"Body larger than {MAX_BODY} bytes.") from exc
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"Body larger than {MAX_BODY} bytes.")
    return body


@csrf_exempt
@allow_methods("POST")
def source_webhook(request: HttpRequest, platform: str) -> JsonResponse:
    source = source_named(platform)
    if source is None or not source.enabled:
        # An unconnected platform does not exist, as far as the caller can tell.
        return JsonResponse(error_body("NOT_FOUND", "No such source.", {"platform": platform}), status=404)
    try:
        body = _body(request)
        # Nothing is read from the body before its signature holds.
        if not source.verify(request, body):
            raise SignatureInvalid(f"Missing or invalid {source.label} signature.")
    except WebhookError as exc:
        return error_response(exc)
    try:
        payload = parse_json_object(body)
        if not _storable(payload):
            raise ValidationFailed(
                "Body holds a lone UTF-16 surrogate or a number out of range.",
                {"body": ["Not storable JSON."]},
            )
        events = source.parse(request, payload)
    except PayloadUnusable as exc:
        # The adapter's domain error, answered in the contract's shape (400 VALIDATION_ERROR).
        return _unusable(source, request, body, ValidationFailed(exc.message, exc.details))
    except ValidationFailed as exc:
        return _unusable(source, request, body, exc)
    results = [services.source_event_receive(event=event, payload=payload) for event in events]
    answer: dict[str, Any] = {"status": str(results[0].outcome)}
    if results[0].detail:
        answer["detail"] = results[0].detail
    if results[0].conversation_id is not None:
        answer["conversationId"] = results[0].conversation_id
    return JsonResponse(answer)


def _storable(payload: Any) -> bool:
    """Whether jsonb takes the payload: valid Unicode only (no lone surrogate), finite numbers
    only (1e400 parses as a float infinity)."""
    pending = [payload]
    while pending:  # a loop, not recursion: nesting is as deep as the sender likes
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, float) and not math.isfinite(value):
            return False
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def _unusable(source: Any, request: HttpRequest, body: bytes, error: ValidationFailed) -> JsonResponse:
    """An authentic event Sara cannot read: kept for ops; Hotmart still gets its 2xx."""
    try:
        payload: Any = loads(body)
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict) or not _storable(payload):
        # Whatever the bytes, the row holds readable text: invalid UTF-8 (raw surrogates
        # included) becomes U+FFFD, and jsonb takes no NUL.
        payload = {"raw": body[:65536].decode("utf-8", "replace").replace("\x00", "\ufffd")}
    services.source_event_reject(
        platform=source.name,
        external_id=source.delivery_id(request, payload),
        payload=payload,
        error=error.message,
    )
    if source.acknowledge_bad_events:
        return JsonResponse({"status": "invalid", "detail": error.message})
    return error_response(error)
