"""Meta's webhook body → small typed events (inbound messages and delivery statuses).

Meta batches entries × changes × messages/statuses in one body; each item is parsed on its
own, so one malformed item is reported without losing the rest of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TEXT_LIKE = ("text", "button", "interactive")


@dataclass(frozen=True)
class InboundEvent:
    wamid: str
    wa_id: str
    kind: str
    text: str
    timestamp: datetime | None
    raw: dict[str, Any]
    profile_name: str = ""


@dataclass(frozen=True)
class StatusEvent:
    wamid: str
    status: str
    timestamp: datetime | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Meta's `pricing` block, cleaned: billable (bool), category, pricing_model, type. Empty
    # when the status carries none (failed statuses, older webhook versions).
    pricing: dict[str, Any] = field(default_factory=dict)


@dataclass
class Parsed:
    messages: list[InboundEvent] = field(default_factory=list)
    statuses: list[StatusEvent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.messages) + len(self.statuses)


KNOWN_KINDS = {
    "text", "button", "interactive", "image", "audio", "video", "document", "sticker",
    "location", "contacts", "reaction", "unsupported",
}  # fmt: skip
STATUSES = {"sent", "delivered", "read", "failed"}


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _text_of(kind: str, item: dict[str, Any]) -> str:
    body = item.get(kind)
    if not isinstance(body, dict):
        return ""
    if kind == "text":
        return str(body.get("body") or "")
    if kind == "button":
        return str(body.get("text") or body.get("payload") or "")
    if kind == "interactive":
        reply = body.get("button_reply") or body.get("list_reply") or body.get("nfm_reply") or {}
        if isinstance(reply, dict):
            return str(reply.get("title") or reply.get("body") or "")
        return ""
    if kind == "reaction":
        return str(body.get("emoji") or "")
    if kind in ("image", "video", "document"):
        return str(body.get("caption") or "")
    return ""


def parse(payload: Any) -> Parsed:
    parsed = Parsed()
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        parsed.errors.append("body has no entry list")
        return parsed
    for entry in payload["entry"]:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            parsed.errors.append("entry without changes")
            continue
        for change in changes:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                parsed.errors.append("change without value")
                continue
            _parse_value(value, parsed)
    return parsed


def _items(value: dict[str, Any], key: str, parsed: Parsed) -> list[Any]:
    """value[key] as a list; anything else in its place is reported, not iterated."""
    items = value.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        parsed.errors.append(f"{key} is not a list")
        return []
    return items


def _parse_value(value: dict[str, Any], parsed: Parsed) -> None:
    names: dict[str, str] = {}
    for contact in _items(value, "contacts", parsed):
        if isinstance(contact, dict) and isinstance(contact.get("profile"), dict):
            names[str(contact.get("wa_id"))] = str(contact["profile"].get("name") or "")
    for item in _items(value, "messages", parsed):
        if not isinstance(item, dict) or not item.get("id") or not item.get("from"):
            parsed.errors.append("message without id or from")
            continue
        kind = str(item.get("type") or "unsupported")
        kind = kind if kind in KNOWN_KINDS else "unsupported"
        wa_id = str(item["from"])
        parsed.messages.append(
            InboundEvent(
                wamid=str(item["id"])[:200],
                wa_id=wa_id[:20],
                kind=kind,
                text=_text_of(kind, item)[:4096],
                timestamp=_timestamp(item.get("timestamp")),
                raw=item,
                profile_name=names.get(wa_id, "")[:200],
            )
        )
    for item in _items(value, "statuses", parsed):
        status = item.get("status") if isinstance(item, dict) else None
        # isinstance first: a list or dict in "status" is unhashable and would raise on `in`.
        if not isinstance(status, str) or status not in STATUSES or not item.get("id"):
            parsed.errors.append("status without id or with an unknown status")
            continue
        errors = item.get("errors") if isinstance(item.get("errors"), list) else []
        parsed.statuses.append(
            StatusEvent(
                wamid=str(item["id"])[:200],
                status=status,
                timestamp=_timestamp(item.get("timestamp")),
                errors=[e for e in errors if isinstance(e, dict)],
                pricing=_pricing(item.get("pricing")),
            )
        )


# Longest value kept per pricing field (the message columns' sizes).
_PRICING_FIELDS = {"category": 40, "pricing_model": 10, "type": 40}


def _pricing(block: Any) -> dict[str, Any]:
    """The parts of a status's `pricing` block Sara prices by; anything malformed is dropped."""
    if not isinstance(block, dict):
        return {}
    pricing: dict[str, Any] = {
        name: block[name][:size] for name, size in _PRICING_FIELDS.items() if isinstance(block.get(name), str)
    }
    # Meta deprecated `billable` with per-message pricing; where it is absent, the type says it.
    if isinstance(block.get("billable"), bool):
        pricing["billable"] = block["billable"]
    return pricing
