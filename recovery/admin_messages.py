"""Messages, failed sends and stuck work for ops: each message beside its customer and conversation.

The model is messaging's; its pages live here because they read the recovery's rows (who the
customer is, which conversation), which messaging never does.
"""

from __future__ import annotations

from collections import Counter

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from core.admin_helpers import ReadOnlyAdmin, admin_link, log_and_report, readable_fields
from messaging import selectors
from messaging.metadata_words import METADATA_LABELS, METADATA_WORDS
from messaging.models import Message
from messaging.retry_advice import error_code_words, error_detail_words, retry_advice
from messaging.services.ops import (
    failed_sends_dismiss,
    failed_sends_retry,
    stuck_messages_redrive,
)


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
        conversation = obj.conversation
        advice = retry_advice(
            obj, customer_wrote_at=conversation.last_user_message_at if conversation is not None else None
        )
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
        count = len(result.queued)
        done = ngettext(
            "Queued for sending again: %(count)s send. It goes out after the send-time checks; "
            "if it fails again it returns to the failed sends with its reason.",
            "Queued for sending again: %(count)s sends. Each goes out after the send-time "
            "checks; one that fails again returns to the failed sends with its reason.",
            count,
        )
        queued = Message.objects.filter(pk__in=result.queued)
        log_and_report(
            self, request, queued, _("Retried by hand: queued for sending."), done % {"count": count}
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
