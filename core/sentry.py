"""Sentry, when SENTRY_DSN is set: Django and Celery errors, with personal data scrubbed."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from core.logging import mask_phones_in

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

# Keys whose values are people's words or identities, wherever they appear in an event.
_PRIVATE_KEYS = re.compile(r"^(text|body|name|phone|wa_id|from|to|recipient_id|caption|emoji|profile)$", re.I)


def scrub(value: Any, key: str = "") -> Any:
    if key and _PRIVATE_KEYS.match(key):
        return "[scrubbed]"
    if isinstance(value, dict):
        return {k: scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return mask_phones_in(value)
    return value


def before_send(event: Event, hint: Hint) -> Event:
    """Drop request bodies (webhook payloads carry phones and messages) and mask the rest."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
    return cast("Event", scrub(event))


def init(*, dsn: str, environment: str, release: str) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        # No user details, no request bodies, no local variables (they hold phones and texts).
        data_collection={"user_info": False, "http_bodies": [], "stack_frame_variables": False},
        before_send=before_send,
        traces_sample_rate=0.0,
    )
