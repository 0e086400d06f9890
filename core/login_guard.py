"""Admin login throttling: after repeated failures, an address or a username is locked out.

Counts live in the cache (Redis in production, so every web process shares them). A locked
login is refused before the password is even checked, so guessing cannot go on.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def _keys(request: HttpRequest | None, username: str) -> list[str]:
    keys = [f"sara:login:user:{username.strip().lower()[:150]}"] if username else []
    if request is not None:
        keys.append(f"sara:login:ip:{request.META.get('REMOTE_ADDR', '')}")
    return keys


def is_locked(request: HttpRequest, username: str) -> bool:
    return any((cache.get(key) or 0) >= settings.SARA_LOGIN_MAX_FAILURES for key in _keys(request, username))


@receiver(user_login_failed)
def _count_failure(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **_: Any
) -> None:
    for key in _keys(request, str(credentials.get("username") or "")):
        cache.add(key, 0, timeout=settings.SARA_LOGIN_LOCK_SECONDS)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.SARA_LOGIN_LOCK_SECONDS)
            count = 1
        if count == settings.SARA_LOGIN_MAX_FAILURES:
            logger.warning("admin login locked after repeated failures", extra={"key": key.split(":")[2]})


@receiver(user_logged_in)
def _clear_user(sender: Any, request: HttpRequest, user: Any, **_: Any) -> None:
    cache.delete(f"sara:login:user:{user.get_username().strip().lower()[:150]}")
