"""Celery interface of compliance."""

from __future__ import annotations

from celery import shared_task

from compliance.services import windows_sweep


@shared_task(name="compliance.tasks.sweep_windows")
def sweep_windows() -> dict[str, int]:
    return windows_sweep()
