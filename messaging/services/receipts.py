"""Read receipts with Meta's typing indicator: best effort, never retried, never in the reply's way."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from messaging.whatsapp import WhatsAppError, get_backend

logger = logging.getLogger(__name__)

# The receipt runs beside the AI's reading, so the customer sees "digitando…" while Sara thinks
# and a slow Graph costs the reply nothing more than the time the reading takes anyway.
_EXECUTOR = ThreadPoolExecutor(max_workers=16, thread_name_prefix="read-receipt")


def read_receipt_start(*, wamid: str) -> Future[bool]:
    """Send the read receipt with typing indicator for this customer message, in the background."""
    return _EXECUTOR.submit(_send, wamid)


def read_receipt_wait(receipt: Future[bool] | None, *, seconds: float) -> None:
    """Give the receipt at most `seconds` more, so that it reaches Meta before the reply does."""
    if receipt is None:
        return
    try:
        receipt.result(timeout=max(seconds, 0.0))
    except FutureTimeout:
        logger.info("read receipt still in flight; the reply goes on")


def _send(wamid: str) -> bool:
    try:
        get_backend().mark_read(wamid)
    except WhatsAppError as exc:
        # Not retried: a receipt seconds late says nothing the reply does not say better.
        logger.warning("read receipt failed", extra={"wamid": wamid, "error_code": exc.error_code})
        return False
    except Exception:  # a receipt must never take the reply down with it
        logger.exception("read receipt failed", extra={"wamid": wamid})
        return False
    return True
