"""Celery interface of recovery's sources: the Shopify wait's sweep and the Nuvemshop poller.

The task names keep the module they had (`recovery.tasks.*`): beat schedules and queued work
name them.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from recovery.sources import services
from recovery.sources.nuvemshop import NuvemshopClient, NuvemshopError

logger = logging.getLogger(__name__)

MAX_POLL_RETRIES = 5
ORDER_FETCH_RETRIES = 5


def backoff_seconds(retries: int) -> float:
    """≈30 s, 60 s, 2 min... with jitter: Nuvemshop's 429 asks the app to slow down."""
    return 30.0 * 2.0**retries * random.uniform(0.8, 1.2)


@shared_task(name="recovery.tasks.sweep_source_checkouts")
def sweep_source_checkouts() -> int:
    return services.sweep_source_checkouts(now=timezone.now())


@shared_task(bind=True, name="recovery.tasks.poll_nuvemshop", max_retries=MAX_POLL_RETRIES)
def poll_nuvemshop(self) -> dict[str, int | str]:  # noqa: ANN001 - Celery's bound task
    if not (settings.NUVEMSHOP_STORE_ID and settings.NUVEMSHOP_ACCESS_TOKEN):
        return {"skipped": "Nuvemshop is not connected"}
    client = NuvemshopClient.from_settings()
    try:
        counts: dict[str, int | str] = dict(services.poll_nuvemshop(client=client))
    except NuvemshopError as exc:
        if exc.permanent:
            # A revoked token never heals by itself: ops see it on the Sources page (and Sentry).
            logger.error("nuvemshop poll refused", extra={"status": exc.status})
            services.source_failure_record(
                platform="nuvemshop", what="poll", status=exc.status, error=str(exc)
            )
            return {"failed": str(exc)}
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
    # The token works again (this poll read the store): re-drive the order fetches that failed
    # or never ran.
    for event_id in services.nuvemshop_orders_due(older_than=timedelta(minutes=5)):
        nuvemshop_order_fetch.delay(event_id)
    return counts


@shared_task(bind=True, name="recovery.tasks.nuvemshop_order_fetch", max_retries=ORDER_FETCH_RETRIES)
def nuvemshop_order_fetch(self, event_id: int) -> str:  # noqa: ANN001 - Celery's bound task
    if not (settings.NUVEMSHOP_STORE_ID and settings.NUVEMSHOP_ACCESS_TOKEN):
        services.source_event_fail(
            event_id=event_id,
            error="Nuvemshop store not connected: set NUVEMSHOP_STORE_ID and NUVEMSHOP_ACCESS_TOKEN.",
        )
        return "failed"
    try:
        return str(
            services.nuvemshop_order_fetch(event_id=event_id, client=NuvemshopClient.from_settings()).outcome
        )
    except NuvemshopError as exc:
        if self.request.retries >= self.max_retries:
            # Written on the event, which stays due: the next successful poll drives it again.
            return "failed"
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
