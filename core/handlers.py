"""Named work that a lower app calls and a higher app does, bound once when Django starts.

A lower app declares the handler (its name and signature) and calls it; the app above binds
its function in `AppConfig.ready`. The lower app imports nothing of the higher one, and a
handler nobody bound fails Django's start-up checks (`handlers_unbound`) instead of a task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class HandlerNotBound(RuntimeError):
    """A handler was called before the app that does its work bound it."""


class Handler[**P, R]:
    """One piece of work by name: declared below, bound above, called like a function."""

    def __init__(self, name: str, *, bound_by: str) -> None:
        self.name = name
        self.bound_by = bound_by
        self.function: Callable[P, R] | None = None
        _declared[name] = self

    def bind(self, function: Callable[P, R]) -> None:
        self.function = function

    @property
    def bound(self) -> bool:
        return self.function is not None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        function = self.function
        if function is None:
            raise HandlerNotBound(f"{self.name} is not bound: {self.bound_by} binds it at start-up.")
        return function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Handler {self.name} ({'bound' if self.bound else 'unbound'})>"


_declared: dict[str, Handler[Any, Any]] = {}


def handlers_declared() -> dict[str, Handler[Any, Any]]:
    return dict(_declared)


def handlers_unbound() -> list[str]:
    """The names of the declared handlers that no app has bound."""
    return sorted(name for name, handler in _declared.items() if not handler.bound)
