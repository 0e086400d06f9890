"""What messaging calls and the recovery does: named handlers, bound by `RecoveryConfig.ready`.

Messaging carries messages and knows nothing of carts: it imports no recovery module. Where its
tasks and its send path need the recovery (a customer's message read and answered, a payment
kept while its cart was in flight, who a message goes to, what a first contact's fate does to
its conversation), they call these handlers with plain values and get plain values back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core.handlers import Handler

if TYPE_CHECKING:
    from messaging.models import Message

BOUND_BY = "recovery (RecoveryConfig.ready)"


class AnswerLater(Exception):
    """The customer may still be typing: answer once the burst window has passed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"burst window open for {seconds:.1f}s more")
        self.seconds = seconds


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who an outbound message goes to, and what of their recovery the send-time gate reads."""

    customer_id: int
    phone: str
    opted_out: bool
    erased: bool
    # This cart, or a newer one of the same person, is in the holdout group (SPEC §13).
    held_out: bool
    conversation_open: bool
    # The customer has answered: a later step of the sequence no longer goes (SPEC §15).
    conversation_active: bool
    needs_human: bool
    last_user_message_at: datetime | None


# process_inbound(message_id=, wait_for_burst=) -> the outcome's name; AnswerLater while the
# customer's burst is still open (SPEC §5).
inbound_process: Handler[..., str] = Handler("messaging.inbound_process", bound_by=BOUND_BY)
# Payments kept (404) while their cart was in flight, converted now: (older_than=) -> how many.
payments_kept_reconcile: Handler[..., int] = Handler("messaging.payments_kept_reconcile", bound_by=BOUND_BY)
# The outbound message and its recipient, in one read: (message_id=, hold_customer_id=) ->
# (Message, Recipient) or None. With hold_customer_id, the customer's row is share-locked first,
# until the transaction ends: an opt-out waits for a request already leaving.
outbound_load: Handler[..., tuple[Message, Recipient] | None] = Handler(
    "messaging.outbound_load", bound_by=BOUND_BY
)
# A first contact was sent or failed for good, in the transaction that records it:
# (conversation_id=, sent=, now=).
first_contact_settled: Handler[..., object] = Handler("messaging.first_contact_settled", bound_by=BOUND_BY)
