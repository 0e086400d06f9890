"""Conversations for support (transcript, close with a reason); sends and stuck work for ops."""

from __future__ import annotations

import json
from collections import Counter

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from core.admin_helpers import ReadOnlyAdmin, admin_link, readable_fields
from messaging import selectors
from messaging.models import Message, StatusUpdate, Template, WebhookEvent
from messaging.retry_advice import error_code_words, error_detail_words, retry_advice
from messaging.services.ops import (
    failed_sends_dismiss,
    failed_sends_retry,
    stuck_events_redrive,
    stuck_messages_redrive,
)

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


class ErrorCodeFilter(admin.SimpleListFilter):
    """The error codes present, in words."""

    title = gettext_lazy("error")
    parameter_name = "error_code"

    def lookups(self, request, model_admin):
        codes = (
            Message.objects.exclude(error_code="").order_by("error_code").values_list("error_code", flat=True)
        )
        return [(code, error_code_words(code)) for code in codes.distinct()]

    def queryset(self, request, queryset):
        return queryset.filter(error_code=self.value()) if self.value() else queryset


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "customer",
        "direction",
        "kind",
        "purpose",
        "status",
        "error_code_label",
        "attempts",
        "created_at",
        "conversation_link",
    ]
    # Each ops view shows the columns its decision needs, and no others.
    ops_list_display = {
        "failed": ["id", "customer", "purpose", "error_code_label", "retry_help", "attempts", "failed_at",
                   "conversation_link"],
        "stuck": ["id", "customer", "direction", "purpose", "status", "created_at", "attempts",
                  "conversation_link"],
    }  # fmt: skip
    list_filter = [OpsViewFilter, "status", "direction", "purpose", ErrorCodeFilter]
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
                    "error_code_label",
                    "error_detail_label",
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
    readonly_fields = ["metadata_pretty", "retry_help", "error_code_label", "error_detail_label"]

    @admin.display(description=gettext_lazy("error"), ordering="error_code")
    def error_code_label(self, obj: Message) -> str:
        return error_code_words(obj.error_code)

    @admin.display(description=gettext_lazy("error detail"))
    def error_detail_label(self, obj: Message) -> str:
        return error_detail_words(obj.error_code, obj.error_detail) or "—"

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

    @admin.display(description=gettext_lazy("details"))
    def metadata_pretty(self, obj: Message) -> str:
        return readable_fields(obj.metadata, METADATA_LABELS, METADATA_WORDS)

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
                ngettext(
                    "Dismissed %(count)s failed send: it leaves the list and stays failed in the history.",
                    "Dismissed %(count)s failed sends: they leave the list and stay failed in the history.",
                    len(ids),
                )
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
                ngettext(
                    "Queued for sending again: %(count)s send. It goes out after the send-time checks; "
                    "if it fails again it returns to the failed sends with its reason.",
                    "Queued for sending again: %(count)s sends. Each goes out after the send-time "
                    "checks; one that fails again returns to the failed sends with its reason.",
                    len(result.queued),
                )
                % {"count": len(result.queued)},
                messages.SUCCESS,
            )
        if result.no_help:
            reasons = Counter(why for _pk, why in result.no_help)
            self.message_user(
                request,
                ngettext(
                    "Skipped %(count)s send a retry cannot help: %(reasons)s",
                    "Skipped %(count)s sends a retry cannot help: %(reasons)s",
                    len(result.no_help),
                )
                % {
                    "count": len(result.no_help),
                    "reasons": " ".join(
                        f"{why}" if n == 1 else f"{why} (×{n})" for why, n in sorted(reasons.items())
                    ),
                },
                messages.WARNING,
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
                _("Queued again: %(inbound)s for processing, %(outbound)s.")
                % {
                    "inbound": ngettext(
                        "%(count)s inbound message", "%(count)s inbound messages", len(result.inbound)
                    )
                    % {"count": len(result.inbound)},
                    "outbound": ngettext("%(count)s send", "%(count)s sends", len(result.outbound))
                    % {"count": len(result.outbound)},
                },
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
    fields = ["type", "external_id", "reference", "processed", "error_words", "created_at", "payload_pretty"]
    readonly_fields = ["payload_pretty", "error_words"]
    actions = ["redrive_stuck"]

    def has_redrive_work_permission(self, request) -> bool:
        return request.user.has_perm("messaging.redrive_work")

    @admin.display(description=gettext_lazy("error"))
    def error_summary(self, obj: WebhookEvent) -> str:
        return Truncator(self.error_words(obj)).chars(80)

    @admin.display(description=gettext_lazy("error"))
    def error_words(self, obj: WebhookEvent) -> str:
        # Services store the error's English sentence (a catalogue msgid): read it in the page's language.
        return _(obj.error) if obj.error else "—"

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
                ngettext(
                    "Queued again: %(count)s batch.", "Queued again: %(count)s batches.", len(result.events)
                )
                % {"count": len(result.events)},
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
    list_display = ["whatsapp_message_id", "status_label", "timestamp", "created_at"]
    search_fields = ["whatsapp_message_id"]
    fields = [
        "whatsapp_message_id",
        "status_label",
        "timestamp",
        "errors_words",
        "pricing_words",
        "created_at",
    ]
    readonly_fields = ["status_label", "errors_words", "pricing_words"]

    @admin.display(description=gettext_lazy("errors"))
    def errors_words(self, obj: StatusUpdate) -> str:
        return readable_fields(obj.errors, METADATA_LABELS)

    @admin.display(description=gettext_lazy("pricing"))
    def pricing_words(self, obj: StatusUpdate) -> str:
        return readable_fields(obj.pricing, METADATA_LABELS, METADATA_WORDS)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_label(self, obj: StatusUpdate) -> str:
        return str(Message.Status(obj.status).label) if obj.status in Message.Status.values else obj.status


# What a message keeps beside its text (and Meta's status news), as staff read it.
METADATA_LABELS = {
    "staff_name": gettext_lazy("sent by"),
    "guardrail_exception": gettext_lazy("exception confirmed by staff for"),
    "ai_error": gettext_lazy("AI failure (the rules answered)"),
    "fallback": gettext_lazy("answered by the rules"),
    "discount_offered": gettext_lazy("discount offered"),
    "in_reply_to": gettext_lazy("answers message"),
    "judgement": gettext_lazy("links in the reply"),
    "tokens": gettext_lazy("AI tokens"),
    "in": gettext_lazy("input"),
    "out": gettext_lazy("output"),
    "cached": gettext_lazy("cached"),
    "guardrail": gettext_lazy("guardrails"),
    "violations": gettext_lazy("breaches"),
    "dropped_sentences": gettext_lazy("sentences removed"),
    "action": gettext_lazy("what was done"),
    "transcribed": gettext_lazy("voice message transcribed"),
    "transcribe_model": gettext_lazy("transcription model"),
    "transcription_error": gettext_lazy("transcription failed"),
    "edited_text": gettext_lazy("text after the customer's edit"),
    "edited_at": gettext_lazy("edited at"),
    "edited_by": gettext_lazy("edit in message"),
    "revoked_at": gettext_lazy("deleted by the customer at"),
    "revoked_by": gettext_lazy("deletion in message"),
    "profile_name": gettext_lazy("WhatsApp profile name"),
    "user_id": gettext_lazy("WhatsApp user id"),
    "username": gettext_lazy("WhatsApp username"),
    "asks_for_text": gettext_lazy("asked the customer to write instead"),
    "template": gettext_lazy("template"),
    "template_alternatives": gettext_lazy("other templates allowed"),
    "template_switched_from": gettext_lazy("template replaced (paused or rejected)"),
    "intent": gettext_lazy("intent"),
    "sentiment": gettext_lazy("sentiment"),
    "parameters": gettext_lazy("parameters"),
    "name": gettext_lazy("name"),
    "language": gettext_lazy("language"),
    "sequence": gettext_lazy("recovery sequence"),
    "step": gettext_lazy("step"),
    "variant": gettext_lazy("variant"),
    "as_text": gettext_lazy("sent as text inside the 24 h window"),
    "customer_wrote_at": gettext_lazy("customer wrote at"),
    "quiet_hours_waived": gettext_lazy("quiet hours waived"),
    "whatsapp": gettext_lazy("message as WhatsApp sent it"),
    "billable": gettext_lazy("billable"),
    "category": gettext_lazy("category"),
    "pricing_model": gettext_lazy("pricing model"),
    "type": gettext_lazy("type"),
    "code": gettext_lazy("code"),
    "title": gettext_lazy("title"),
    "message": gettext_lazy("message"),
    "error_data": gettext_lazy("detail"),
    "details": gettext_lazy("detail"),
}
_BREACHES = {
    "url": gettext_lazy("link that is not the shop's"),
    "amount": gettext_lazy("amount that is not the cart's"),
    "percent": gettext_lazy("percentage not offered"),
    "coupon": gettext_lazy("coupon the shop did not configure"),
    "discount_promise": gettext_lazy("promise of a discount"),
}
METADATA_WORDS = {
    "guardrail_exception": _BREACHES,
    "violations": _BREACHES,
    "action": {"replaced": gettext_lazy("reply replaced"), "dropped": gettext_lazy("sentences removed")},
    "judgement": {
        "no_links": gettext_lazy("no links (the customer is not ready)"),
        "no_push": gettext_lazy("links without pressing"),
    },
    "ai_error": {
        "timeout": gettext_lazy("no answer in time"),
        "connection": gettext_lazy("no connection"),
        "refusal": gettext_lazy("the model refused"),
        "length": gettext_lazy("answer cut off"),
        "content_filter": gettext_lazy("content filter"),
        "schema": gettext_lazy("answer out of shape"),
        "error": gettext_lazy("error"),
    },
    "category": {
        "marketing": gettext_lazy("marketing"),
        "utility": gettext_lazy("utility"),
        "service": gettext_lazy("service"),
        "authentication": gettext_lazy("authentication"),
    },
}


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
