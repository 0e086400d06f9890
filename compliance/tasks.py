"""Celery interface of compliance."""

from __future__ import annotations

from celery import shared_task

from compliance import handlers


@shared_task(name="compliance.tasks.sweep_windows")
def sweep_windows() -> dict[str, int]:
    # The task's name is the contract's (SPEC §7); the work is the recovery lifecycle's.
    return handlers.windows_sweep()
