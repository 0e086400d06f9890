"""Small helpers every app's admin uses."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import Model
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, pgettext_lazy

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin


class ReadOnlyAdmin(_ModelAdmin):
    """Rows written by webhooks and tasks: the admin shows them and never edits them."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def log_and_report(
    modeladmin: _ModelAdmin, request: HttpRequest, rows: Iterable[Model], history: str, report: str
) -> None:
    """After an action: `history` in the admin history of each row it changed, then `report`
    to the staff member, when it changed any."""
    changed = list(rows)
    for row in changed:
        modeladmin.log_change(request, row, history)
    if changed:
        modeladmin.message_user(request, report, messages.SUCCESS)


def admin_link(obj: Model | None, label: str | None = None) -> str:
    """A link to the object's admin page, whichever app it belongs to; a dash for none."""
    if obj is None:
        return "—"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


def readable_fields(
    data: object,
    labels: Mapping[str, StrOrPromise],
    words: Mapping[str, Mapping[str, StrOrPromise]] | None = None,
) -> str:
    """A JSON field as staff read it: one "label: value" line per key, nested keys indented.

    Known keys take their label from `labels` and known codes their words from `words` (by key);
    unknown keys are listed plainly as "key: value". No braces, quotes or brackets reach the page.
    """
    if data in (None, "", [], {}):
        return "—"
    return _readable(data, "", labels, words or {})


def _readable(
    value: object,
    key: str,
    labels: Mapping[str, StrOrPromise],
    words: Mapping[str, Mapping[str, StrOrPromise]],
) -> str:
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if value is None or value == "":
        return "—"
    if isinstance(value, dict):
        return format_html(
            '<ul class="sara-fields">{}</ul>',
            format_html_join(
                "",
                "<li><strong>{}:</strong> {}</li>",
                ((labels.get(k, k), _readable(v, str(k), labels, words)) for k, v in value.items()),
            ),
        )
    if isinstance(value, list):
        if all(not isinstance(item, dict | list) for item in value):
            return ", ".join(str(_readable(item, key, labels, words)) for item in value) or "—"
        return format_html_join("", "{}", ((_readable(item, key, labels, words),) for item in value))
    return str(words.get(key, {}).get(str(value), value))


# Django's admin writes "The {name} “{obj}” was changed successfully." with one article for every
# model, and its Portuguese says "O {name} … foi alterado": wrong for "a loja", "a palavra-chave".
# Models named by a feminine noun are listed here; their admin rewrites those sentences.
FEMININE_MODELS = frozenset(
    {
        "recovery.shop",
        "recovery.stepvariant",
        "compliance.optoutkeyword",
        "recovery.conversation",
        "messaging.message",
        "messaging.statusupdate",
    }
)
FEMININE_SENTENCES = {
    "The {name} “{obj}” was added successfully.": pgettext_lazy(
        "feminine", "The {name} “{obj}” was added successfully."
    ),
    "The {name} “{obj}” was added successfully. You may edit it again below.": pgettext_lazy(
        "feminine", "The {name} “{obj}” was added successfully. You may edit it again below."
    ),
    "The {name} “{obj}” was added successfully. You may add another {name} below.": pgettext_lazy(
        "feminine", "The {name} “{obj}” was added successfully. You may add another {name} below."
    ),
    "The {name} “{obj}” was changed successfully.": pgettext_lazy(
        "feminine", "The {name} “{obj}” was changed successfully."
    ),
    "The {name} “{obj}” was changed successfully. You may edit it again below.": pgettext_lazy(
        "feminine", "The {name} “{obj}” was changed successfully. You may edit it again below."
    ),
    "The {name} “{obj}” was changed successfully. You may add another {name} below.": pgettext_lazy(
        "feminine", "The {name} “{obj}” was changed successfully. You may add another {name} below."
    ),
    "The {name} “{obj}” was deleted successfully.": pgettext_lazy(
        "feminine", "The {name} “{obj}” was deleted successfully."
    ),
}


def _sentence_pattern(translated: str, name: str) -> re.Pattern[str]:
    """Django's translated sentence as a pattern whose {obj} (a link, already escaped) is captured."""
    pattern = re.escape(translated).replace(re.escape("{name}"), re.escape(name))
    return re.compile(pattern.replace(re.escape("{obj}"), "(?P<obj>.*)", 1).replace(re.escape("{obj}"), ".*"))


class GenderedMessagesMixin:
    """Gives a feminine model's admin the feminine form of Django's add/change/delete sentences."""

    def message_user(
        self,
        request: HttpRequest,
        message: StrOrPromise,
        level: int | str = messages.INFO,
        extra_tags: str = "",
        fail_silently: bool = False,
    ) -> None:
        # Mixed in front of a ModelAdmin: `model` and `message_user` are the admin's.
        opts = self.model._meta  # type: ignore[attr-defined]
        if opts.label_lower in FEMININE_MODELS:
            name = str(opts.verbose_name)
            for english, feminine in FEMININE_SENTENCES.items():
                match = _sentence_pattern(gettext(english), name).fullmatch(str(message))
                if match:
                    # The captured object is Django's own escaped link: safe as it came.
                    message = format_html(str(feminine), name=name, obj=mark_safe(match["obj"]))  # noqa: S308
                    break
        super().message_user(request, message, level, extra_tags, fail_silently)  # type: ignore[misc]
