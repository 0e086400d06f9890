"""Meta's webhook batches, its status news and the templates, for ops.

The messages' own pages (failed sends, stuck work) show each message's customer and
conversation, which are the recovery's: they live in `recovery/admin_messages.py`.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from core.admin_helpers import ReadOnlyAdmin, log_and_report, readable_fields
from messaging import selectors
from messaging.metadata_words import METADATA_LABELS, METADATA_WORDS
from messaging.models import Message, StatusUpdate, Template, WebhookEvent
from messaging.services.ops import stuck_events_redrive

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
        count = len(result.events)
        done = ngettext("Queued again: %(count)s batch.", "Queued again: %(count)s batches.", count)
        redriven = WebhookEvent.objects.filter(pk__in=result.events)
        log_and_report(
            self, request, redriven, _("Re-driven by hand: queued for fan-out."), done % {"count": count}
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
