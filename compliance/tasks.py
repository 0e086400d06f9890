"""Celery interface of compliance."""

from __future__ import annotations

from celery import shared_task

# The task's name is the contract's (SPEC §7), the work is the lifecycle's: the one place a
# compliance module calls into recovery (listed in pyproject's import-linter contracts).
from recovery import followups


@shared_task(name="compliance.tasks.sweep_windows")
def sweep_windows() -> dict[str, int]:
    return followups.sweep_windows()
