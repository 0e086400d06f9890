"""Conversations for support (transcript, close with a reason); sends and stuck work for ops."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from core.text import brl
from messaging import selectors
from messaging.models import Conversation, Message, StatusUpdate, WebhookEvent
from messaging.services.ops import stuck_events_redrive, stuck_messages_redrive
from messaging.services.outbound import SendOutcome, message_retry
from messaging.whatsapp import WhatsAppError
from recovery.admin import PhoneSearchMixin, admin_link
from recovery.lifecycle import conversation_close


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by webhooks and tasks: the admin shows them and never edits them."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- Conversations (support) ---------------------------------------------------------------


class CloseForm(forms.Form):
    reason = forms.CharField(
        max_length=200, help_text="Shown to everyone who opens the conversation later, e.g. “paid by phone”."
    )


@admin.register(Conversation)
class ConversationAdmin(PhoneSearchMixin, admin.ModelAdmin):
    phone_field = "customer__phone"
    list_display = [
        "id",
        "customer_name",
        "customer_phone",
        "status",
        "needs_human",
        "close_reason",
        "cart_value",
        "exchanges",
        "message_count",
        "last_message_at",
    ]
    list_filter = ["status", "needs_human", "handoff_reason", "followup_sent"]
    search_fields = ["customer__phone", "customer__name", "abandonment__external_id"]
    search_help_text = "Customer name, phone in any format, or abandonment id."
    list_select_related = ["customer", "abandonment__product"]
    fieldsets = [
        (None, {"fields": ["customer_link", "abandonment_link", "status", "close_reason", "needs_human"]}),
        ("Transcript", {"fields": ["transcript"]}),
        (
            "Counters and times",
            {
                "classes": ["collapse"],
                "fields": [
                    "exchanges",
                    "message_count",
                    "followup_sent",
                    "last_message_at",
                    "last_user_message_at",
                    "closed_at",
                    "created_at",
                    "updated_at",
                ],
            },
        ),
    ]
    readonly_fields = [
        "customer_link",
        "abandonment_link",
        "status",
        "close_reason",
        "needs_human",
        "transcript",
        "exchanges",
        "message_count",
        "followup_sent",
        "last_message_at",
        "last_user_message_at",
        "closed_at",
        "created_at",
        "updated_at",
    ]
    actions = ["close_selected"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        close = path(
            "<path:object_id>/close/",
            self.admin_site.admin_view(self.close_view),
            name="messaging_conversation_close",
        )
        return [close, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Everything on the page is read-only: closing has its own button and form.
        extra_context = {
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="customer", ordering="customer__name")
    def customer_name(self, obj: Conversation) -> str:
        return obj.customer.name or "—"

    @admin.display(description="phone", ordering="customer__phone")
    def customer_phone(self, obj: Conversation) -> str:
        return obj.customer.phone

    @admin.display(description="cart", ordering="abandonment__value")
    def cart_value(self, obj: Conversation) -> str:
        return brl(obj.abandonment.value)

    @admin.display(description="customer")
    def customer_link(self, obj: Conversation) -> str:
        customer = obj.customer
        label = f"{customer.name or 'Customer'} · {customer.phone}"
        if customer.opted_out:
            label += f" · opted out ({customer.opted_out_reason})"
        return admin_link(customer, label)

    @admin.display(description="cart")
    def abandonment_link(self, obj: Conversation) -> str:
        abandonment = obj.abandonment
        product = abandonment.product.name if abandonment.product else abandonment.external_product_id
        offers = abandonment.discount_offers
        label = (
            f"{abandonment.external_id} · {product} · {brl(abandonment.value)} · {abandonment.status}"
            f" · discount offered {offers}×"
        )
        return admin_link(abandonment, label)

    @admin.display(description="")
    def transcript(self, obj: Conversation) -> str:
        entries = obj.messages.order_by("created_at", "id")
        return render_to_string("admin/messaging/conversation/transcript.html", {"entries": entries})

    # Closing: one conversation from its page, or many from the list; both ask for a reason.

    def close_view(self, request, object_id: str):
        conversation = get_object_or_404(Conversation.objects.select_related("customer"), pk=object_id)
        if not self.has_change_permission(request, conversation):
            raise PermissionDenied
        change_url = reverse("admin:messaging_conversation_change", args=[conversation.pk])
        form = CloseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            self._close(request, [conversation], form.cleaned_data["reason"])
            return redirect(change_url)
        return self._close_page(request, [conversation], form, cancel_url=change_url)

    @admin.action(description="Close selected conversations…", permissions=["change"])
    def close_selected(self, request, queryset):
        conversations = list(queryset.select_related("customer"))
        form = CloseForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._close(request, conversations, form.cleaned_data["reason"])
            return None
        return self._close_page(
            request, conversations, form, cancel_url=reverse("admin:messaging_conversation_changelist")
        )

    def _close(self, request, conversations: list[Conversation], reason: str) -> None:
        for conversation in conversations:
            if not conversation.is_open:
                self.message_user(
                    request,
                    f"Conversation {conversation.pk} was already {conversation.status}.",
                    messages.WARNING,
                )
                continue
            conversation_close(conversation_id=conversation.pk, reason=reason)
            self.log_change(request, conversation, f"Closed: {reason}")
            self.message_user(request, f"Conversation {conversation.pk} closed: {reason}.", messages.SUCCESS)

    def _close_page(self, request, conversations: list[Conversation], form: CloseForm, *, cancel_url: str):
        context = {
            **self.admin_site.each_context(request),
            "title": "Close conversations" if len(conversations) > 1 else "Close conversation",
            "opts": self.opts,
            "conversations": conversations,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            # The list action posts back to the list; the button on a conversation to its URL.
            "is_action": request.path == reverse("admin:messaging_conversation_changelist"),
            "cancel_url": cancel_url,
        }
        return TemplateResponse(request, "admin/messaging/conversation/close.html", context)


# --- Messages, failed sends and stuck work (ops) --------------------------------------------


class OpsViewFilter(admin.SimpleListFilter):
    title = "ops view"
    parameter_name = "ops"

    def lookups(self, request, model_admin):
        return [("failed", "Failed sends"), ("stuck", "Stuck work")]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset & selectors.failed_sends()
        if self.value() == "stuck":
            now = timezone.now()
            return queryset & (selectors.inbound_unprocessed(now=now) | selectors.outbound_due(now=now))
        return queryset


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "customer",
        "direction",
        "kind",
        "purpose",
        "status",
        "error_code",
        "attempts",
        "created_at",
        "conversation_link",
    ]
    # Each ops view shows the columns its decision needs, and no others.
    ops_list_display = {
        "failed": ["id", "customer", "purpose", "error_code", "error_summary", "attempts", "failed_at",
                   "conversation_link"],
        "stuck": ["id", "customer", "direction", "purpose", "status", "created_at", "attempts",
                  "conversation_link"],
    }  # fmt: skip
    list_filter = [OpsViewFilter, "status", "direction", "purpose", "error_code"]
    search_fields = ["whatsapp_message_id", "wa_id", "conversation__customer__phone"]
    search_help_text = "WhatsApp message id (wamid), WhatsApp id or customer phone."
    list_select_related = ["conversation__customer"]
    actions = ["retry_sends", "redrive_stuck"]
    fieldsets = [
        (None, {"fields": ["conversation", "direction", "kind", "purpose", "text", "status"]}),
        ("Failure", {"fields": ["error_code", "error_detail", "attempts", "possible_duplicate"]}),
        ("Interpretation", {"fields": ["intent", "sentiment", "tokens_used"]}),
        ("WhatsApp", {"fields": ["wa_id", "whatsapp_message_id", "metadata_pretty"]}),
        (
            "Times",
            {
                "fields": [
                    "created_at",
                    "whatsapp_timestamp",
                    "send_after",
                    "claimed_at",
                    "sent_at",
                    "delivered_at",
                    "read_at",
                    "failed_at",
                    "processed_at",
                ]
            },
        ),
    ]
    readonly_fields = ["metadata_pretty"]

    def get_list_display(self, request):
        return self.ops_list_display.get(request.GET.get(OpsViewFilter.parameter_name), self.list_display)

    def has_retry_send_permission(self, request) -> bool:
        return request.user.has_perm("messaging.retry_send")

    def has_redrive_work_permission(self, request) -> bool:
        return request.user.has_perm("messaging.redrive_work")

    @admin.display(description="conversation", ordering="conversation")
    def conversation_link(self, obj: Message) -> str:
        return admin_link(obj.conversation, f"#{obj.conversation_id}") if obj.conversation_id else "—"

    @admin.display(description="customer")
    def customer(self, obj: Message) -> str:
        return str(obj.conversation.customer) if obj.conversation_id else f"unknown ({obj.wa_id})"

    @admin.display(description="Meta's detail")
    def error_summary(self, obj: Message) -> str:
        return Truncator(obj.error_detail).chars(80)

    @admin.display(description="metadata")
    def metadata_pretty(self, obj: Message) -> str:
        return pretty_json(obj.metadata)

    @admin.action(description="Retry selected sends", permissions=["retry_send"])
    def retry_sends(self, request, queryset):
        for message in queryset.select_related("conversation__customer").order_by("pk"):
            try:
                outcome = message_retry(message=message)
            except WhatsAppError:
                # Only a transient error gets out of a final attempt (the shared rate limit was
                # busy): the message is pending again and the sweep sends it in a minute.
                outcome = None
            message.refresh_from_db()
            level, report = retry_report(message, outcome)
            self.message_user(
                request, f"Message {message.pk} to {message.conversation.customer}: {report}", level
            )
            self.log_change(request, message, f"Retried send: {report}")

    @admin.action(description="Re-drive selected stuck work", permissions=["redrive_work"])
    def redrive_stuck(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        result = stuck_messages_redrive(message_ids=ids, now=timezone.now())
        redriven = {pk: "processing" for pk in result.inbound} | {pk: "sending" for pk in result.outbound}
        for message in Message.objects.filter(pk__in=redriven):
            self.log_change(request, message, f"Re-driven by hand: queued for {redriven[message.pk]}.")
        if redriven:
            self.message_user(
                request,
                f"Queued again: {len(result.inbound)} inbound message(s) for processing, "
                f"{len(result.outbound)} send(s).",
                messages.SUCCESS,
            )
        if result.not_stuck:
            self.message_user(
                request,
                f"Not stuck, left alone: {', '.join(map(str, result.not_stuck))} "
                "(already processed or sent, or not yet overdue).",
                messages.WARNING,
            )


def retry_report(message: Message, outcome: SendOutcome | None) -> tuple[int, str]:
    """What a retry did, in the words ops need: the outcome, and the gate's or Meta's reason."""
    if outcome is None:
        return messages.WARNING, "still pending: WhatsApp's rate limit is busy, the sweep will send it."
    if outcome == SendOutcome.SENT:
        return messages.SUCCESS, f"sent ({message.whatsapp_message_id})."
    if outcome == SendOutcome.DEFERRED:
        until = timezone.localtime(message.send_after)
        return messages.WARNING, f"waiting for quiet hours to end; it goes out at {until:%d/%m %H:%M}."
    if outcome == SendOutcome.BLOCKED:
        return (
            messages.WARNING,
            f"not sent, blocked by the send-time check: {message.error_code} — {message.error_detail}",
        )
    if outcome == SendOutcome.FAILED:
        return messages.ERROR, f"failed again: {message.error_code} — {message.error_detail}"
    if message.whatsapp_message_id:
        return (
            messages.WARNING,
            "not retried: Meta already accepted it once, and a message is never sent twice.",
        )
    return messages.WARNING, f"not retried: it is {message.status}, not a failed send."


# --- Webhook audit --------------------------------------------------------------------------


class StuckEventFilter(admin.SimpleListFilter):
    title = "ops view"
    parameter_name = "ops"

    def lookups(self, request, model_admin):
        return [("stuck", "Stuck Meta batches")]

    def queryset(self, request, queryset):
        if self.value() == "stuck":
            return queryset & selectors.whatsapp_events_unprocessed(now=timezone.now())
        return queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "type", "external_id", "reference", "processed", "error_summary", "created_at"]
    list_filter = [StuckEventFilter, "type", "processed"]
    search_fields = ["external_id", "reference"]
    fields = ["type", "external_id", "reference", "processed", "error", "created_at", "payload_pretty"]
    readonly_fields = ["payload_pretty"]
    actions = ["redrive_stuck"]

    def has_redrive_work_permission(self, request) -> bool:
        return request.user.has_perm("messaging.redrive_work")

    @admin.display(description="error")
    def error_summary(self, obj: WebhookEvent) -> str:
        return Truncator(obj.error).chars(80)

    @admin.display(description="payload")
    def payload_pretty(self, obj: WebhookEvent) -> str:
        return pretty_json(obj.payload)

    @admin.action(description="Re-drive selected stuck Meta batches", permissions=["redrive_work"])
    def redrive_stuck(self, request, queryset):
        result = stuck_events_redrive(event_ids=queryset.values_list("pk", flat=True), now=timezone.now())
        for event in WebhookEvent.objects.filter(pk__in=result.events):
            self.log_change(request, event, "Re-driven by hand: queued for fan-out.")
        if result.events:
            self.message_user(request, f"Queued again: {len(result.events)} batch(es).", messages.SUCCESS)
        if result.not_stuck:
            self.message_user(
                request,
                f"Not stuck, left alone: {', '.join(map(str, result.not_stuck))}.",
                messages.WARNING,
            )


@admin.register(StatusUpdate)
class StatusUpdateAdmin(ReadOnlyAdmin):
    list_display = ["whatsapp_message_id", "status", "timestamp", "created_at"]
    search_fields = ["whatsapp_message_id"]


def pretty_json(data: object) -> str:
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
    return format_html('<pre class="sara-json">{}</pre>', text)
