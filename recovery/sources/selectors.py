"""What the admin's Sources page shows: per platform, how to connect it and what it sent."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise

from messaging.models import WebhookEvent
from recovery.sources.registry import SOURCES

LAST_EVENTS = 10


@dataclass(frozen=True)
class SourceSummary:
    name: str
    label: str
    url: str
    env_var: str
    secret_set: bool
    help_text: str | Promise
    events: list[WebhookEvent] = field(default_factory=list)
    # Only Nuvemshop has one: its checkouts are read with the store's token.
    poller: str = ""


def sources_summary(*, request: HttpRequest) -> list[SourceSummary]:
    summaries = []
    for source in SOURCES.values():
        # Every source event's reference starts with its platform (an index serves the prefix).
        events = list(
            WebhookEvent.objects.filter(
                type=WebhookEvent.Type.SOURCE, reference__startswith=f"{source.name}:"
            ).order_by("-created_at")[:LAST_EVENTS]
        )
        poller = ""
        if source.name == "nuvemshop":
            connected = bool(settings.NUVEMSHOP_STORE_ID and settings.NUVEMSHOP_ACCESS_TOKEN)
            poller = "connected" if connected else "not connected"
        summaries.append(
            SourceSummary(
                name=source.name,
                label=source.label,
                url=request.build_absolute_uri(reverse("webhook-source", args=[source.name])),
                env_var=source.env_var,
                secret_set=source.enabled,
                help_text=source.help_text,
                events=events,
                poller=poller,
            )
        )
    return summaries
