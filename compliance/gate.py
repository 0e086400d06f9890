"""The send-time gate: the checks that run right before every send (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from compliance.quiet_hours import next_allowed_at
from messaging.models import Message

WINDOW = timedelta(hours=24)


class Reason:
    OPTED_OUT = "opted_out"
    WINDOW_CLOSED = "window_closed"
    CONVERSATION_CLOSED = "conversation_closed"
    QUIET_HOURS = "quiet_hours"
    NEEDS_HUMAN = "needs_human"


# What Sara says on her own; a conversation waiting for a person hears none of it (SPEC §8).
SARA_PURPOSES = (Message.Purpose.FIRST_CONTACT, Message.Purpose.FOLLOWUP, Message.Purpose.REPLY)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    defer_until: datetime | None = None

    @property
    def deferred(self) -> bool:
        return self.defer_until is not None


ALLOW = Decision(allowed=True)


def check_send(message: Message, *, now: datetime) -> Decision:
    """May this outbound message leave now? Blocked for good, deferred, or allowed."""
    conversation = message.conversation
    customer = conversation.customer
    # The farewell after an opt-out is the one message an opted-out person may receive.
    if customer.opted_out and message.purpose != Message.Purpose.FAREWELL:
        return Decision(allowed=False, reason=Reason.OPTED_OUT)
    if conversation.needs_human and message.purpose in SARA_PURPOSES:
        return Decision(allowed=False, reason=Reason.NEEDS_HUMAN)
    if message.kind != Message.Kind.TEMPLATE and not in_service_window(
        conversation.last_user_message_at, now
    ):
        return Decision(allowed=False, reason=Reason.WINDOW_CLOSED)
    if message.is_proactive and not conversation.is_open:
        # Queued (or deferred to the morning) before the customer paid, a newer cart superseded
        # this one or it expired: chasing a closed recovery would be plain spam.
        return Decision(allowed=False, reason=Reason.CONVERSATION_CLOSED)
    if message.is_proactive and not message.metadata.get("quiet_hours_waived"):
        until = next_allowed_at(customer.phone, now)
        if until is not None:
            return Decision(allowed=False, reason=Reason.QUIET_HOURS, defer_until=until)
    return ALLOW


def in_service_window(last_user_message_at: datetime | None, now: datetime) -> bool:
    """Meta's customer-service window: free-form text only within 24 h of the customer's last message."""
    return last_user_message_at is not None and now - last_user_message_at < WINDOW
