"""Play the recovery sequence on a development machine: move its clock forward, then sweep."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import F

from compliance.tasks import sweep_windows
from messaging.models import Message
from messaging.tasks import sweep_stuck
from recovery.models import Abandonment, Conversation

_MESSAGE_TIMES = (
    "created_at",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "whatsapp_timestamp",
    "send_after",
)


class Command(BaseCommand):
    help = (
        "Development only: make the open recoveries N hours older (their carts, conversations and "
        "messages), then run the sweeps, so the sequence's next steps go out as they would N hours "
        "from now. Quiet hours, the gate and the holdout still apply."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hours", type=float, required=True, help="how far to move the clock")
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError("This rewrites timestamps: run it on a development database (DEBUG on).")
        hours = options["hours"]
        if not 0 < hours <= 24 * 30:
            raise CommandError("--hours must be above 0 and at most 720.")
        shift = timedelta(hours=hours)
        with transaction.atomic():
            conversations = Conversation.objects.filter(status__in=Conversation.OPEN_STATUSES)
            ids = list(conversations.values_list("pk", flat=True))
            Abandonment.objects.filter(conversation__in=ids).update(created_at=F("created_at") - shift)
            messages = Message.objects.filter(conversation_id__in=ids)
            for field in _MESSAGE_TIMES:
                messages.filter(**{f"{field}__isnull": False}).update(**{field: F(field) - shift})
            for field in ("created_at", "last_message_at", "last_user_message_at"):
                conversations.filter(pk__in=ids, **{f"{field}__isnull": False}).update(
                    **{field: F(field) - shift}
                )
        self.stdout.write(f"{len(ids)} open recovery(ies) moved {hours:g} h into the past.")
        self.stdout.write(f"sweep_windows: {sweep_windows()}")
        self.stdout.write(f"sweep_stuck: {sweep_stuck()}")
