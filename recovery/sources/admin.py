"""The admin's Sources page (SPEC §11): the URL to paste into each platform, whether its secret
is set (never the secret), its last events and what became of them, and the carts it sent."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_helpers import ReadOnlyAdmin
from recovery.models import SourceCheckout
from recovery.sources.selectors import generic_webhook_summary, sources_summary

OUTCOMES = {
    "opened": _("opened"),
    "waiting": _("waiting"),
    "converted": _("converted"),
    "completed": _("paid before contact"),
    "duplicate": _("duplicate"),
    "skipped": _("skipped"),
    "ignored": _("ignored"),
    "pending": _("pending"),
    "invalid": _("invalid"),
    "failed": _("failed"),
}


@admin.register(SourceCheckout)
class SourceCheckoutAdmin(ReadOnlyAdmin):
    change_list_template = "admin/recovery/sourcecheckout/change_list.html"
    list_display = ["platform", "checkout_id", "status", "skip_reason", "abandonment", "due_at", "created_at"]
    list_filter = ["platform", "status", "skip_reason"]
    search_fields = ["checkout_id", "token", "product_id"]
    list_select_related = ["abandonment"]
    readonly_fields = [f.name for f in SourceCheckout._meta.fields]

    def changelist_view(self, request, extra_context=None):
        context = {
            "sources": sources_summary(request=request),
            "generic": generic_webhook_summary(request=request),
            "outcome_labels": OUTCOMES,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)
