"""The send-time gate: the checks that run right before every send (SPEC §6).

It reads plain values (`Outgoing`), filled in by the send path from its rows, the way the
agent reads a Context: the policy knows nothing of messages, conversations or carts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from compliance.quiet_hours import next_allowed_at

WINDOW = timedelta(hours=24)


class Reason(enum.StrEnum):
    """Why the gate stops a send; stored as the message's error_code."""

    OPTED_OUT = "opted_out"
    WINDOW_CLOSED = "window_closed"
    CONVERSATION_CLOSED = "conversation_closed"
    QUIET_HOURS = "quiet_hours"
    NEEDS_HUMAN = "needs_human"
    HELD_OUT = "held_out"
    ERASED = "erased"
    # A step of the recovery sequence queued before the customer answered: any answer stops it.
    CUSTOMER_ANSWERED = "customer_answered"


@dataclass(frozen=True)
class Outgoing:
    """A message about to leave, as the gate reads it."""

    phone: str  # the recipient, E.164: its area code sets the local time of quiet hours
    opted_out: bool
    # The person is in the holdout group (SPEC §13): this message's cart, or a newer cart of
    # theirs, was drawn into it; whatever was queued before is never sent.
    held_out: bool
    conversation_open: bool
    needs_human: bool  # the conversation waits for a person (SPEC §8)
    last_user_message_at: datetime | None
    template: bool  # an approved template, allowed outside the 24 h window
    proactive: bool  # first contact or follow-up: Sara writes first
    farewell: bool  # the one message an opted-out person may receive
    from_sara: bool  # Sara speaking on her own (first contact, follow-up, reply)
    quiet_hours_waived: bool = False  # a person chose to send it now (send_deferred_now)
    erased: bool = False  # the person's data was erased (LGPD): never contacted again (SPEC §14)
    customer_answered: bool = False  # the customer wrote since the recovery began (SPEC §15)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    defer_until: datetime | None = None

    @property
    def deferred(self) -> bool:
        return self.defer_until is not None


ALLOW = Decision(allowed=True)


def check_send(outgoing: Outgoing, *, now: datetime) -> Decision:
    """May this outbound message leave now? Blocked for good, deferred, or allowed."""
    if outgoing.erased:
        # Erased on request: nothing goes out, whenever it was queued (a reply, a farewell).
        return Decision(allowed=False, reason=Reason.ERASED)
    if outgoing.held_out:
        # The holdout group is never contacted, by any path: its payments measure what Sara
        # adds, and a single message would spoil the comparison. No exception, not even a farewell.
        return Decision(allowed=False, reason=Reason.HELD_OUT)
    # The farewell after an opt-out is the one message an opted-out person may receive.
    if outgoing.opted_out and not outgoing.farewell:
        return Decision(allowed=False, reason=Reason.OPTED_OUT)
    if outgoing.needs_human and outgoing.from_sara:
        return Decision(allowed=False, reason=Reason.NEEDS_HUMAN)
    if not outgoing.template and not in_service_window(outgoing.last_user_message_at, now):
        return Decision(allowed=False, reason=Reason.WINDOW_CLOSED)
    if outgoing.proactive and not outgoing.conversation_open:
        # Queued (or deferred to the morning) before the customer paid, a newer cart superseded
        # this one or it expired: chasing a closed recovery would be plain spam.
        return Decision(allowed=False, reason=Reason.CONVERSATION_CLOSED)
    if outgoing.proactive and outgoing.customer_answered:
        # A step held by quiet hours or a paused template must not reach someone who has
        # answered since: the conversation is theirs now, and the sequence is over.
        return Decision(allowed=False, reason=Reason.CUSTOMER_ANSWERED)
    if outgoing.proactive and not outgoing.quiet_hours_waived:
        until = next_allowed_at(outgoing.phone, now)
        if until is not None:
            return Decision(allowed=False, reason=Reason.QUIET_HOURS, defer_until=until)
    return ALLOW


def in_service_window(last_user_message_at: datetime | None, now: datetime) -> bool:
    """Meta's customer-service window: free-form text only within 24 h of the customer's last message."""
    return last_user_message_at is not None and now - last_user_message_at < WINDOW
