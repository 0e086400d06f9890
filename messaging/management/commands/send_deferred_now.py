"""Send now the proactive messages that quiet hours deferred (the demo at night, or an ops call)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from messaging.services.ops import deferred_sends, deferred_sends_now


class Command(BaseCommand):
    help = (
        "Send now, quiet hours waived, the first templates and follow-ups deferred by quiet hours. "
        "Opt-outs and closed conversations are still respected."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--yes", action="store_true", help="Send without asking.")

    def handle(self, *args: Any, **options: Any) -> None:
        waiting = list(deferred_sends().values_list("pk", "send_after"))
        if not waiting:
            self.stdout.write("No message is waiting for quiet hours to end.")
            return
        self.stdout.write(
            f"{len(waiting)} proactive message(s) wait for quiet hours to end (the first at "
            f"{min(at for _, at in waiting if at is not None):%Y-%m-%d %H:%M} UTC). This sends them NOW, at an hour "
            "the customer may be asleep; every other check (opt-out, closed conversation) still runs."
        )
        if not options["yes"] and input("Send them now? [y/N] ").strip().lower() not in (
            "y",
            "yes",
            "s",
            "sim",
        ):
            self.stdout.write("Nothing sent.")
            return
        outcomes = deferred_sends_now(message_ids=[pk for pk, _ in waiting])
        self.stdout.write(f"Done: {outcomes}")
