"""The staff account behind an admin page or an API call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from rest_framework.request import Request


def staff_user(request: HttpRequest | Request) -> User:
    """The signed-in account behind a staff page or API call (their login checks ran first)."""
    user = request.user
    if not user.is_authenticated:
        raise PermissionDenied
    return user


def staff_name(user: User | None) -> str:
    """How staff screens name a colleague: their full name, or their username when it is empty."""
    if user is None:
        return ""
    full_name = getattr(user, "get_full_name", lambda: "")().strip()
    return full_name or user.get_username()
