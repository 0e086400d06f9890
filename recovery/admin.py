"""Support's side of recovery: products they edit, customers they look up, carts they read."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from compliance.lgpd import customer_export
from core.text import brl
from messaging.models import Conversation
from recovery.lifecycle import customer_erase, optout_register
from recovery.models import Abandonment, Customer, Product
from recovery.phones import InvalidPhone, normalize_phone

# Only digits and what people type between them: "+55 (48) 99932-7881", "48 9932.7881".
_PHONE_LIKE = re.compile(r"^[\d\s+\-().]+$")
MIN_PHONE_DIGITS = 4


def phone_lookup(field: str, term: str) -> Q | None:
    """The filter a phone-like search term means, whatever its format; None for other terms.

    A whole number (with or without +55, the area code's 0, or Brazil's ninth digit) finds the
    stored E.164 phone exactly; a fragment ("9932-7881") matches the phones containing its digits.
    """
    term = term.strip()
    digits = "".join(ch for ch in term if ch.isdigit())
    if not _PHONE_LIKE.match(term) or len(digits) < MIN_PHONE_DIGITS:
        return None
    try:
        return Q(**{field: normalize_phone(term)})
    except InvalidPhone:
        return Q(**{f"{field}__contains": digits})


class PhoneSearchMixin:
    """Admin search that also understands a customer's phone typed in any format."""

    phone_field = "phone"

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        lookup = phone_lookup(self.phone_field, search_term)
        if lookup is not None:
            results = results | queryset.filter(lookup)
        return results, may_have_duplicates


def admin_link(obj, label: str | None = None) -> str:
    if obj is None:
        return "—"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AbandonmentInline(ReadOnlyInline):
    model = Abandonment
    fields = ["external_id", "product", "value", "status", "discount_offers", "conversion_link", "created_at"]
    readonly_fields = fields
    ordering = ["-created_at"]


class ConversationInline(ReadOnlyInline):
    model = Conversation
    fields = ["status", "close_reason", "needs_human", "exchanges", "message_count", "last_message_at"]
    readonly_fields = fields
    ordering = ["-created_at"]


@admin.register(Customer)
class CustomerAdmin(PhoneSearchMixin, admin.ModelAdmin):
    list_display = [
        "phone",
        "name",
        "opted_out",
        "opted_out_reason",
        "opted_out_at",
        "abandonment_count",
        "created_at",
    ]
    list_filter = ["opted_out", "opted_out_reason"]
    search_fields = ["phone", "name"]
    search_help_text = "Name, or phone in any format: +55 48 99932-7881, (48) 9932-7881, 48999327881…"
    fields = ["phone", "name", "opted_out", "opted_out_reason", "opted_out_at", "created_at", "updated_at"]
    # Opting out goes through the action: it also closes open conversations and stops sends.
    readonly_fields = ["phone", "opted_out", "opted_out_reason", "opted_out_at", "created_at", "updated_at"]
    inlines = [AbandonmentInline, ConversationInline]
    actions = ["opt_out", "export_personal_data", "erase_personal_data"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(abandonment_total=Count("abandonments"))

    @admin.display(description="abandonments", ordering="abandonment_total")
    def abandonment_count(self, obj: Customer) -> int:
        return obj.abandonment_total

    def has_add_permission(self, request) -> bool:
        # Customers arrive with their first abandonment (or their first opt-out message).
        return False

    @admin.action(description="Opt out selected customers (at their request)", permissions=["change"])
    def opt_out(self, request, queryset):
        for customer in queryset:
            if customer.opted_out:
                self.message_user(request, f"{customer} was already opted out.", messages.WARNING)
                continue
            optout_register(phone=customer.phone, reason="support")
            self.log_change(request, customer, "Opted out by support at the customer's request.")
            self.message_user(
                request, f"{customer} opted out: open conversations closed, nothing more is sent."
            )

    @admin.action(description="Export personal data (LGPD, JSON)", permissions=["view"])
    def export_personal_data(self, request, queryset):
        exports = [customer_export(customer=customer) for customer in queryset]
        for customer in queryset:
            self.log_change(request, customer, "Personal data exported (LGPD).")
        response = HttpResponse(
            json.dumps(exports, ensure_ascii=False, indent=2), content_type="application/json; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="sara-personal-data.json"'
        return response

    @admin.action(description="Erase personal data (LGPD): phone, name and texts", permissions=["delete"])
    def erase_personal_data(self, request, queryset):
        for customer in queryset:
            label = str(customer)
            customer = customer_erase(customer=customer)
            self.log_change(request, customer, "Personal data erased (LGPD).")
            kept = " Their opt-out is kept." if customer.opted_out else ""
            self.message_user(request, f"{label}: phone, name and message texts erased.{kept}")


class ProductForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = "__all__"

    def clean(self):
        data = super().clean()
        percent = data.get("discount_percent") or Decimal(0)
        link = data.get("discount_link")
        # Sara offers a discount only with both: one without the other is a typo, not a choice.
        if percent > 0 and not link and "discount_link" not in self.errors:
            self.add_error("discount_link", "A discount needs the link that gives it.")
        if link and percent == 0:
            self.add_error("discount_percent", "Set the percent the discount link gives (1–90).")
        return data


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductForm
    list_display = ["product_id", "name", "discount_percent", "has_discount", "active", "updated_at"]
    list_filter = ["active"]
    search_fields = ["product_id", "name"]
    fieldsets = [
        (None, {"fields": ["product_id", "name", "description", "active"]}),
        ("Links", {"fields": ["payment_link", "discount_link", "discount_percent"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # The checkout names products by product_id: changing it would orphan their carts.
        return ["product_id", "created_at", "updated_at"] if obj else ["created_at", "updated_at"]

    @admin.display(boolean=True, description="discount on")
    def has_discount(self, obj: Product) -> bool:
        return obj.has_discount


@admin.register(Abandonment)
class AbandonmentAdmin(PhoneSearchMixin, admin.ModelAdmin):
    phone_field = "customer__phone"
    list_display = [
        "external_id",
        "customer_link",
        "product",
        "value_brl",
        "status",
        "discount_offers",
        "conversion_link",
        "converted_at",
        "conversation_link",
        "created_at",
    ]
    list_filter = ["status", "conversion_link", "created_at"]
    search_fields = ["external_id", "customer__phone", "customer__name", "payment_id"]
    list_select_related = ["customer", "product", "conversation"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # Carts move only through webhooks and Sara's conversation: the admin reads them.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="customer", ordering="customer__name")
    def customer_link(self, obj: Abandonment) -> str:
        return admin_link(obj.customer)

    @admin.display(description="value", ordering="value")
    def value_brl(self, obj: Abandonment) -> str:
        return brl(obj.value)

    @admin.display(description="conversation")
    def conversation_link(self, obj: Abandonment) -> str:
        conversation = getattr(obj, "conversation", None)
        return (
            admin_link(conversation, f"#{conversation.pk} ({conversation.status})") if conversation else "—"
        )


from recovery.sources import admin as sources_admin  # noqa: E402, F401 - registers the Sources page
