"""Celery interface of the money report: keeping settled conversations' money (SPEC §7, §13).

The task name is `recovery.tasks.*` like recovery's other scheduled sweeps.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from recovery.money import figures


@shared_task(name="recovery.tasks.settle_money")
def settle_money() -> int:
    return figures.money_settle(now=timezone.now())
