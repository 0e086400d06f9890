"""Small helpers every app's admin uses."""

from __future__ import annotations

from django.db.models import Model
from django.urls import reverse
from django.utils.html import format_html


def admin_link(obj: Model | None, label: str | None = None) -> str:
    """A link to the object's admin page, whichever app it belongs to; a dash for none."""
    if obj is None:
        return "—"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or str(obj))
