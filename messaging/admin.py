"""Conversations for support (transcript, close with a reason); sends and stuck work for ops."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
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
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from compliance.admin import PhoneSearchMixin, opt_out_reason_label
from compliance.lgpd import is_erased
from core.admin_helpers import admin_link
from core.text import brl
from messaging import selectors
from messaging.admin_handoff import HandoffAdminMixin
from messaging.models import Conversation, Message, StatusUpdate, Template, WebhookEvent
from messaging.retry_advice import retry_advice
from messaging.services.ops import (
    failed_sends_dismiss,
    failed_sends_retry,
    stuck_events_redrive,
    stuck_messages_redrive,
)
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
        label=gettext_lazy("Reason"),
        max_length=200,
        help_text=gettext_lazy("Shown to everyone who opens the conversation later, e.g. “paid by phone”."),
    )


# A conversation's counters and times: shown folded on its page, never edited by hand.
COUNTER_FIELDS = (
    "exchanges",
    "message_count",
    "followup_sent",
    "last_message_at",
    "last_user_message_at",
    "closed_at",
    "created_at",
    "updated_at",
)


@admin.register(Conversation)
class ConversationAdmin(HandoffAdminMixin, PhoneSearchMixin, admin.ModelAdmin):
    phone_field = "customer__phone"
    # What fits at 1280 px: the customer's name and phone share a column; counts are on the page.
    list_display = [
        "id",
        "customer_name",
        "status",
        "human_wait",
        "close_reason_display",
        "cart_value",
        "exchanges",
        "last_message_at",
    ]
    list_filter = ["status", "needs_human", "handoff_reason", "followup_sent"]
    search_fields = ["customer__phone", "customer__name", "abandonment__external_id"]
    search_help_text = gettext_lazy("Customer name, phone in any format, or abandonment id.")
    list_select_related = ["customer", "abandonment__product"]
    fieldsets = [
        (
            None,
            {"fields": ["customer_link", "abandonment_link", "status", "close_reason_display", "human_wait"]},
        ),
        (gettext_lazy("Transcript"), {"fields": ["transcript"]}),
        (
            gettext_lazy("Counters and times"),
            {
                "classes": ["collapse"],
                "fields": COUNTER_FIELDS,
            },
        ),
    ]
    readonly_fields = [
        "customer_link",
        "abandonment_link",
        "status",
        "close_reason_display",
        "human_wait",
        "transcript",
        *COUNTER_FIELDS,
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
        # Everything on the page is read-only: closing and the hand-off have their own forms.
        extra_context = {
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=gettext_lazy("customer"), ordering="customer__name")
    def customer_name(self, obj: Conversation) -> str:
        customer = obj.customer
        if is_erased(customer):
            return str(customer)
        return format_html('{}<br><span class="sara-phone">{}</span>', customer.name or "—", customer.phone)

    @admin.display(description=gettext_lazy("waiting for a person"), ordering="handoff_at")
    def human_wait(self, obj: Conversation) -> str:
        # A reason, not a ✗ on every row: most conversations wait for nobody.
        if not obj.needs_human:
            return "—"
        return obj.get_handoff_reason_display() or _("Yes")

    @admin.display(description=gettext_lazy("close reason"), ordering="close_reason")
    def close_reason_display(self, obj: Conversation) -> str:
        return obj.close_reason_label

    @admin.display(description=gettext_lazy("cart"), ordering="abandonment__value")
    def cart_value(self, obj: Conversation) -> str:
        return brl(obj.abandonment.value)

    @admin.display(description=gettext_lazy("customer"))
    def customer_link(self, obj: Conversation) -> str:
        customer = obj.customer
        label = (
            str(customer) if is_erased(customer) else f"{customer.name or _('Customer')} · {customer.phone}"
        )
        if customer.opted_out:
            label += " · " + _("opted out (%(reason)s)") % {
                "reason": opt_out_reason_label(customer.opted_out_reason)
            }
        return admin_link(customer, label)

    @admin.display(description=gettext_lazy("cart"))
    def abandonment_link(self, obj: Conversation) -> str:
        abandonment = obj.abandonment
        product = abandonment.product.name if abandonment.product else abandonment.external_product_id
        label = _("%(id)s · %(product)s · %(value)s · %(status)s · discount offered %(offers)s×") % {
            "id": abandonment.external_id,
            "product": product,
            "value": brl(abandonment.value),
            "status": abandonment.get_status_display(),
            "offers": abandonment.discount_offers,
        }
        return admin_link(abandonment, label)

    @admin.display(description="")
    def transcript(self, obj: Conversation) -> str:
        entries = [
            (message, template_text(message))
            for message in obj.messages.select_related("sent_by").order_by("created_at", "id")
        ]
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

    @admin.action(description=gettext_lazy("Close selected conversations…"), permissions=["change"])
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
                    _("Conversation %(id)s was already %(status)s.")
                    % {"id": conversation.pk, "status": conversation.get_status_display().lower()},
                    messages.WARNING,
                )
                continue
            conversation_close(conversation_id=conversation.pk, reason=reason)
            self.log_change(request, conversation, _("Closed: %(reason)s") % {"reason": reason})
            self.message_user(
                request,
                _("Conversation %(id)s closed: %(reason)s.") % {"id": conversation.pk, "reason": reason},
                messages.SUCCESS,
            )

    def _close_page(self, request, conversations: list[Conversation], form: CloseForm, *, cancel_url: str):
        context = {
            **self.admin_site.each_context(request),
            "title": _("Close conversations") if len(conversations) > 1 else _("Close conversation"),
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
    title = gettext_lazy("ops view")
    parameter_name = "ops"

    def lookups(self, request, model_admin):
        return [("failed", _("Failed sends")), ("stuck", _("Stuck work"))]

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
        "failed": ["id", "customer", "purpose", "error_code", "retry_help", "attempts", "failed_at",
                   "conversation_link"],
        "stuck": ["id", "customer", "direction", "purpose", "status", "created_at", "attempts",
                  "conversation_link"],
    }  # fmt: skip
    list_filter = [OpsViewFilter, "status", "direction", "purpose", "error_code"]
    search_fields = ["whatsapp_message_id", "wa_id", "conversation__customer__phone"]
    search_help_text = gettext_lazy("WhatsApp message id (wamid), WhatsApp id or customer phone.")
    list_select_related = ["conversation__customer"]
    # People look here for what just happened.
    ordering = ["-created_at", "-id"]
    actions = ["retry_sends", "dismiss_failed", "redrive_stuck"]
    fieldsets = [
        (None, {"fields": ["conversation", "direction", "kind", "purpose", "text", "status"]}),
        (
            gettext_lazy("Failure"),
            {
                "fields": [
                    "error_code",
                    "error_detail",
                    "retry_help",
                    "attempts",
                    "possible_duplicate",
                    "dismissed_at",
                ]
            },
        ),
        (gettext_lazy("Interpretation"), {"fields": ["intent", "sentiment", "tokens_used"]}),
        ("WhatsApp", {"fields": ["wa_id", "whatsapp_message_id", "metadata_pretty"]}),
        (
            gettext_lazy("Times"),
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
    readonly_fields = ["metadata_pretty", "retry_help"]

    def get_list_display(self, request):
        return self.ops_list_display.get(request.GET.get(OpsViewFilter.parameter_name), self.list_display)

    def has_retry_send_permission(self, request) -> bool:
        return request.user.has_perm("messaging.retry_send")

    def has_redrive_work_permission(self, request) -> bool:
        return request.user.has_perm("messaging.redrive_work")

    @admin.display(description=gettext_lazy("conversation"), ordering="conversation")
    def conversation_link(self, obj: Message) -> str:
        return admin_link(obj.conversation, f"#{obj.conversation_id}") if obj.conversation_id else "—"

    @admin.display(description=gettext_lazy("customer"))
    def customer(self, obj: Message) -> str:
        if obj.conversation is not None:
            return str(obj.conversation.customer)
        return _("unknown (%(wa_id)s)") % {"wa_id": obj.wa_id}

    @admin.display(description=gettext_lazy("can a retry help?"))
    def retry_help(self, obj: Message) -> str:
        if obj.status != Message.Status.FAILED:
            return "—"
        advice = retry_advice(obj)
        detail = Truncator(obj.error_detail).chars(120)
        return format_html(
            '<span class="sara-advice sara-advice-{}"><strong>{}</strong> {}</span>{}',
            "yes" if advice.helps else "no",
            _("Yes.") if advice.helps else _("No."),
            advice.why,
            format_html('<br><span class="sara-quiet">{}: {}</span>', _("Meta's detail"), detail)
            if detail and obj.error_code != "window_closed"
            else "",
        )

    @admin.display(description=gettext_lazy("metadata"))
    def metadata_pretty(self, obj: Message) -> str:
        return pretty_json(obj.metadata)

    @admin.action(description=gettext_lazy("Dismiss selected failed sends"), permissions=["retry_send"])
    def dismiss_failed(self, request, queryset):
        ids = failed_sends_dismiss(message_ids=queryset.values_list("pk", flat=True), now=timezone.now())
        for message in Message.objects.filter(pk__in=ids):
            self.log_change(
                request, message, _("Dismissed from the failed sends: nothing more is to be done.")
            )
        if ids:
            self.message_user(
                request,
                _("Dismissed %(count)s failed send(s): they leave the list and stay failed in the history.")
                % {"count": len(ids)},
                messages.SUCCESS,
            )
        skipped = sorted(set(queryset.values_list("pk", flat=True)) - set(ids))
        if skipped:
            self.message_user(
                request,
                _("Left alone (not a failed send, or dismissed before): %(ids)s.")
                % {"ids": ", ".join(map(str, skipped))},
                messages.WARNING,
            )

    @admin.action(description=gettext_lazy("Retry selected sends"), permissions=["retry_send"])
    def retry_sends(self, request, queryset):
        # Queued, never sent here: a send may wait seconds for a slot and for Graph, and the
        # request must not. The worker runs the same claim and send-time checks as for any send.
        result = failed_sends_retry(message_ids=queryset.values_list("pk", flat=True))
        for message in Message.objects.filter(pk__in=result.queued):
            self.log_change(request, message, _("Retried by hand: queued for sending."))
        if result.queued:
            self.message_user(
                request,
                _(
                    "Queued for sending again: %(count)s send(s). Each goes out after the send-time "
                    "checks; one that fails again returns to the failed sends with its reason."
                )
                % {"count": len(result.queued)},
                messages.SUCCESS,
            )
        left_alone = Message.objects.filter(pk__in=[*result.accepted, *result.not_failed])
        for message in left_alone.select_related("conversation__customer").order_by("pk"):
            if message.pk in result.accepted:
                report = _("not retried: Meta already accepted it once, and a message is never sent twice.")
            else:
                report = _("not retried: it is %(status)s, not a failed send.") % {
                    "status": message.get_status_display().lower()
                }
            self.message_user(
                request,
                _("Message %(id)s to %(customer)s: %(report)s")
                % {"id": message.pk, "customer": self.customer(message), "report": report},
                messages.WARNING,
            )

    @admin.action(description=gettext_lazy("Re-drive selected stuck work"), permissions=["redrive_work"])
    def redrive_stuck(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        result = stuck_messages_redrive(message_ids=ids, now=timezone.now())
        redriven = {pk: _("Re-driven by hand: queued for processing.") for pk in result.inbound} | {
            pk: _("Re-driven by hand: queued for sending.") for pk in result.outbound
        }
        for message in Message.objects.filter(pk__in=redriven):
            self.log_change(request, message, redriven[message.pk])
        if redriven:
            self.message_user(
                request,
                _("Queued again: %(inbound)s inbound message(s) for processing, %(outbound)s send(s).")
                % {"inbound": len(result.inbound), "outbound": len(result.outbound)},
                messages.SUCCESS,
            )
        if result.not_stuck:
            self.message_user(
                request,
                _("Not stuck, left alone: %(ids)s (already processed or sent, or not yet overdue).")
                % {"ids": ", ".join(map(str, result.not_stuck))},
                messages.WARNING,
            )


# --- Webhook audit --------------------------------------------------------------------------


class StuckEventFilter(admin.SimpleListFilter):
    title = gettext_lazy("ops view")
    parameter_name = "ops"

    def lookups(self, request, model_admin):
        return [("stuck", _("Stuck Meta batches"))]

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

    @admin.display(description=gettext_lazy("error"))
    def error_summary(self, obj: WebhookEvent) -> str:
        return Truncator(obj.error).chars(80)

    @admin.display(description=gettext_lazy("payload"))
    def payload_pretty(self, obj: WebhookEvent) -> str:
        return pretty_json(obj.payload)

    @admin.action(
        description=gettext_lazy("Re-drive selected stuck Meta batches"), permissions=["redrive_work"]
    )
    def redrive_stuck(self, request, queryset):
        result = stuck_events_redrive(event_ids=queryset.values_list("pk", flat=True), now=timezone.now())
        for event in WebhookEvent.objects.filter(pk__in=result.events):
            self.log_change(request, event, _("Re-driven by hand: queued for fan-out."))
        if result.events:
            self.message_user(
                request,
                _("Queued again: %(count)s batch(es).") % {"count": len(result.events)},
                messages.SUCCESS,
            )
        if result.not_stuck:
            self.message_user(
                request,
                _("Not stuck, left alone: %(ids)s.") % {"ids": ", ".join(map(str, result.not_stuck))},
                messages.WARNING,
            )


@admin.register(StatusUpdate)
class StatusUpdateAdmin(ReadOnlyAdmin):
    list_display = ["whatsapp_message_id", "status", "timestamp", "created_at"]
    search_fields = ["whatsapp_message_id"]


def template_text(message: Message) -> str:
    """The body the customer read for a template message: the approved text with its parameters."""
    template = message.metadata.get("template") or {}
    body = settings.WHATSAPP_TEMPLATE_BODIES.get(template.get("name", ""))
    if message.kind != Message.Kind.TEMPLATE or not body:
        return ""
    for number, value in enumerate(template.get("parameters", []), start=1):
        body = body.replace(f"{{{{{number}}}}}", str(value))
    return body


def pretty_json(data: object) -> str:
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
    return format_html('<pre class="sara-json">{}</pre>', text)


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    """The WhatsApp templates as Meta last reported them (SPEC §15): status and quality come from
    Meta's webhooks and `manage.py sync_templates`; the body and the quick-reply buttons may be
    typed here for a template Sara has not read from Meta yet."""

    list_display = ("name", "language", "category", "status", "quality", "status_reason", "status_at")
    list_filter = ("status", "quality", "category")
    search_fields = ("name",)
    readonly_fields = ("meta_id", "status_at", "updated_at")
    fields = (
        "name",
        "language",
        "category",
        "status",
        "quality",
        "status_reason",
        "body",
        "buttons",
        "meta_id",
        "status_at",
        "updated_at",
    )
