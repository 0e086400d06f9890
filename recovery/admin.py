"""Support's side of recovery: products they edit, customers they look up, carts they read."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from compliance.admin import PhoneSearchMixin, opt_out_reason_label
from compliance.lgpd import is_erased
from core.admin_helpers import GenderedMessagesMixin, ReadOnlyAdmin, admin_link
from core.forms import BRLField, DecimalBRField, PercentField, format_decimal
from core.text import brl

# The conversations' and the messages' pages register themselves with the admin site.
from recovery import admin_conversation, admin_messages  # noqa: F401
from recovery.lgpd import PhoneCheck, customer_erase, customer_export, phone_check
from recovery.lifecycle import optout_register
from recovery.models import Abandonment, Conversation, Customer, Product, SequenceStep, Shop, StepVariant


def local_time(value) -> str:
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "—"


# --- Irreversible actions: a confirmation page and a reason first ------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )


def reason_or_page(
    modeladmin: admin.ModelAdmin,
    request,
    *,
    objects: list,
    action: str,
    title: str,
    warning: str,
    reason_help: str,
    confirm_label: str,
) -> str | TemplateResponse:
    """The reason posted from the confirmation page; until one is given, that page: what an
    irreversible list action does, to whom, and why."""
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        reason: str = form.cleaned_data["reason"]
        return reason
    form.fields["reason"].help_text = reason_help
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.opts,
        "objects": objects,
        "form": form,
        "action": action,
        "warning": warning,
        "confirm_label": confirm_label,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "cancel_url": reverse(f"admin:{modeladmin.opts.app_label}_{modeladmin.opts.model_name}_changelist"),
    }
    return TemplateResponse(request, "admin/sara/confirm_action.html", context)


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
    fields = readonly_fields = (
        "external_id",
        "product",
        "value",
        "status",
        "discount_offers",
        "conversion_link",
        "created_at",
    )
    ordering = ["-created_at"]


class ConversationInline(ReadOnlyInline):
    model = Conversation
    fields = readonly_fields = (
        "status",
        "close_reason_label",
        "needs_human",
        "exchanges",
        "message_count",
        "last_message_at",
    )
    ordering = ["-created_at"]

    @admin.display(description=gettext_lazy("close reason"))
    def close_reason_label(self, obj: Conversation) -> str:
        return obj.close_reason_label


class PhoneCheckForm(forms.Form):
    phone = forms.CharField(
        label=gettext_lazy("Phone number"),
        max_length=40,
        help_text=gettext_lazy("In any format: +55 48 99932-7881, (48) 9932-7881…"),
    )


CUSTOMER_FIELDS = (
    "phone_display",
    "name",
    "whatsapp_user_id",
    "whatsapp_username",
    "opted_out",
    "opt_out_reason_display",
    "opt_out_note",
    "opted_out_at",
    "erased_at",
    "erasure_reason",
    "created_at",
    "updated_at",
)


@admin.register(Customer)
class CustomerAdmin(PhoneSearchMixin, admin.ModelAdmin):
    list_display = [
        "phone_display",
        "name",
        "opted_out",
        "opt_out_reason_display",
        "opted_out_at",
        "abandonment_count",
        "created_at",
    ]
    list_filter = ["opted_out", "opted_out_reason"]
    search_fields = ["phone", "name", "whatsapp_user_id", "whatsapp_username"]
    search_help_text = gettext_lazy(
        "Name, or phone in any format: +55 48 99932-7881, (48) 9932-7881, 48999327881…"
    )
    fields = CUSTOMER_FIELDS
    # Only the name is edited here. Opting out and erasing go through their actions: they close
    # conversations and stop sends.
    readonly_fields = tuple(field for field in CUSTOMER_FIELDS if field != "name")
    inlines = [AbandonmentInline, ConversationInline]
    actions = ["opt_out", "export_personal_data", "erase_personal_data"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(abandonment_total=Count("abandonments"))

    def get_urls(self):
        check = path(
            "check-phone/",
            self.admin_site.admin_view(self.check_phone_view),
            name="recovery_customer_check_phone",
        )
        return [check, *super().get_urls()]

    def get_readonly_fields(self, request, obj=None):
        # An erased person has no name left to edit.
        if obj is not None and is_erased(obj):
            return [*self.readonly_fields, "name"]
        return self.readonly_fields

    @admin.display(description=gettext_lazy("abandonments"), ordering="abandonment_total")
    def abandonment_count(self, obj: Customer) -> int:
        return obj.abandonment_total  # type: ignore[attr-defined]  # added by get_queryset's annotate()

    @admin.display(description=gettext_lazy("phone"), ordering="phone")
    def phone_display(self, obj: Customer) -> str:
        if is_erased(obj):
            when = (
                formats.date_format(timezone.localtime(obj.erased_at), "SHORT_DATE_FORMAT")
                if obj.erased_at
                else ""
            )
            return format_html(
                '<span class="sara-erased" title="{}">{}</span>',
                _("Only a keyed digest of the phone is kept: the number itself is gone."),
                _("Personal data erased %(date)s") % {"date": when} if when else _("Personal data erased"),
            )
        # A person known only by their WhatsApp user id (an opt-out from a username user).
        return obj.phone or "—"

    @admin.display(description=gettext_lazy("opt-out reason"), ordering="opted_out_reason")
    def opt_out_reason_display(self, obj: Customer) -> str:
        return opt_out_reason_label(obj.opted_out_reason)

    def has_add_permission(self, request) -> bool:
        # Customers arrive with their first abandonment (or their first opt-out message).
        return False

    @admin.action(
        description=gettext_lazy("Opt out selected customers (at their request)…"), permissions=["change"]
    )
    def opt_out(self, request, queryset):
        def register(customer: Customer, reason: str) -> tuple[Customer, str, str]:
            customer = optout_register(
                phone=customer.phone,
                whatsapp_user_id=customer.whatsapp_user_id,
                reason="support",
                note=reason,
            )
            return (
                customer,
                _("Opted out at the customer's request. Reason: %(reason)s") % {"reason": reason},
                _("%(customer)s opted out: open conversations closed, nothing more is sent."),
            )

        return self._confirm_then_each(
            request,
            queryset,
            action="opt_out",
            title=_("Opt out customers"),
            warning=_(
                "Sara will never write to these people again: their open conversations close "
                "and their carts are no longer chased. This cannot be undone from the back-office."
            ),
            reason_help=_("How the person asked, e.g. “asked by e-mail on 30/11, ticket 4521”."),
            confirm_label=_("Yes, opt them out"),
            already_done=lambda customer: customer.opted_out,
            already_message=_("%(customer)s was already opted out."),
            apply=register,
        )

    @admin.action(description=gettext_lazy("Export personal data (LGPD, JSON)"), permissions=["view"])
    def export_personal_data(self, request, queryset):
        exports = [customer_export(customer=customer) for customer in queryset]
        for customer in queryset:
            self.log_change(request, customer, _("Personal data exported (LGPD)."))
        response = HttpResponse(
            json.dumps(exports, ensure_ascii=False, indent=2), content_type="application/json; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="sara-personal-data.json"'
        return response

    @admin.action(
        description=gettext_lazy("Erase personal data (LGPD): phone, name and texts…"), permissions=["delete"]
    )
    def erase_personal_data(self, request, queryset):
        def erase(customer: Customer, reason: str) -> tuple[Customer, str, str]:
            customer = customer_erase(customer=customer, reason=reason)
            kept = _(" Their opt-out is kept.") if customer.opted_out else ""
            return (
                customer,
                _("Personal data erased (LGPD). Reason: %(reason)s") % {"reason": reason},
                _("%(customer)s: phone, name and message texts erased.") + kept,
            )

        return self._confirm_then_each(
            request,
            queryset,
            action="erase_personal_data",
            title=_("Erase personal data"),
            warning=_(
                "Everything Sara stores about these people is erased for good: phone, names, "
                "e-mail, CPF, message texts, raw webhooks and the admin's history. The figures "
                "stay, and the numbers stay blocked: Sara never writes to them again."
            ),
            reason_help=_("The data subject's request, e.g. “LGPD request by e-mail on 30/11, ticket 4521”."),
            confirm_label=_("Yes, erase their personal data"),
            already_done=is_erased,
            already_message=_("%(customer)s was already erased."),
            apply=erase,
        )

    def _confirm_then_each(
        self,
        request,
        queryset,
        *,
        already_done: Callable[[Customer], bool],
        already_message: str,
        apply: Callable[[Customer, str], tuple[Customer, str, str]],
        **page: str,
    ) -> TemplateResponse | None:
        """An irreversible action on each selected customer, once a reason is given on the
        confirmation page (`page`: its action, title, warning, reason help and button).
        `apply` answers the customer as it is now, the history entry and the message to staff,
        whose `%(customer)s` is the name from before (an erasure removes it)."""
        customers = list(queryset)
        reason = reason_or_page(self, request, objects=customers, **page)
        if isinstance(reason, TemplateResponse):
            return reason
        for customer in customers:
            label = str(customer)
            if already_done(customer):
                self.message_user(request, already_message % {"customer": label}, messages.WARNING)
                continue
            changed, history, done = apply(customer, reason)
            self.log_change(request, changed, history)
            self.message_user(request, done % {"customer": label}, messages.SUCCESS)
        return None

    # "Is this number blocked?": answered from a typed phone, erased records included.

    def check_phone_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = PhoneCheckForm(request.POST or None)
        check: PhoneCheck | None = None
        if request.method == "POST" and form.is_valid():
            try:
                check = phone_check(raw_phone=form.cleaned_data["phone"])
            except ValueError:
                form.add_error("phone", _("This is not a phone number Sara can read."))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Is this number blocked?"),
            "opts": self.opts,
            "form": form,
            "check": check,
            "verdict": phone_verdict(check) if check else None,
        }
        return TemplateResponse(request, "admin/recovery/customer/check_phone.html", context)


def phone_verdict(check: PhoneCheck) -> str:
    """The answer support reads out, in one sentence."""
    customer = check.customer
    if customer is None:
        return _("Not blocked: Sara has no record of this number. A new cart from it would be contacted.")
    if customer.opted_out:
        verdict = _("Blocked: this number opted out on %(date)s (%(reason)s); Sara never writes to it.") % {
            "date": local_time(customer.opted_out_at),
            "reason": opt_out_reason_label(customer.opted_out_reason),
        }
    elif check.erased:
        verdict = _("Blocked: this person's data was erased on request; Sara never writes to this number.")
    else:
        verdict = _("Not blocked: Sara may contact this number about a new cart.")
    if check.erased:
        verdict += " " + _("Its personal data was erased on %(date)s.") % {
            "date": local_time(customer.erased_at)
        }
    return verdict


class ProductForm(forms.ModelForm):
    price = BRLField(
        label=gettext_lazy("price"),
        required=False,
        min_value=Decimal("0"),
        help_text=gettext_lazy("In reais, as you write it: 397,00 or 1.299,00."),
    )
    discount_percent = PercentField(
        label=gettext_lazy("discount percent"),
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("90"),
        initial=Decimal("0"),
        help_text=gettext_lazy(
            "15 or 12,5. It must be the percent the discount link gives: a link whose coupon or "
            "parameter names a percent (VOLTA10, ?desconto=10) is checked against it."
        ),
    )

    class Meta:
        model = Product
        fields = "__all__"
        help_texts = {
            "faq": gettext_lazy(
                "Questions and answers about this product, for Sara: each question on a line "
                "starting with “P:”, its answer on the next line starting with “R:”. For example, "
                "“P: Tem garantia?” and below it “R: Sim, 12 meses de garantia do fabricante.”"
            ),
        }

    def clean(self):
        data = super().clean() or {}
        percent = data.get("discount_percent") or Decimal(0)
        link = data.get("discount_link")
        # Sara offers a discount only with both: one without the other is a typo, not a choice.
        if percent > 0 and not link and "discount_link" not in self.errors:
            self.add_error("discount_link", _("A discount needs the link that gives it."))
        if link and percent == 0:
            self.add_error("discount_percent", _("Set the percent the discount link gives (1–90)."))
        return data


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductForm
    list_display = [
        "product_id",
        "name",
        "price_brl",
        "discount_percent_label",
        "has_discount",
        "active",
        "updated_at",
    ]
    list_filter = ["active"]
    search_fields = ["product_id", "name"]
    fieldsets = [
        (None, {"fields": ["product_id", "name", "description", "active"]}),
        (gettext_lazy("Links"), {"fields": ["payment_link", "discount_link", "discount_percent"]}),
        (gettext_lazy("What Sara tells customers"), {"fields": ["price", "faq"]}),
        (gettext_lazy("History"), {"fields": ["created_at", "updated_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # The checkout names products by product_id: changing it would orphan their carts.
        return ["product_id", "created_at", "updated_at"] if obj else ["created_at", "updated_at"]

    @admin.display(boolean=True, description=gettext_lazy("discount on"))
    def has_discount(self, obj: Product) -> bool:
        return obj.has_discount

    @admin.display(description=gettext_lazy("discount percent"), ordering="discount_percent")
    def discount_percent_label(self, obj: Product) -> str:
        return f"{format_decimal(obj.discount_percent)} %" if obj.discount_percent else "—"

    @admin.display(description=gettext_lazy("price"), ordering="price")
    def price_brl(self, obj: Product) -> str:
        return brl(obj.price) if obj.price is not None else "—"


@admin.register(Shop)
class ShopAdmin(GenderedMessagesMixin, admin.ModelAdmin):
    """The one row of the shop's knowledge: edited, never added beside it or deleted."""

    fieldsets = [
        (None, {"fields": ["name", "about", "support_hours"]}),
        (
            gettext_lazy("What Sara answers from"),
            {
                "fields": ["shipping", "payment_methods", "installments", "returns"],
                "description": gettext_lazy(
                    "Sara answers customers from these texts and nothing else. Any price, "
                    "percentage or coupon written here may be quoted to a customer; nothing "
                    "that is not written here will be."
                ),
            },
        ),
        (gettext_lazy("History"), {"fields": ["updated_at"]}),
    ]
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request) -> bool:
        # The row comes with the schema (a migration makes it); asking the database here would
        # cost a query on every admin page, whose sidebar checks each model's add permission.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        # A list of one row is a detour: go straight to the shop's page. A database emptied
        # by hand gets its row back, with the defaults, on the first visit.
        if not self.has_change_permission(request):
            return super().changelist_view(request, extra_context)
        shop = Shop.objects.order_by("pk").first() or Shop.objects.create()
        return redirect("admin:recovery_shop_change", shop.pk)


