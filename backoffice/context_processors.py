"""What every admin page shows: how many customers wait for a person (SPEC §8, the support desk)."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from recovery import desk

# How often each admin page asks for the waiting count (seconds), in the background too.
DESK_POLL_SECONDS = 15


def desk_waiting(request: HttpRequest) -> dict[str, Any]:
    """The waiting count for the title and the header of admin pages, read once a page and only
    if the page shows it; nothing for anyone who may not see conversations."""
    user = getattr(request, "user", None)
    if user is None or not user.is_active or not user.is_staff:
        return {}
    if not request.path.startswith(_admin_root()):
        return {}
    if not user.has_perm("recovery.view_conversation"):
        return {}

    @cache
    def summary() -> tuple[int, int | None]:
        return desk.waiting_summary()

    return {
        "desk_waiting": lambda: summary()[0],
        "desk_newest": lambda: summary()[1],
        "desk_waiting_url": reverse("admin:desk_waiting"),
        "desk_inbox_url": _inbox_url(),
        "desk_poll_seconds": DESK_POLL_SECONDS,
    }


def _admin_root() -> str:
    return reverse("admin:index")


def _inbox_url() -> str:
    # The conversation admin lives in messaging today and may move with the conversation.
    for name in ("admin:recovery_conversation_inbox", "admin:messaging_conversation_inbox"):
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return _admin_root()
