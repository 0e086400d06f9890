"""Run the scheduled sweeps once, by hand (the same tasks beat runs)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from compliance.tasks import sweep_windows
from messaging.tasks import sweep_stuck


class Command(BaseCommand):
    help = "Run messaging.tasks.sweep_stuck and compliance.tasks.sweep_windows once."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"sweep_stuck: {sweep_stuck()}")
        self.stdout.write(f"sweep_windows: {sweep_windows()}")
