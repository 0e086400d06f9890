"""Opt-out keywords, edited by support staff in the admin."""

from __future__ import annotations

from django.db import models


class OptOutKeyword(models.Model):
    keyword = models.CharField(max_length=100, unique=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["keyword"]

    def __str__(self) -> str:
        return self.keyword