@admin.register(Abandonment)
class AbandonmentAdmin(PhoneSearchMixin, ReadOnlyAdmin):
    # Carts move only through webhooks and Sara's conversation: the admin reads them.
    phone_field = "customer__phone"
    # What fits at 1280 px; offers and the link paid are on the cart's page.
    list_display = [
        "external_id",
        "customer_link",
        "product",
        "value_brl",
        "status",
        "converted_at",
        "conversation_link",
        "created_at",
    ]
    list_filter = ["status", "conversion_link", "created_at"]
    search_fields = ["external_id", "customer__phone", "customer__name", "payment_id"]
    search_help_text = gettext_lazy("Abandonment id, payment id, customer name or phone.")
    list_select_related = ["customer", "product", "conversation"]

    # The cart's page: money in reais and the offers as sentences, not numbers and JSON.
    fields = (
        "external_id",
        "customer_link",
        "product",
        "value_brl",
        "payment_link",
        "status",
        "skip_reason",
        "discount_offers",
        "quotes_words",
        "payment_id",
        "conversion_link",
        "paid_amount_brl",
        "converted_at",
        "held_out",
        "abandoned_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description=gettext_lazy("customer"), ordering="customer__name")
    def customer_link(self, obj: Abandonment) -> str:
        return admin_link(obj.customer)

    @admin.display(description=gettext_lazy("amount paid"))
    def paid_amount_brl(self, obj: Abandonment) -> str:
        return brl(obj.paid_amount) if obj.paid_amount is not None else "—"

    @admin.display(description=gettext_lazy("discount quotes"))
    def quotes_words(self, obj: Abandonment) -> str:
        if not obj.quotes:
            return "—"
        return format_html_join(
            "",
            "<p>{}</p>",
            (
                (
                    _("%(percent)s %% off: %(value)s, link %(link)s")
                    % {
                        "percent": format_decimal(Decimal(str(quote.get("percent", 0)))),
                        "value": brl(Decimal(str(quote.get("value", 0)))),
                        "link": quote.get("link", "—"),
                    },
                )
                for quote in obj.quotes
            ),
        )

    @admin.display(description=gettext_lazy("value"), ordering="value")
    def value_brl(self, obj: Abandonment) -> str:
        return brl(obj.value)

    @admin.display(description=gettext_lazy("conversation"))
    def conversation_link(self, obj: Abandonment) -> str:
        conversation = getattr(obj, "conversation", None)
        if not conversation:
            return "—"
        return admin_link(conversation, f"#{conversation.pk} ({conversation.get_status_display()})")


from recovery.sources import admin as sources_admin  # noqa: E402, F401 - registers the Sources page


class StepVariantInline(admin.TabularInline):
    model = StepVariant
    extra = 1
    fields = ("template", "weight")
    autocomplete_fields = ("template",)


class SequenceStepForm(forms.ModelForm):
    delay_hours = DecimalBRField(
        label=gettext_lazy("delay (hours)"),
        required=False,
        max_digits=6,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("720"),
        help_text=SequenceStep._meta.get_field("delay_hours").help_text,
    )

    class Meta:
        model = SequenceStep
        fields = "__all__"


@admin.register(SequenceStep)
class SequenceStepAdmin(admin.ModelAdmin):
    """The recovery sequence (SPEC §15): each step's delay and the templates it may send, weighted.

    Inside the customer's 24 h window a step goes as text (the template's body); outside, as the
    template Meta approved. Any answer from the customer stops the sequence.
    """

    form = SequenceStepForm
    list_display = ("order", "delay_label", "variants_label", "active")
    list_editable = ("active",)
    inlines = [StepVariantInline]

    @admin.display(description=gettext_lazy("delay"))
    def delay_label(self, step: SequenceStep) -> str:
        if step.delay_hours is not None:
            return _("%(hours)s h") % {"hours": f"{step.delay_hours.normalize():f}".replace(".", ",")}
        if (
            step.order
            == SequenceStep.objects.filter(active=True)
            .order_by("order")
            .values_list("order", flat=True)
            .first()
        ):
            return _("at once")
        return _("FOLLOWUP_AFTER_HOURS (%(hours)s h)") % {"hours": settings.FOLLOWUP_AFTER_HOURS}

    @admin.display(description=gettext_lazy("templates and share of carts"))
    def variants_label(self, step: SequenceStep) -> str:
        variants = list(step.variants.select_related("template"))
        total = sum(v.weight for v in variants) or 1
        from_settings = _("from the settings")
        return ", ".join(
            f"{v.template.name if v.template else from_settings} ({round(v.weight * 100 / total)} %)"
            for v in variants
        )
