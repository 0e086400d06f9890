"""JSON log lines with the trace id; phone numbers masked wherever they are logged."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from core import tracing

# A phone-like run of digits standing alone (not part of an id, a hash or a decimal number).
# After a hyphen it is the last group of a uuid (a Celery task id), never a phone.
_PHONE = re.compile(r"(?<![\w.+-])\+?\d{10,15}(?![\w.])")

# PostgreSQL's DETAIL/CONTEXT/HINT lines (and the LINE/QUERY echo of a statement) quote the
# values of the row at fault, a customer's message among them. They are cut from every log
# line: in a traceback up to the end of that exception's text; in an exception's repr (Celery's
# "raised unexpected: DataError('...\\nDETAIL: ...')") up to the end of the line.
_MARKER = r"(?:LINE \d+|DETAIL|CONTEXT|HINT|QUERY|WHERE):"
_SERVER_DETAIL_ESCAPED = re.compile(r"\\n" + _MARKER + r"[^\n]*")
_SERVER_DETAIL = re.compile(
    r"\n" + _MARKER + r".*?(?=\n\n|\n(?:Traceback|The above|During handling)|\Z)", re.DOTALL
)
_CUT = " [database detail not logged]"


def mask_phone(phone: str) -> str:
    """+5548999327881 → +55XXXXXXX881: enough to tell numbers apart in an incident, no more."""
    digits = phone.lstrip("+")
    if len(digits) < 6:
        return "X" * len(digits)
    # A fixed run of X's: the mask does not even reveal the number's length.
    return f"+{digits[:2]}XXXXXXX{digits[-3:]}"


def mask_phones_in(text: str) -> str:
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def without_server_detail(text: str) -> str:
    """The text with the database's quoting of row data cut out."""
    if "DETAIL" not in text and "CONTEXT" not in text and "LINE" not in text and "HINT" not in text:
        return text
    return _SERVER_DETAIL.sub(_CUT, _SERVER_DETAIL_ESCAPED.sub(_CUT, text))


def _clean(text: str) -> str:
    return mask_phones_in(without_server_detail(text))


def _clean_value(value: object) -> object:
    """Strings cleaned wherever they sit: Celery logs its failures with a dict of details."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {key: _clean_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_value(item) for item in value]
    return value


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
            "event": _clean(record.getMessage()),
        }
        trace = getattr(record, "trace_id", "") or tracing.current()
        if trace:
            event["trace_id"] = trace
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                event[key] = _clean_value(value)
        if record.exc_info:
            event["exc"] = _clean(self.formatException(record.exc_info))
        return json.dumps(event, default=str, ensure_ascii=False)
