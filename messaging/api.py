"""The integrations API (SPEC §8): read a conversation, close it. Token-authenticated (DRF)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.models import Conversation, Message
from recovery.lifecycle import conversation_close
from recovery.models import Abandonment, Customer


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
    class Meta:
        model = Message
        fields = [
            "id", "direction", "kind", "purpose", "text", "whatsapp_message_id", "status", "error_code",
            "error_detail", "attempts", "intent", "sentiment", "tokens_used", "sent_at", "delivered_at",
            "read_at", "failed_at", "created_at",
        ]  # fmt: skip


class ConversationOut(serializers.ModelSerializer):
    customer = CustomerOut()
    abandonment = AbandonmentOut()
    messages = MessageOut(many=True)

    class Meta:
        model = Conversation
        fields = [
            "id", "status", "close_reason", "needs_human", "message_count", "exchanges", "followup_sent",
            "last_message_at", "last_user_message_at", "closed_at", "created_at", "customer", "abandonment",
            "messages",
        ]  # fmt: skip


class CloseIn(serializers.Serializer):
    # At least one visible character (JSON Schema patterns search, like re.search).
    reason = serializers.RegexField(r"\S", max_length=200)


class ErrorDetailOut(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()
    traceId = serializers.CharField()  # noqa: N815 - the error shape's field name


class ErrorOut(serializers.Serializer):
    error = ErrorDetailOut()


ERRORS = {401: ErrorOut, 404: ErrorOut}


def _conversation(pk: int) -> Conversation:
    return get_object_or_404(
        Conversation.objects.select_related("customer", "abandonment").prefetch_related("messages"), pk=pk
    )


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
