"""Opt-out keywords, edited by support staff in the admin."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class OptOutKeyword(models.Model):
    keyword = models.CharField(max_length=100, unique=True, verbose_name=_("keyword"))
    active = models.BooleanField(default=True, verbose_name=_("active"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        ordering = ["keyword"]
        verbose_name = _("opt-out keyword")
        verbose_name_plural = _("opt-out keywords")

    def __str__(self) -> str:
        return self.keyword
