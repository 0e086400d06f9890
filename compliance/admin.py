"""Opt-out keywords, edited by support; the next inbound message already uses them (no cache)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from compliance.models import OptOutKeyword
from core.text import fold


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
class OptOutKeywordAdmin(admin.ModelAdmin):
    form = OptOutKeywordForm
    list_display = ["keyword", "active", "updated_at"]
    list_filter = ["active"]
    search_fields = ["keyword"]
    actions = ["deactivate", "activate"]

    @admin.action(description=gettext_lazy("Deactivate selected keywords"), permissions=["change"])
    def deactivate(self, request, queryset):
        self._set_active(request, queryset, active=False)

    @admin.action(description=gettext_lazy("Activate selected keywords"), permissions=["change"])
    def activate(self, request, queryset):
        self._set_active(request, queryset, active=True)

    def _set_active(self, request, queryset, *, active: bool) -> None:
        changed = [k for k in queryset if k.active != active]
        for keyword in changed:
            keyword.active = active
            keyword.save(update_fields=["active", "updated_at"])
            self.log_change(request, keyword, _("Activated.") if active else _("Deactivated."))
        if active:
            self.message_user(request, _("%(count)s keyword(s) now active.") % {"count": len(changed)})
        else:
            self.message_user(request, _("%(count)s keyword(s) now inactive.") % {"count": len(changed)})
