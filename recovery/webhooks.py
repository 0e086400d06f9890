"""The checkout platform's webhooks: abandonment (SPEC §4.1) and payment (§4.4)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from core.http import (
    MiB,
    ValidationFailed,
    WebhookError,
    allow_methods,
    domain_error_response,
    error_response,
    parse_json_object,
    read_signed_body,
)
from recovery import errors, services
from recovery.serializers import AbandonmentSerializer, PaymentSerializer

MAX_BODY = 1 * MiB

# How each domain error of a payment is answered (SPEC §4.4): status and code of the error shape.
_PAYMENT_ERRORS: dict[type[errors.RecoveryError], tuple[int, str]] = {
    errors.AbandonmentNotFound: (404, "ABANDONMENT_NOT_FOUND"),
    errors.AmountMismatch: (422, "AMOUNT_MISMATCH"),
    errors.PaymentIdReused: (400, "VALIDATION_ERROR"),
}


def _signed_payload(request: HttpRequest) -> dict[str, Any]:
    body = read_signed_body(request, secret=settings.PAYMENT_WEBHOOK_SECRET, max_bytes=MAX_BODY)
    return parse_json_object(body)


def _validated(serializer_class: type, payload: dict[str, Any]) -> dict[str, Any]:
    serializer = serializer_class(data=payload)
    if not serializer.is_valid():
        raise ValidationFailed(_("Invalid payload."), dict(serializer.errors))
    return serializer.validated_data


@csrf_exempt
@allow_methods("POST")
def abandonment_webhook(request: HttpRequest) -> JsonResponse:
    try:
        payload = _signed_payload(request)
        data = _validated(AbandonmentSerializer, payload)
    except WebhookError as exc:
        return error_response(exc)
    result = services.abandonment_open(
        external_id=data["abandonmentId"],
        phone=data["phone"],
        name=data["name"],
        external_user_id=data["userId"],
        external_product_id=data["productId"],
        payment_link=data["paymentLink"],
        value=data["value"],
        payload=payload,
    )
    body: dict[str, Any] = {"status": str(result.outcome), "abandonmentId": result.abandonment.external_id}
    if result.outcome == services.AbandonmentOutcome.SKIPPED:
        body["reason"] = result.abandonment.skip_reason or "opted_out"
    elif result.conversation is not None:
        body["conversationId"] = result.conversation.pk
    return JsonResponse(body)


@csrf_exempt
@allow_methods("POST")
def payment_webhook(request: HttpRequest) -> JsonResponse:
    try:
        payload = _signed_payload(request)
        # The status is checked first: anything but "paid" is ignored, whatever else it holds.
        if payload.get("status") != "paid":
            services.payment_ignore(payload=payload)
            return JsonResponse({"status": "ignored"})
        data = _validated(PaymentSerializer, payload)
        result = services.payment_receive(
            abandonment_external_id=data["abandonmentId"],
            payment_id=data["paymentId"],
            amount=data["amount"],
            link_type=data["linkType"],
            payload=payload,
        )
    except WebhookError as exc:
        return error_response(exc)
    except errors.RecoveryError as exc:
        status, code = _PAYMENT_ERRORS[type(exc)]
        return domain_error_response(exc, status=status, code=code)
    body: dict[str, Any] = {"status": str(result.outcome)}
    if result.abandonment is not None:
        body["abandonmentId"] = result.abandonment.external_id
        conversation = getattr(result.abandonment, "conversation", None)
        if conversation is not None:
            body["conversationId"] = conversation.pk
    return JsonResponse(body)
