"""Project-wide web pieces: the error shape, signed-body reading and DRF's exception handler."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core import strict_json, tracing
from core.errors import DomainError

logger = logging.getLogger(__name__)

MiB = 1024 * 1024


class WebhookError(Exception):
    """An error answered in the spec's shape: {"error": {code, message, details, traceId}}."""

    status = 400
    code = "VALIDATION_ERROR"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ValidationFailed(WebhookError):
    status, code = 400, "VALIDATION_ERROR"


class SignatureInvalid(WebhookError):
    status, code = 403, "HMAC_VERIFICATION_FAILED"


class PayloadTooLarge(WebhookError):
    status, code = 413, "PAYLOAD_TOO_LARGE"


# Messages raised below the views in English; the error shape speaks the request's language
# (Accept-Language, as DRF's own messages do), so they are looked up when the answer is made.
API_MESSAGES = [
    gettext_noop("No abandonment with this abandonmentId."),
    gettext_noop("A discounted payment for an abandonment with no discount."),
    gettext_noop("Amount does not match the cart."),
    gettext_noop("This paymentId was already received for another abandonment."),
    gettext_noop("Already received for another abandonment."),
]


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": _(str(message)),
            "details": details or {},
            "traceId": tracing.current(),
        }
    }


def error_response(error: WebhookError) -> JsonResponse:
    return JsonResponse(error_body(error.code, error.message, error.details), status=error.status)


def signature_of(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value for a body: what Meta and our payment platform send."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def read_signed_body(request: HttpRequest, *, secret: str, max_bytes: int) -> bytes:
    """The raw body, once its size and its signature are known good; nothing is parsed before."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(_("Body larger than %(limit)s bytes.") % {"limit": max_bytes})
    try:
        body = request.body
    except RequestDataTooBig as exc:
        raise PayloadTooLarge(_("Body larger than %(limit)s bytes.") % {"limit": max_bytes}) from exc
    if len(body) > max_bytes:
        raise PayloadTooLarge(_("Body larger than %(limit)s bytes.") % {"limit": max_bytes})
    given = request.headers.get("X-Hub-Signature-256", "")
    expected = signature_of(secret, body)
    # compare_digest runs in constant time: the answer leaks nothing about how much matched.
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        # Not logged here: Django's request logger writes the 403's one line.
        raise SignatureInvalid(_("Missing or invalid X-Hub-Signature-256."))
    return body


def loads(body: bytes) -> Any:
    """Strict JSON (see core.strict_json): a ValueError for anything no layer below could store."""
    return strict_json.loads(body)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a ValidationFailed that says why not."""
    try:
        data = loads(body)
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, absurd nesting
        raise ValidationFailed(_("Body is not valid JSON."), {"body": [str(exc)[:200]]}) from exc
    if not isinstance(data, dict):
        # Details name the body, as for any other field: the caller sees what to fix.
        raise ValidationFailed(_("Body must be a JSON object."), {"body": [_("Expected a JSON object.")]})
    return data


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF errors in the same shape as the webhooks'."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    codes = {
        401: "AUTHENTICATION_REQUIRED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
    }
    code = codes.get(response.status_code, "VALIDATION_ERROR")
    if isinstance(exc, drf_exceptions.ValidationError):
        details: dict[str, Any] = (
            {str(key): value for key, value in exc.detail.items()}
            if isinstance(exc.detail, dict)
            else {"non_field_errors": exc.detail}
        )
        message = _("Invalid request.")
    else:
        details = {}
        message = str(getattr(exc, "detail", exc))
    response.data = error_body(code, message, details)
    return response


def allow_methods(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Like require_http_methods, but a wrong method gets the spec's error shape (405)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = JsonResponse(
                    error_body(
                        "METHOD_NOT_ALLOWED",
                        _("Use %(methods)s.") % {"methods": ", ".join(methods)},
                        {"method": request.method},
                    ),
                    status=405,
                )
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def domain_error_response(error: DomainError, *, status: int, code: str) -> JsonResponse:
    """A service's domain error as the contract's error shape, with the view's status and code."""
    return JsonResponse(error_body(code, error.message, error.details), status=status)


def client_ip(request: HttpRequest) -> str:
    """The client's address: the connection's, or behind SARA_TRUSTED_PROXIES proxies the one
    the outermost trusted proxy saw (X-Forwarded-For is appended to by each proxy, so only its
    last entries are trustworthy; anything further left was written by the client)."""
    proxies = settings.SARA_TRUSTED_PROXIES
    remote: str = request.META.get("REMOTE_ADDR", "")
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    return forwarded[-proxies] if len(forwarded) >= proxies else remote
