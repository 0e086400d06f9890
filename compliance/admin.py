"""Opt-out keywords, edited by support; the next inbound message already uses them (no cache)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

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
                "A keyword needs letters or digits; punctuation alone matches nothing."
            )
        others = OptOutKeyword.objects.exclude(pk=self.instance.pk)
        clash = next((k for k in others if fold(k.keyword) == folded), None)
        if clash is not None:
            raise forms.ValidationError(f"“{clash.keyword}” already covers this keyword.")
        return keyword


@admin.register(OptOutKeyword)
class OptOutKeywordAdmin(admin.ModelAdmin):
    form = OptOutKeywordForm
    list_display = ["keyword", "active", "updated_at"]
    list_filter = ["active"]
    search_fields = ["keyword"]
    actions = ["deactivate", "activate"]

    @admin.action(description="Deactivate selected keywords", permissions=["change"])
    def deactivate(self, request, queryset):
        self._set_active(request, queryset, active=False)

    @admin.action(description="Activate selected keywords", permissions=["change"])
    def activate(self, request, queryset):
        self._set_active(request, queryset, active=True)

    def _set_active(self, request, queryset, *, active: bool) -> None:
        changed = [k for k in queryset if k.active != active]
        for keyword in changed:
            keyword.active = active
            keyword.save(update_fields=["active", "updated_at"])
            self.log_change(request, keyword, "Activated." if active else "Deactivated.")
        state = "active" if active else "inactive"
        self.message_user(request, f"{len(changed)} keyword(s) now {state}.")
