"""Meta's webhook body → small typed events (inbound messages and delivery statuses).

Meta batches entries × changes × messages/statuses in one body; each item is parsed on its
own, so one malformed item is reported without losing the rest of the batch.

Besides messages, two updates about the person arrive: `user_preferences` (marketing messages
stopped or resumed in WhatsApp) and `user_id_update` (the business-scoped user id changed).
Each becomes an inbound event of its own kind with an id made from its content, so that it is
stored once and processed like a message however often Meta delivers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def json_object(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one: for Meta's optional nested objects."""
    return value if isinstance(value, dict) else {}


TEXT_LIKE = ("text", "button", "interactive")


@dataclass(frozen=True)
class InboundEvent:
    wamid: str
    wa_id: str  # the sender's phone digits; empty when Meta withholds it (a user with a username)
    kind: str
    text: str
    timestamp: datetime | None
    raw: dict[str, Any]
    profile_name: str = ""
    # Meta's business-scoped user id (BSUID) and the username, when the payload carries them.
    user_id: str = ""
    username: str = ""


@dataclass(frozen=True)
class StatusEvent:
    wamid: str
    status: str
    timestamp: datetime | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Meta's `pricing` block, cleaned: billable (bool), category, pricing_model, type. Empty
    # when the status carries none (failed statuses, older webhook versions).
    pricing: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TemplateEvent:
    """Meta's news about a message template: its status (`message_template_status_update`) or
    its quality (`message_template_quality_update`). Empty `status` or `quality`: not said."""

    name: str
    language: str
    meta_id: str
    status: str = ""  # lower-cased Meta event: approved, paused, disabled, rejected...
    quality: str = ""  # green, yellow, red, unknown
    reason: str = ""
    category: str = ""
    at: datetime | None = None  # the entry's `time`: when Meta made the change
    raw: dict[str, Any] = field(default_factory=dict)  # the change as Meta sent it, kept for ops


