"""Read the WhatsApp Business Account's message templates from Meta: status, quality, buttons."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from messaging.services.templates import templates_sync
from messaging.whatsapp import WhatsAppError


class Command(BaseCommand):
    help = (
        "Read every message template of WHATSAPP_BUSINESS_ACCOUNT_ID from Meta's Graph API and store "
        "its status, quality, category, body and quick-reply buttons."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            templates = templates_sync()
        except WhatsAppError as exc:
            raise CommandError(f"Meta refused the template list: {exc.detail} ({exc.error_code})") from exc
        if not templates:
            self.stdout.write("No template read (the console backend has none; set WHATSAPP_ACCESS_TOKEN).")
            return
        for template in templates:
            buttons = " | ".join(template.buttons) or "—"
            self.stdout.write(
                f"{template.name} ({template.language}): {template.status}, quality {template.quality}, "
                f"{template.category}; buttons: {buttons}"
            )
