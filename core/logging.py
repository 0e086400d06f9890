"""JSON log lines with the trace id; phone numbers masked wherever they are logged."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from core import tracing

# A phone-like run of digits standing alone (not part of an id, a hash or a decimal number).
_PHONE = re.compile(r"(?<![\w.+])\+?\d{10,15}(?![\w.])")


def mask_phone(phone: str) -> str:
    """+5548999327881 → +55XXXXXXX881: enough to tell numbers apart in an incident, no more."""
    digits = phone.lstrip("+")
    if len(digits) < 6:
        return "X" * len(digits)
    # A fixed run of X's: the mask does not even reveal the number's length.
    return f"+{digits[:2]}XXXXXXX{digits[-3:]}"


def mask_phones_in(text: str) -> str:
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


class TraceIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = tracing.current()
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "trace_id"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "event": mask_phones_in(record.getMessage()),
        }
        trace = getattr(record, "trace_id", "") or tracing.current()
        if trace:
            event["trace_id"] = trace
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                event[key] = mask_phones_in(value) if isinstance(value, str) else value
        if record.exc_info:
            event["exc"] = mask_phones_in(self.formatException(record.exc_info))
        return json.dumps(event, default=str, ensure_ascii=False)