@dataclass
class Parsed:
    messages: list[InboundEvent] = field(default_factory=list)
    statuses: list[StatusEvent] = field(default_factory=list)
    templates: list[TemplateEvent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Errors Meta reports about the account or the webhook itself (a change's `value.errors`):
    # nothing to process, but ops must see them.
    meta_errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.messages) + len(self.statuses) + len(self.templates)


KNOWN_KINDS = {
    "text", "button", "interactive", "image", "audio", "video", "document", "sticker",
    "location", "contacts", "reaction", "unsupported", "edit", "revoke", "system",
}  # fmt: skip
STATUSES = {"sent", "delivered", "read", "failed"}
# Statuses Meta documents that change nothing Sara tracks: `played` (a voice note was heard).
QUIET_STATUSES = {"played"}
# Longest BSUID kept: a two-letter country, a dot and up to 128 characters (parent ids add ENT.).
USER_ID_MAX = 150


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
    if kind == "edit":
        # The new words: the edited message's text, or its new caption.
        edited = body.get("message")
        if isinstance(edited, dict):
            edited_kind = str(edited.get("type") or "")
            return _text_of(edited_kind, edited) if edited_kind in ("text", *_CAPTIONED) else ""
        return ""
    if kind == "system":
        return str(body.get("body") or "")
    return ""


_CAPTIONED = ("image", "video", "document")


def _text_value(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


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
            if "message_template_name" in value:
                # Told apart by the value, not the change's `field`: Meta's own quality sample
                # was published for a while under field "message_template_status_update".
                event = _template_event(value, at=_timestamp(entry.get("time")), raw=change)
                if event is None:
                    parsed.errors.append("template update without name or news")
                else:
                    parsed.templates.append(event)
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


@dataclass(frozen=True)
class _Contact:
    name: str = ""
    username: str = ""
    user_id: str = ""


def _contacts(value: dict[str, Any], parsed: Parsed) -> dict[str, _Contact]:
    """The change's contacts by phone and by BSUID (either may be all a message carries)."""
    contacts: dict[str, _Contact] = {}
    for item in _items(value, "contacts", parsed):
        if not isinstance(item, dict):
            continue
        profile = json_object(item.get("profile"))
        contact = _Contact(
            name=_text_value(profile.get("name"), 200),
            username=_text_value(profile.get("username"), 100),
            user_id=_text_value(item.get("user_id"), USER_ID_MAX),
        )
        for key in (item.get("wa_id"), item.get("user_id")):
            if isinstance(key, str) and key:
                contacts[key] = contact
    return contacts


def _parse_value(value: dict[str, Any], parsed: Parsed) -> None:
    contacts = _contacts(value, parsed)
    # Each list of the value that becomes inbound events: how one item is read, and what an
    # unreadable one is reported as.
    readers: tuple[tuple[str, Callable[[Any], InboundEvent | None], str], ...] = (
        ("messages", lambda item: _message(item, contacts), "message without id or sender"),
        ("user_preferences", lambda item: _preference(item, contacts), "user_preferences without a user"),
        ("user_id_update", _user_id_update, "user_id_update without previous and current ids"),
    )
    for key, read, unreadable in readers:
        for item in _items(value, key, parsed):
            event = read(item)
            if event is None:
                parsed.errors.append(unreadable)
                continue
            parsed.messages.append(event)
    for error in _items(value, "errors", parsed):
        parsed.meta_errors.append(error if isinstance(error, dict) else {"error": error})
    for item in _items(value, "statuses", parsed):
        status = item.get("status") if isinstance(item, dict) else None
        if isinstance(status, str) and status in QUIET_STATUSES:
            continue
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


def _message(item: Any, contacts: dict[str, _Contact]) -> InboundEvent | None:
    """One message; None without an id or a sender (a phone, or a BSUID in its place)."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        return None
    wa_id = _text_value(item.get("from"), 20)
    user_id = _text_value(item.get("from_user_id"), USER_ID_MAX)
    contact = contacts.get(wa_id) or contacts.get(user_id) or _Contact()
    user_id = user_id or contact.user_id
    kind = str(item.get("type") or "unsupported")
    kind = kind if kind in KNOWN_KINDS else "unsupported"
    if kind == "system" and not (wa_id or user_id) and isinstance(item.get("system"), dict):
        # A BSUID change may come with no sender at all: the person is the one it names.
        notice = item["system"]
        user_id = _text_value(notice.get("previous_user_id"), USER_ID_MAX) or _text_value(
            notice.get("user_id"), USER_ID_MAX
        )
    if not wa_id and not user_id:
        return None
    return InboundEvent(
        wamid=item["id"][:200],
        wa_id=wa_id,
        kind=kind,
        text=_text_of(kind, item)[:4096],
        timestamp=_timestamp(item.get("timestamp")),
        raw=item,
        profile_name=contact.name,
        user_id=user_id,
        username=contact.username,
    )


def _preference(item: Any, contacts: dict[str, _Contact]) -> InboundEvent | None:
    """A marketing preference change (stop or resume), identified by its content."""
    if not isinstance(item, dict):
        return None
    wa_id = _text_value(item.get("wa_id"), 20)
    user_id = _text_value(item.get("user_id"), USER_ID_MAX) or contacts.get(wa_id, _Contact()).user_id
    value = _text_value(item.get("value"), 20)
    if not (wa_id or user_id) or not value:
        return None
    stamp = str(item.get("timestamp") or "")[:20]
    return InboundEvent(
        wamid=f"user_preferences:{wa_id or user_id}:{item.get('category') or ''}:{value}:{stamp}"[:200],
        wa_id=wa_id,
        kind="user_preferences",
        text=_text_value(item.get("detail"), 500) or value,
        timestamp=_timestamp(item.get("timestamp")),
        raw=item,
        user_id=user_id,
    )


def _user_id_update(item: Any) -> InboundEvent | None:
    """A BSUID that changed: the previous and the current ids, and the phone when known."""
    ids = item.get("user_id") if isinstance(item, dict) else None
    if not isinstance(ids, dict):
        return None
    previous = _text_value(ids.get("previous"), USER_ID_MAX)
    current = _text_value(ids.get("current"), USER_ID_MAX)
    if not previous or not current:
        return None
    return InboundEvent(
        wamid=f"user_id_update:{previous}:{current}"[:200],
        wa_id=_text_value(item.get("wa_id"), 20),
        kind="user_id_update",
        text=_text_value(item.get("detail"), 500),
        timestamp=_timestamp(item.get("timestamp")),
        raw=item,
        user_id=current,
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


TEMPLATE_STATUSES = {
    "approved", "pending", "rejected", "paused", "disabled", "flagged", "in_appeal", "archived",
    "deleted", "pending_deletion", "limit_exceeded", "locked",
}  # fmt: skip
# Meta's events that name a status by another word.
TEMPLATE_EVENT_STATUS = {"reinstated": "approved", "unpaused": "approved", "unlocked": "approved"}
TEMPLATE_QUALITIES = {"green", "yellow", "red", "unknown"}


def _template_event(
    value: dict[str, Any], *, at: datetime | None, raw: dict[str, Any]
) -> TemplateEvent | None:
    """A status or quality update of one template; None when it names no template or says nothing."""
    name = _text_value(value.get("message_template_name"), 512)
    # Meta writes the language with a hyphen in webhooks ("en-US") and an underscore in sends.
    language = _text_value(value.get("message_template_language"), 20).replace("-", "_")
    raw_id = value.get("message_template_id")
    meta_id = str(raw_id)[:40] if isinstance(raw_id, int | str) and not isinstance(raw_id, bool) else ""
    event = _text_value(value.get("event"), 40).lower()
    status = TEMPLATE_EVENT_STATUS.get(event, event)
    status = status if status in TEMPLATE_STATUSES else ""
    quality = _text_value(value.get("new_quality_score"), 20).lower()
    quality = quality if quality in TEMPLATE_QUALITIES else ""
    if not name or not (status or quality):
        return None
    other = json_object(value.get("other_info"))
    reason_parts = [
        _text_value(value.get("reason"), 200),
        _text_value(other.get("title"), 100),
        _text_value(other.get("description"), 300),
    ]
    reason = ": ".join(part for part in reason_parts if part and part.upper() != "NONE")
    return TemplateEvent(
        name=name,
        language=language,
        meta_id=meta_id,
        status=status,
        quality=quality,
        reason=reason[:500],
        category=_text_value(value.get("message_template_category"), 20).lower(),
        at=at,
        raw=raw,
    )
