"""What the admin's Sources page shows: per platform, how to connect it and what it sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import Promise

from core.text import brl
from messaging.models import WebhookEvent
from recovery.models import Abandonment
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
    # Work that failed for a reason a person can fix and that Sara will attempt again.
    due_work: int = 0


@dataclass(frozen=True)
class GenericCart:
    created_at: datetime
    external_id: str
    status: str
    value: str


@dataclass(frozen=True)
class GenericWebhookSummary:
    """POST /webhook/abandonment (SPEC §4.1): the carts a shop's own system sends."""

    url: str
    env_var: str
    secret_set: bool
    cart_count: int
    carts: list[GenericCart] = field(default_factory=list)


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
        due_work = (
            WebhookEvent.objects.filter(
                type=WebhookEvent.Type.SOURCE,
                reference__startswith=f"{source.name}:",
                processed=False,
                outcome__in=("pending", "failed"),
            )
            .exclude(external_id=None)
            .count()
        )
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
                due_work=due_work,
            )
        )
    return summaries


def generic_webhook_summary(*, request: HttpRequest) -> GenericWebhookSummary:
    # A platform's cart is opened through the same service, but keeps its SourceCheckout row.
    carts = Abandonment.objects.filter(source_checkouts__isnull=True)
    return GenericWebhookSummary(
        url=request.build_absolute_uri(reverse("webhook-abandonment")),
        env_var="PAYMENT_WEBHOOK_SECRET",
        secret_set=bool(settings.PAYMENT_WEBHOOK_SECRET),
        cart_count=carts.count(),
        carts=[
            GenericCart(cart.created_at, cart.external_id, cart.get_status_display(), brl(cart.value))
            for cart in carts.order_by("-created_at")[:LAST_EVENTS]
        ],
    )
