"""The base of every domain error: what went wrong, in words and in details a caller can act on.

Services raise subclasses (one module of them per app); views map each to an HTTP answer in the
contract's error shape. A service never knows it was called over HTTP.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
