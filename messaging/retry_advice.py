"""Whether retrying a failed send can help, and why, in the words ops act on (SPEC §6, §8).

Meta reports some failures after it accepted the message (a failed status webhook for a wamid):
those are never sent again, whatever the code. Others are the send-time gate's own refusals,
which a retry only repeats until the situation changes (the customer writes, or stays opted out).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from compliance.gate import Reason
from messaging.models import Message
from messaging.whatsapp.base import TRANSIENT_CODES


@dataclass(frozen=True)
class RetryAdvice:
    helps: bool
    why: str


# Meta codes whose cause a retry does not remove, with what the code means for the customer.
PERMANENT_REASONS = {
    "131026": gettext_lazy(
        "Undeliverable: the number is not on WhatsApp, has an old app or has not accepted Meta's terms."
    ),
    "131049": gettext_lazy(
        "Meta's ecosystem limit: Meta held back this marketing message to keep the customer's experience; "
        "sending it again soon fails the same way."
    ),
    "131047": gettext_lazy(
        "More than 24 hours since the customer last wrote: only a template can reach them."
    ),
    "131050": gettext_lazy("The customer stopped marketing messages from this business."),
    "131051": gettext_lazy("A message type WhatsApp does not support."),
    "131031": gettext_lazy("The business account is locked: fix it in Meta's manager first."),
    "130403": gettext_lazy("Not allowed for this phone number: check the number's settings at Meta."),
    "100": gettext_lazy("Meta refused the request's parameters (e.g. a template name or its parameters)."),
    "190": gettext_lazy("The access token expired or is invalid: renew WHATSAPP_ACCESS_TOKEN first."),
    "368": gettext_lazy("The account is temporarily blocked for policy violations."),
}


def window_closed_reason(customer_wrote_at: datetime | None) -> str:
    """Tells "never wrote" from "wrote more than 24 h ago": only the second may write again soon."""
    if customer_wrote_at is None:
        return _("The customer never wrote: free-form messages need a message from them first.")
    return _(
        "The customer last wrote more than 24 hours ago: free-form messages wait until they write again."
    )


def retry_advice(message: Message, *, customer_wrote_at: datetime | None) -> RetryAdvice:
    """Can the retry action help this failed send, and why (or why not).

    `customer_wrote_at` is when the customer last wrote (None: never), which the recovery knows;
    only a closed window's advice reads it.
    """
    code = message.error_code
    if message.whatsapp_message_id:
        # A failed status after Meta's acceptance: the one send it gets already happened.
        reason = PERMANENT_REASONS.get(code)
        why = _("Meta accepted it, then reported it failed; a message is never sent twice.")
        return RetryAdvice(False, f"{reason} {why}" if reason else why)
    if code == Reason.WINDOW_CLOSED:
        return RetryAdvice(False, window_closed_reason(customer_wrote_at))
    if code == Reason.OPTED_OUT:
        return RetryAdvice(False, _("The customer opted out: nothing more is sent to them."))
    if code == Reason.CONVERSATION_CLOSED:
        return RetryAdvice(False, _("The conversation was closed before it went out."))
    if code == Reason.HELD_OUT:
        return RetryAdvice(False, _("The cart is in the holdout group, which is never contacted."))
    if code == Reason.NEEDS_HUMAN:
        return RetryAdvice(False, _("Waiting for a person; Sara stays silent."))
    if code in PERMANENT_REASONS:
        return RetryAdvice(False, str(PERMANENT_REASONS[code]))
    if code.isdigit() and int(code) in TRANSIENT_CODES:
        return RetryAdvice(
            True, _("A temporary error at Meta (code %(code)s): a retry can help.") % {"code": code}
        )
    if code in ("network", "http_429") or code.startswith("http_5"):
        return RetryAdvice(True, _("Meta did not answer or was busy: a retry can help."))
    return RetryAdvice(
        False, _("Meta refused it (code %(code)s): read Meta's detail before retrying.") % {"code": code}
    )


# The send-time gate's refusals and the client's own codes, as ops read them in a list.
ERROR_CODE_WORDS = {
    Reason.OPTED_OUT: gettext_lazy("Customer opted out"),
    Reason.WINDOW_CLOSED: gettext_lazy("24 h window closed"),
    Reason.CONVERSATION_CLOSED: gettext_lazy("Conversation closed"),
    Reason.QUIET_HOURS: gettext_lazy("Quiet hours"),
    Reason.NEEDS_HUMAN: gettext_lazy("Waiting for a person"),
    Reason.HELD_OUT: gettext_lazy("Holdout group"),
    Reason.ERASED: gettext_lazy("Personal data erased"),
    Reason.CUSTOMER_ANSWERED: gettext_lazy("Customer already answered"),
    "network": gettext_lazy("No answer from Meta (network)"),
    "http_429": gettext_lazy("Meta busy (HTTP 429)"),
    "unknown": gettext_lazy("No error code"),
}


def error_code_words(code: str) -> str:
    """An error code in words: "network" → "No answer from Meta (network)", "131026" → "Meta 131026"."""
    if not code:
        return "—"
    if code in ERROR_CODE_WORDS:
        return str(ERROR_CODE_WORDS[code])
    if code.startswith("http_"):
        return _("Error at Meta (HTTP %(status)s)") % {"status": code.removeprefix("http_")}
    if code.isdigit():
        return _("Meta code %(code)s") % {"code": code}
    return code


def error_detail_words(code: str, detail: str) -> str:
    """The detail of a failure, led by words where the raw detail is a Python exception."""
    if code == "network" and detail:
        return _("The connection to Meta failed (%(detail)s).") % {"detail": detail.removeprefix("network: ")}
    return detail
