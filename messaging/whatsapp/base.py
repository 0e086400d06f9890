"""What every WhatsApp backend takes, returns and raises."""

from __future__ import annotations

from dataclasses import dataclass, field

# Meta error codes (SPEC §6). Transient ones are retried with backoff; permanent ones fail at once.
TRANSIENT_CODES = frozenset({130429, 131056, 80007, 4, 131057, 131000, 1, 2, 131016, 133004})
# 131049: Meta's per-user marketing limit ("not delivered to maintain healthy ecosystem
# engagement"): trying again only deepens it (SPEC §15).
PERMANENT_CODES = frozenset({100, 190, 368, 130403, 131026, 131031, 131047, 131049, 131050, 131051})
MARKETING_LIMIT_CODE = 131049
OUTSIDE_WINDOW_CODE = 131047
PAIR_RATE_LIMIT_CODE = 131056


def is_permanent(code: int | None, http_status: int | None) -> bool:
    """Meta's error code decides first; the HTTP status only when the code says nothing."""
    if code in TRANSIENT_CODES:
        return False
    if code in PERMANENT_CODES:
        return True
    if http_status is None:  # timeout or connection error: nothing reached a verdict
        return False
    if http_status == 429 or http_status >= 500:
        return False
    return 400 <= http_status < 500


class WhatsAppError(Exception):
    """A send that did not go through; `permanent` says whether trying again can help."""

    def __init__(
        self,
        detail: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        permanent: bool | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.http_status = http_status
        self.permanent = is_permanent(code, http_status) if permanent is None else permanent

    @property
    def error_code(self) -> str:
        if self.code is not None:
            return str(self.code)
        return f"http_{self.http_status}" if self.http_status else "network"


@dataclass(frozen=True)
class OutboundMessage:
    """One message to send: a free-form text or an approved template with body parameters."""

    to: str  # E.164
    text: str = ""
    template_name: str = ""
    template_language: str = ""
    template_parameters: list[str] = field(default_factory=list)
    # One payload per quick-reply button of the template, in its order: what a tap sends back.
    template_buttons: list[str] = field(default_factory=list)
    # The same buttons' texts, as the customer sees them (the console backend prints these).
    template_button_texts: list[str] = field(default_factory=list)

    @property
    def is_template(self) -> bool:
        return bool(self.template_name)


@dataclass(frozen=True)
class TemplateInfo:
    """One message template of the WhatsApp Business Account, as Graph lists it."""

    name: str
    language: str
    status: str  # lower case: approved, paused...
    category: str = ""  # lower case: marketing, utility, authentication
    quality: str = ""  # lower case: green, yellow, red, unknown
    meta_id: str = ""
    body: str = ""
    quick_replies: list[str] = field(default_factory=list)  # the quick-reply buttons' texts


@dataclass(frozen=True)
class SendResult:
    wamid: str


@dataclass(frozen=True)
class Media:
    """A file a customer sent (a voice note), downloaded from WhatsApp."""

    content: bytes
    mime_type: str


class MediaUnavailable(Exception):
    """A customer's media could not be fetched (no such id, expired, network, no backend for it)."""


class WhatsAppBackend:
    def send(self, message: OutboundMessage) -> SendResult:  # pragma: no cover - interface
        raise NotImplementedError

    def fetch_media(self, media_id: str) -> Media:
        raise MediaUnavailable("this backend receives no media")

    def mark_read(self, wamid: str) -> None:
        """Mark a customer's message read and show the typing indicator; raises WhatsAppError."""

    def list_templates(self) -> list[TemplateInfo]:
        """The account's message templates; raises WhatsAppError. None on a backend without Meta."""
        return []
