"""The integrations API (SPEC §8): read, close, reply to and give back a conversation.

Token-authenticated (DRF). A reply through the API is a person's reply, as from the inbox.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.http import error_body
from core.staff import staff_user
from messaging.models import Message
from recovery import desk, handoff
from recovery.lifecycle import conversation_close
from recovery.models import Abandonment, Conversation, Customer


class CustomerOut(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "phone", "name", "opted_out", "opted_out_at", "opted_out_reason"]


class AbandonmentOut(serializers.ModelSerializer):
    abandonmentId = serializers.CharField(source="external_id")  # noqa: N815
    productId = serializers.CharField(source="external_product_id")  # noqa: N815
    value = serializers.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        model = Abandonment
        fields = [
            "id", "abandonmentId", "productId", "value", "payment_link", "status", "discount_offers",
            "payment_id", "conversion_link", "converted_at", "created_at",
        ]  # fmt: skip


class MessageOut(serializers.ModelSerializer):
    sent_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Message
        fields = [
            "id", "direction", "kind", "purpose", "text", "whatsapp_message_id", "status", "error_code",
            "error_detail", "attempts", "intent", "sentiment", "tokens_used", "sent_at", "delivered_at",
            "read_at", "failed_at", "created_at", "sent_by",
        ]  # fmt: skip


class ConversationOut(serializers.ModelSerializer):
    customer = CustomerOut()
    abandonment = AbandonmentOut()
    messages = MessageOut(many=True)
    assigned_to: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Conversation
        fields = [
            "id", "status", "close_reason", "needs_human", "handoff_reason", "handoff_at", "assigned_to",
            "assigned_at", "message_count", "exchanges", "followup_sent", "last_message_at",
            "last_user_message_at", "closed_at", "created_at", "customer", "abandonment", "messages",
        ]  # fmt: skip


# At least one visible character, and no NUL anywhere (JSON Schema patterns search, like
# re.search, so the whole string is anchored).
VISIBLE_TEXT = r"^[^\x00]*[^\s\x00][^\x00]*$"


class CloseIn(serializers.Serializer):
    # At least one visible character and no NUL (DRF refuses NUL in any text; the schema says
    # so too, so a client reading it never sends what is refused).
    reason = serializers.RegexField(VISIBLE_TEXT, max_length=200)


class TextIn(serializers.RegexField):
    """Text as a JSON string only: a number or a list is refused, not turned into words."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("Expected a string.")
        return super().to_internal_value(data)


class ReplyIn(serializers.Serializer):
    # WhatsApp's limit for a text message; at least one visible character.
    text = TextIn(VISIBLE_TEXT, max_length=4096, trim_whitespace=False)
    # Sent as written although it breaks a guardrail (the person checked it): kept on the message.
    confirmException = serializers.BooleanField(required=False, default=False)  # noqa: N815


class ReplyOut(serializers.Serializer):
    status = serializers.CharField()
    messageId = serializers.IntegerField()  # noqa: N815


class ErrorDetailOut(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()
    traceId = serializers.CharField()  # noqa: N815 - the error shape's field name


class ErrorOut(serializers.Serializer):
    error = ErrorDetailOut()


ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


def _conversation(pk: int) -> Conversation:
    return get_object_or_404(
        Conversation.objects.select_related("customer", "abandonment", "assigned_to").prefetch_related(
            "messages__sent_by"
        ),
        pk=pk,
    )


def _conflict(error: handoff.HandoffError) -> Response:
    return Response(error_body(error.code, str(error.message)), status=status.HTTP_409_CONFLICT)


class ConversationDetail(APIView):
    @extend_schema(
        responses={200: ConversationOut, **ERRORS},
        summary="A conversation with its customer, cart and messages",
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(ConversationOut(_conversation(pk)).data)


class ConversationClose(APIView):
    @extend_schema(
        request=CloseIn,
        responses={200: ConversationOut, 400: ErrorOut, **ERRORS},
        summary="Close a conversation with a reason",
    )
    def post(self, request: Request, pk: int) -> Response:
        get_object_or_404(Conversation, pk=pk)
        data = CloseIn(data=request.data)
        data.is_valid(raise_exception=True)
        conversation_close(conversation_id=pk, reason=data.validated_data["reason"])
        return Response({"status": "closed", **ConversationOut(_conversation(pk)).data})


class ConversationReply(APIView):
    @extend_schema(
        request=ReplyIn,
        responses={202: ReplyOut, 400: ErrorOut, 409: ErrorOut, 422: ErrorOut, **ERRORS},
        summary="A person's reply to the customer",
        description=(
            "Queued for the same send path and checks as Sara's messages; the conversation is "
            "taken over by the token's user, and Sara stays silent until it is given back. "
            "409 WINDOW_CLOSED when the customer has not written in the last 24 hours, "
            "409 OPTED_OUT for an opted-out customer, 409 CONVERSATION_CLOSED for a closed one. "
            "422 GUARDRAIL when the text breaks the guardrails of Sara's replies (a link, an amount, "
            "a percentage or a coupon that is not this cart's, a promise of a discount it does not "
            "have): nothing is sent and details.breaches names each rule (url, amount, percent, "
            "coupon, discount_promise) with what broke it; the same body with confirmException "
            "true sends it as written."
        ),
    )
    def post(self, request: Request, pk: int) -> Response:
        get_object_or_404(Conversation, pk=pk)
        data = ReplyIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            message = desk.staff_reply(
                conversation_id=pk,
                user=staff_user(request),
                text=data.validated_data["text"],
                exception_confirmed=data.validated_data["confirmException"],
            )
        except desk.GuardrailBreached as error:
            breaches = [{"rule": b.rule, "found": b.found, "message": b.label} for b in error.breaches]
            return Response(
                error_body(error.code, str(error.message), {"breaches": breaches}),
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        except handoff.HandoffError as error:
            return _conflict(error)
        return Response({"status": "queued", "messageId": message.pk}, status=status.HTTP_202_ACCEPTED)


class ConversationHandback(APIView):
    @extend_schema(
        request=None,
        responses={200: ConversationOut, 409: ErrorOut, **ERRORS},
        summary="Give the conversation back to Sara",
        description="Sara answers the customer's next message again. 409 CONVERSATION_CLOSED when closed.",
    )
    def post(self, request: Request, pk: int) -> Response:
        get_object_or_404(Conversation, pk=pk)
        try:
            handoff.conversation_handback(conversation_id=pk)
        except handoff.HandoffError as error:
            return _conflict(error)
        return Response(ConversationOut(_conversation(pk)).data)
