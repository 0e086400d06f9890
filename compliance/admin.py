"""Compliance in the admin: opt-out keywords, edited by support (the next inbound message already
uses them, no cache); the phone search every admin uses, which also finds an erased person's
record (LGPD); and opt-out reasons as support reads them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Q
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from compliance.lgpd import phone_digest
from compliance.models import OptOutKeyword
from core.admin_helpers import GenderedMessagesMixin
from core.phones import InvalidPhone, normalize_phone
from core.text import fold

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
        phone = normalize_phone(term)
    except InvalidPhone:
        return Q(**{f"{field}__contains": digits})
    # An erased person's row carries the keyed digest of their phone, never the phone: the
    # whole number typed still finds it, so support sees the erasure (and the opt-out it keeps).
    return Q(**{field: phone}) | Q(**{field: phone_digest(phone)})


if TYPE_CHECKING:
    # For the type checker the mixin is the ModelAdmin it is mixed into.
    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object


class PhoneSearchMixin(_AdminBase):
    """Admin search that also understands a customer's phone typed in any format."""

    phone_field = "phone"

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        lookup = phone_lookup(self.phone_field, search_term)
        if lookup is not None:
            results = results | queryset.filter(lookup)
        return results, may_have_duplicates


# Opt-out reasons as stored (the channel the wish came through) → what support reads.
OPT_OUT_REASONS = {
    "keyword": gettext_lazy("a keyword in their message"),
    "ai": gettext_lazy("their message, as the AI read it"),
    "support": gettext_lazy("support, at their request"),
    "meta_marketing_stop": gettext_lazy("marketing messages turned off in WhatsApp"),
}


def opt_out_reason_label(code: str) -> str:
    return str(OPT_OUT_REASONS.get(code, code)) if code else "—"


DEACTIVATION_WARNING = gettext_lazy(
    "A customer who writes only these words will no longer be opted out at once: the message "
    "goes to the AI (or the rules), which decides whether it is an opt-out and may answer it "
    "instead. “PARAR” is the word Sara's messages tell customers to send to stop."
)


class DeactivationForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )


class OptOutKeywordForm(forms.ModelForm):
    class Meta:
        model = OptOutKeyword
        fields = ["keyword", "active"]

    def clean_keyword(self) -> str:
        keyword = " ".join(self.cleaned_data["keyword"].lower().split())
        folded = fold(keyword)
        # Detection compares folded text: "Não quero!" and "nao quero" are one keyword.
        if not folded:
            raise forms.ValidationError(
                _("A keyword needs letters or digits; punctuation alone matches nothing.")
            )
        others = OptOutKeyword.objects.exclude(pk=self.instance.pk)
        clash = next((k for k in others if fold(k.keyword) == folded), None)
        if clash is not None:
            raise forms.ValidationError(
                _("“%(keyword)s” already covers this keyword.") % {"keyword": clash.keyword}
            )
        return keyword


@admin.register(OptOutKeyword)
class OptOutKeywordAdmin(GenderedMessagesMixin, admin.ModelAdmin):
    form = OptOutKeywordForm
    list_display = ["keyword", "active", "updated_at"]
    list_filter = ["active"]
    search_fields = ["keyword"]
    actions = ["deactivate", "activate"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "active" in form.changed_data and not obj.active:
            self.message_user(request, DEACTIVATION_WARNING, messages.WARNING)

    @admin.action(description=gettext_lazy("Deactivate selected keywords…"), permissions=["change"])
    def deactivate(self, request, queryset):
        keywords = [k for k in queryset if k.active]
        form = DeactivationForm(request.POST if "apply" in request.POST else None)
        if keywords and not (form.is_bound and form.is_valid()):
            # A customer writing only this word is then no longer opted out at once: the
            # interpreter decides, and may read it as something else. Said before it happens.
            form.fields["reason"].help_text = _("Why, e.g. “customers use ‘sair’ for ‘sair para pagar’”.")
            return TemplateResponse(
                request,
                "admin/sara/confirm_action.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("Deactivate opt-out keywords"),
                    "opts": self.opts,
                    "objects": keywords,
                    "form": form,
                    "action": "deactivate",
                    "warning": DEACTIVATION_WARNING,
                    "confirm_label": _("Yes, deactivate them"),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                    "cancel_url": reverse("admin:compliance_optoutkeyword_changelist"),
                },
            )
        self._set_active(
            request, queryset, active=False, reason=form.cleaned_data["reason"] if keywords else ""
        )
        return None

    @admin.action(description=gettext_lazy("Activate selected keywords"), permissions=["change"])
    def activate(self, request, queryset):
        self._set_active(request, queryset, active=True)

    def _set_active(self, request, queryset, *, active: bool, reason: str = "") -> None:
        changed = [k for k in queryset if k.active != active]
        for keyword in changed:
            keyword.active = active
            keyword.save(update_fields=["active", "updated_at"])
            done = _("Activated.") if active else _("Deactivated. Reason: %(reason)s") % {"reason": reason}
            self.log_change(request, keyword, done)
        if active:
            self.message_user(
                request,
                ngettext("%(count)s keyword now active.", "%(count)s keywords now active.", len(changed))
                % {"count": len(changed)},
            )
        else:
            self.message_user(
                request,
                ngettext("%(count)s keyword now inactive.", "%(count)s keywords now inactive.", len(changed))
                % {"count": len(changed)},
            )
