"""The conversations in the back-office: the transcript, closing with a reason, the hand-off desk."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from compliance.admin import PhoneSearchMixin, opt_out_reason_label
from compliance.lgpd import is_erased
from core.admin_helpers import GenderedMessagesMixin, admin_link
from core.staff import staff_name
from core.text import brl
from messaging.models import Message
from recovery.admin_desk import DeskAdminMixin
from recovery.admin_handoff import HandoffAdminMixin
from recovery.lifecycle import conversation_close
from recovery.models import Conversation

# --- Conversations (support) ---------------------------------------------------------------


class CloseForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=200,
        help_text=gettext_lazy("Shown to everyone who opens the conversation later, e.g. “paid by phone”."),
    )


class AssignedToFilter(admin.SimpleListFilter):
    """The colleague holding the conversation, by name."""

    title = gettext_lazy("person responsible")
    parameter_name = "assigned_to"

    def lookups(self, request, model_admin):
        staff = get_user_model().objects.filter(is_staff=True, is_active=True)
        return [
            (str(user.pk), staff_name(user)) for user in staff.order_by("first_name", "last_name", "username")
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        # A hand-typed address with no such colleague lists nobody rather than failing.
        return queryset.filter(assigned_to_id=value) if value.isdigit() else queryset.none()


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
class ConversationAdmin(
    GenderedMessagesMixin, DeskAdminMixin, HandoffAdminMixin, PhoneSearchMixin, admin.ModelAdmin
):
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
    list_filter = ["status", "needs_human", "handoff_reason", AssignedToFilter, "followup_sent"]
    search_fields = ["customer__phone", "customer__name", "abandonment__external_id"]
    search_help_text = gettext_lazy(
        "Customer name, phone in any format, abandonment id, or words the customer wrote."
    )
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
            name="recovery_conversation_close",
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
            (message, template_text(message), None)
            for message in obj.messages.select_related("sent_by").order_by("created_at", "id")
        ]
        entries = self.with_private_notes(obj, entries)
        return render_to_string("admin/recovery/conversation/transcript.html", {"entries": entries})

    # Closing: one conversation from its page, or many from the list; both ask for a reason.

    def close_view(self, request, object_id: str):
        conversation = get_object_or_404(Conversation.objects.select_related("customer"), pk=object_id)
        if not self.has_change_permission(request, conversation):
            raise PermissionDenied
        change_url = reverse("admin:recovery_conversation_change", args=[conversation.pk])
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
            request, conversations, form, cancel_url=reverse("admin:recovery_conversation_changelist")
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
            "is_action": request.path == reverse("admin:recovery_conversation_changelist"),
            "cancel_url": cancel_url,
        }
        return TemplateResponse(request, "admin/recovery/conversation/close.html", context)


def template_text(message: Message) -> str:
    """The body the customer read for a template message: the approved text with its parameters."""
    template = message.metadata.get("template") or {}
    body = settings.WHATSAPP_TEMPLATE_BODIES.get(template.get("name", ""))
    if message.kind != Message.Kind.TEMPLATE or not body:
        return ""
    for number, value in enumerate(template.get("parameters", []), start=1):
        body = body.replace(f"{{{{{number}}}}}", str(value))
    return body
