"""Celery interface of messaging: load by id, call one service, map errors to retry or fail."""

from __future__ import annotations

import random
from datetime import timedelta

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from core.db import is_lock_conflict
from messaging import handlers
from messaging.services import inbound, outbound, sweeps
from messaging.whatsapp import WhatsAppError
from messaging.whatsapp.base import PAIR_RATE_LIMIT_CODE

MAX_SEND_RETRIES = 4


def backoff_seconds(retries: int, error: WhatsAppError) -> float:
    """≈1, 2, 4, 8 s with ±20 % jitter; Meta's pair rate limit wants a longer pause per recipient."""
    base = 2.0**retries
    if error.code == PAIR_RATE_LIMIT_CODE:
        base = max(base, 6.0)
    return base * random.uniform(0.8, 1.2)


# A customer's message whose transaction crossed another (a staff reply, a payment, a sweep on
# the same cart) runs again at once, not a sweep later: nothing of it was written.
MAX_INBOUND_RETRIES = 5


# No cap on the task's own retries: waiting out a burst is a retry too, and never fails.
@shared_task(bind=True, name="messaging.tasks.process_inbound", acks_late=True, max_retries=None)
def process_inbound(self, message_id: int) -> str:  # noqa: ANN001 - Celery's bound task
    # Run in-process (no broker, or called as a function), a task cannot wait: the burst is what
    # has arrived by then.
    in_process = bool(self.request.is_eager or self.request.id is None)
    try:
        # Reading and answering the message is the recovery's (messaging.handlers).
        return str(handlers.inbound_process(message_id=message_id, wait_for_burst=not in_process))
    except handlers.AnswerLater as later:
        # The row stays received: were this countdown lost, the sweep would re-drive it.
        raise self.retry(countdown=later.seconds + 0.1) from later
    except OperationalError as exc:
        if not is_lock_conflict(exc):
            raise
        countdown = 0.2 * 2**self.request.retries * random.uniform(0.8, 1.2)
        raise self.retry(exc=exc, countdown=countdown, max_retries=MAX_INBOUND_RETRIES) from exc


@shared_task(bind=True, name="messaging.tasks.send_message", acks_late=True, max_retries=MAX_SEND_RETRIES)
def send_message(self, message_id: int) -> str:  # noqa: ANN001 - Celery's bound task
    try:
        return str(
            outbound.send_message(
                message_id=message_id,
                final_attempt=self.request.retries >= self.max_retries,
                retrying=self.request.retries > 0,
            )
        )
    except WhatsAppError as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries, exc)) from exc


@shared_task(name="messaging.tasks.fan_out_event", acks_late=True)
def fan_out_event(event_id: int) -> None:
    inbound.fan_out_event(event_id=event_id)


@shared_task(name="messaging.tasks.sweep_stuck")
def sweep_stuck() -> dict[str, int]:
    # A payment kept (404) while its cart was in flight is stuck work too, but converting it is
    # the recovery's (messaging.handlers).
    counts = sweeps.sweep_stuck()
    counts["payments"] = handlers.payments_kept_reconcile(older_than=timezone.now() - timedelta(seconds=30))
    return counts


@shared_task(name="messaging.tasks.purge_raw_payloads")
def purge_raw_payloads() -> dict[str, int]:
    return sweeps.raw_payloads_purge(now=timezone.now())
