"""Console backend: sends are logged and kept in `outbox`, and never leave the machine."""

from __future__ import annotations

import logging
import sys
import threading
import uuid

from messaging.whatsapp.base import OutboundMessage, SendResult, WhatsAppBackend

logger = logging.getLogger(__name__)

# Like django.core.mail.outbox: tests and the dev server can read what Sara "sent".
outbox: list[tuple[str, OutboundMessage]] = []
# The wamids of customer messages "marked read" with the typing indicator, in order.
read_receipts: list[str] = []
_lock = threading.Lock()


class ConsoleBackend(WhatsAppBackend):
    def send(self, message: OutboundMessage) -> SendResult:
        wamid = f"wamid.console.{uuid.uuid4().hex}"
        with _lock:
            outbox.append((wamid, message))
        if message.is_template:
            shown = f"[template {message.template_name}/{message.template_language}] {message.template_parameters}"
            # The buttons as the customer sees them; a message queued before texts were kept
            # has only the payloads.
            buttons = message.template_button_texts or message.template_buttons
            if buttons:
                shown += "\n" + " ".join(f"[{text}]" for text in buttons)
        else:
            shown = message.text
        # Printed in full on purpose: this backend only runs on a developer's machine.
        sys.stdout.write(f"\n--- WhatsApp to {message.to} ({wamid}) ---\n{shown}\n---\n")
        sys.stdout.flush()
        logger.info("console send", extra={"wamid": wamid})
        return SendResult(wamid=wamid)

    def mark_read(self, wamid: str) -> None:
        with _lock:
            read_receipts.append(wamid)
        logger.info("console read receipt", extra={"wamid": wamid})
