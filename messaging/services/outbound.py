"""Outbound messages: queued as rows, claimed, checked by the gate, sent once, failed visibly."""

from __future__ import annotations

import enum
import logging
import time
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sentry_sdk
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from compliance.gate import Decision, Outgoing, Reason, check_send
from core import metrics
from core.db import release_connection
from messaging import handlers, queue, ratelimit, statuses
from messaging import sql as messaging_sql
from messaging.handlers import Recipient
from messaging.models import Message, Template
from messaging.services.inbound import pending_statuses_apply
from messaging.services.templates import TEMPLATE_UNAVAILABLE
from messaging.whatsapp import OutboundMessage, SendResult, WhatsAppError, get_backend
from messaging.whatsapp.base import MARKETING_LIMIT_CODE, OUTSIDE_WINDOW_CODE

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


# A send waiting out a Celery retry countdown (at most ≈10 s) is not due for the sweep before
# this; if its retry is lost with Redis, the sweep picks it up once the horizon passes.
RETRY_HORIZON = timedelta(seconds=60)


def claim_lease() -> timedelta:
    """A claim older than this with no wamid means the worker died mid-send: the outcome is unknown."""
    return timedelta(seconds=settings.SARA_CLAIM_LEASE_SECONDS)


class SendOutcome(enum.StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"  # already sent, failed, claimed by another worker, or not due yet
    DEFERRED = "deferred"
    BLOCKED = "blocked"
    FAILED = "failed"


def message_queue(
    *,
    conversation_id: int,
    phone: str,
    purpose: str,
    text: str = "",
    template: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    sent_by: User | None = None,
) -> Message:
    """Store an outbound message (pending) and queue its send once the transaction commits.

    What the message does to its conversation (its count, its last message time) is the
    recovery's to write (recovery.outbox).
    """
    data = dict(metadata or {})
    if template:
        data["template"] = template
    message = statuses.outbound_pending(
        conversation_id=conversation_id,
        kind=Message.Kind.TEMPLATE if template else Message.Kind.TEXT,
        purpose=purpose,
        wa_id=phone.lstrip("+"),
        text=text,
        metadata=data,
        sent_by=sent_by,
    )
    # Every message Sara writes goes through here.
    message.save(force_insert=True)
    transaction.on_commit(lambda: queue_send(message.pk), robust=True)
    return message


def queue_send(message_id: int) -> None:
    queue.send_message(message_id)


# The claim is a conditional UPDATE (messaging.sql): of all workers holding this id, exactly one
# gets to send. Taking over a claim that was never released means its worker died mid-send:
# whoever takes it (the sweep, or the broker handing the task back at once, as RabbitMQ does
# when the connection drops) sends of unknown outcome, flagged for ops (possible_duplicate).
# The attempt is counted in the same statement; every path that stops before Graph gives it back.
# A retry owns the horizon it set itself (see RETRY_HORIZON); anyone else waits for it.


def _claim(message_id: int, *, retrying: bool) -> bool:
    """Claim the send for this worker; False when another has it, or it is done or not due."""
    now = timezone.now()
    return messaging_sql.send_claim(
        message_id=message_id, now=now, stale=now - claim_lease(), due_only=not retrying
    )


def _outbound(message_id: int, *, hold_customer_id: int | None = None) -> tuple[Message, Recipient]:
    """One outbound message and its recipient, in one statement (read by the recovery)."""
    loaded = handlers.outbound_load(message_id=message_id, hold_customer_id=hold_customer_id)
    if loaded is None:
        raise Message.DoesNotExist(f"No outbound message {message_id} with a conversation.")
    return loaded


def _attempts_add(message_id: int, delta: int) -> None:
    Message.objects.filter(pk=message_id).update(attempts=F("attempts") + delta)


def _release(message_id: int, **fields: Any) -> None:
    Message.objects.filter(pk=message_id, status=Message.Status.PENDING).update(claimed_at=None, **fields)


def outbound_for(message: Message, recipient: Recipient) -> OutboundMessage:
    to = recipient.phone
    template = message.metadata.get("template")
    if message.kind == Message.Kind.TEMPLATE and template:
        return OutboundMessage(
            to=to,
            template_name=template["name"],
            template_language=template["language"],
            template_parameters=list(template.get("parameters", [])),
            template_buttons=[str(p) for p in template.get("buttons", []) if p],
            template_button_texts=[str(t) for t in template.get("button_texts", []) if t],
        )
    return OutboundMessage(to=to, text=message.text)


# How often a message whose templates Meta all paused, disabled or rejected looks again; an
# APPROVED webhook re-drives it at once (messaging.services.templates).
TEMPLATE_RECHECK = timedelta(minutes=15)


def template_choose(message: Message) -> dict[str, Any] | None:
    """The template this message may go as now: its own, else the first of its alternatives Meta
    still accepts (SPEC §15); None when none is. A template Sara never heard about from Meta is
    taken as approved. Not a template message: its metadata's (empty) template, unchanged."""
    template = message.metadata.get("template")
    if message.kind != Message.Kind.TEMPLATE or not template:
        return template or {}
    candidates = [template, *message.metadata.get("template_alternatives", [])]
    known = {
        (t.name, t.language): t
        for t in Template.objects.filter(name__in=[c.get("name", "") for c in candidates])
    }
    for candidate in candidates:
        row = known.get((candidate.get("name", ""), candidate.get("language", "")))
        if row is None or row.sendable:
            if candidate is template:
                return template
            # Another variant of the step goes: recorded as sent, so the money page credits it.
            chosen = {**template, **candidate, "parameters": template.get("parameters", [])}
            metadata = {**message.metadata, "template": chosen}
            metadata.setdefault("sequence", {})["variant"] = chosen["name"]
            metadata["template_switched_from"] = template.get("name", "")
            Message.objects.filter(pk=message.pk).update(metadata=metadata)
            message.metadata = metadata
            return chosen
    return None


def _template_wait(message: Message) -> SendOutcome:
    """Every template the message may go as is paused, disabled or rejected: it waits (SPEC §15)."""
    names = ", ".join(
        c.get("name", "")
        for c in [message.metadata.get("template", {}), *message.metadata.get("template_alternatives", [])]
    )
    _release(
        message.pk,
        send_after=timezone.now() + TEMPLATE_RECHECK,
        error_code=TEMPLATE_UNAVAILABLE,
        error_detail=f"No template of this step is approved by Meta right now ({names}); it waits.",
    )
    logger.info("send waits for an approved template", extra={"message_id": message.pk})
    return SendOutcome.DEFERRED


def send_message(*, message_id: int, final_attempt: bool = True, retrying: bool = False) -> SendOutcome:
    """Send one pending message. A transient WhatsAppError is re-raised for the task to retry.

    `retrying` is true for a Celery retry of this same send: it may claim before the
    RETRY_HORIZON its own failure set, which keeps the sweep from starting a second chain.
    """
    if not _claim(message_id, retrying=retrying):
        return SendOutcome.SKIPPED
    message, recipient = _outbound(message_id)
    # A first look before taking a slot: a send that cannot go out should not use one up.
    stopped = _gate(message, recipient)
    if stopped is not None:
        return stopped
    if template_choose(message) is None:
        _attempts_add(message.pk, -1)
        return _template_wait(message)
    delivered = _deliver(message, recipient, final_attempt=final_attempt)
    if isinstance(delivered, SendOutcome):
        return delivered
    _sent_record(message, wamid=delivered.wamid)
    return SendOutcome.SENT


def _gate(message: Message, recipient: Recipient) -> SendOutcome | None:
    """The send-time check: None to go ahead, or why the message waits or never goes."""
    decision = check_send(outgoing(message, recipient), now=timezone.now())
    if decision.allowed:
        return None
    # Nothing reached Meta: the attempt counted by the claim is given back.
    _attempts_add(message.pk, -1)
    return _stop(message, decision)


def outgoing(message: Message, recipient: Recipient) -> Outgoing:
    """The message as the gate reads it, with its recipient."""
    return Outgoing(
        phone=recipient.phone,
        opted_out=recipient.opted_out,
        erased=recipient.erased,
        held_out=recipient.held_out,
        conversation_open=recipient.conversation_open,
        needs_human=recipient.needs_human,
        last_user_message_at=_last_user_message_at(message, recipient),
        template=message.kind == Message.Kind.TEMPLATE,
        proactive=message.is_proactive,
        farewell=message.purpose == Message.Purpose.FAREWELL,
        from_sara=message.purpose in Message.SARA_PURPOSES,
        quiet_hours_waived=bool(message.metadata.get("quiet_hours_waived")),
        # A later step queued before the customer answered (held by quiet hours, say) is over.
        customer_answered=(message.purpose == Message.Purpose.FOLLOWUP and recipient.conversation_active),
    )


def _last_user_message_at(message: Message, recipient: Recipient) -> datetime | None:
    """The customer's last message: in this conversation, or the one a step queued as text says
    they wrote about an earlier cart (the window is the customer's, not the conversation's)."""
    known = recipient.last_user_message_at
    claimed = message.metadata.get("customer_wrote_at")
    if message.kind != Message.Kind.TEXT or not isinstance(claimed, str):
        return known
    try:
        wrote_at = datetime.fromisoformat(claimed)
    except ValueError:
        return known
    return wrote_at if known is None or wrote_at > known else known


def _stop(message: Message, decision: Decision) -> SendOutcome | None:
    """Apply the gate's decision: None to go ahead, or the message deferred or failed for good."""
    if decision.defer_until is not None:
        _release(message.pk, send_after=decision.defer_until, error_code=decision.reason, error_detail="")
        logger.info(
            "send deferred", extra={"message_id": message.pk, "until": decision.defer_until.isoformat()}
        )
        return SendOutcome.DEFERRED
    if not decision.allowed:
        message_fail(
            message=message, code=decision.reason, detail=_BLOCK_DETAIL[decision.reason], report=False
        )
        return SendOutcome.BLOCKED
    return None


def _deliver(message: Message, recipient: Recipient, *, final_attempt: bool) -> SendResult | SendOutcome:
    """One attempt at Graph: Meta's result, or the outcome of a permanent failure."""
    message_id = message.pk
    # Waiting for a send slot holds no database connection (see release_connection); the gate
    # below keeps one through the Graph request, which is what sizes the pool (settings).
    release_connection()
    failure: WhatsAppError | None = None
    waiting = False
    try:
        _wait_for_slot()
        # The gate again, on fresh rows, as the request leaves: the slot may have taken seconds,
        # and an opt-out (or a hand-off) committed meanwhile must win over a reply already
        # claimed. The customer's row stays share-locked until Graph answers: an opt-out waits
        # for a request already leaving, and any request after it sees the opt-out (none slips
        # between read and post).
        with transaction.atomic():
            message, recipient = _outbound(message_id, hold_customer_id=recipient.customer_id)
            cancelled = message.status != Message.Status.PENDING
            decision = None if cancelled else check_send(outgoing(message, recipient), now=timezone.now())
            if decision is not None and decision.allowed and template_choose(message) is None:
                # Meta paused the template while this send waited for its slot.
                waiting = True
            elif decision is not None and decision.allowed:
                outbound = outbound_for(message, recipient)
                # Counted as it leaves, where Meta counts it (see messaging.ratelimit).
                ratelimit.depart(settings.WHATSAPP_PHONE_NUMBER_ID)
                try:
                    return get_backend().send(outbound)
                except WhatsAppError as exc:
                    failure = exc
    except ratelimit.RateLimitTimeout as exc:
        # Nothing reached Meta: give the claim (and the attempt) back so a retry or the sweep
        # sends it, and never as a "possible duplicate".
        _release(message_id, send_after=timezone.now() + RETRY_HORIZON, attempts=F("attempts") - 1)
        raise WhatsAppError(str(exc), permanent=False) from exc
    if waiting:
        _attempts_add(message_id, -1)
        return _template_wait(message)
    if failure is None:
        # Cancelled while it waited (an opt-out fails the pending replies it makes pointless), or
        # refused by the gate: nothing reached Meta, so the attempt is given back.
        if cancelled:
            Message.objects.filter(pk=message_id).update(claimed_at=None, attempts=F("attempts") - 1)
            return SendOutcome.BLOCKED
        _attempts_add(message_id, -1)
        # Not cancelled, so the gate decided; and an allowed send returned or failed above.
        assert decision is not None
        stopped = _stop(message, decision)
        assert stopped is not None
        return stopped
    return _send_failed(message, failure, final_attempt=final_attempt)


def _send_failed(message: Message, exc: WhatsAppError, *, final_attempt: bool) -> SendOutcome:
    """Graph refused the send: failed for good, or released and re-raised for the task to retry."""
    if exc.code == OUTSIDE_WINDOW_CODE and message.kind == Message.Kind.TEXT:
        message_fail(message=message, code=Reason.WINDOW_CLOSED, detail=exc.detail, report=False)
        return SendOutcome.BLOCKED
    if exc.permanent or final_attempt:
        message_fail(message=message, code=exc.error_code, detail=exc.detail)
        return SendOutcome.FAILED
    _release(
        message.pk,
        send_after=timezone.now() + RETRY_HORIZON,
        error_code=exc.error_code,
        error_detail=exc.detail[:2000],
    )
    logger.info("send will be retried", extra={"message_id": message.pk, "error_code": exc.error_code})
    raise exc


def _sent_record(message: Message, *, wamid: str) -> None:
    """Meta accepted the message: its wamid, and any status that raced ahead of it."""
    sent_at = timezone.now()
    if message.purpose != Message.Purpose.FIRST_CONTACT and connection.vendor == "postgresql":
        # Every reply: one statement in autocommit, no BEGIN and COMMIT round trips. A status
        # kept before the wamid was known (rare) is applied right after; should the worker die
        # in between, the sweep applies it (orphan_statuses_apply). Statuses only move forward,
        # so it does not matter which of the two lands first.
        if statuses.sent_early(message_id=message.pk, wamid=wamid, sent_at=sent_at):
            with transaction.atomic():
                pending_statuses_apply(wamid=wamid)
        logger.info("message sent", extra={"message_id": message.pk, "wamid": wamid})
        return
    with transaction.atomic():
        statuses.sent(message_id=message.pk, wamid=wamid, sent_at=sent_at)
        pending_statuses_apply(wamid=wamid)
        if message.purpose == Message.Purpose.FIRST_CONTACT:
            # An ops retry delivered a first contact that had failed: the recovery starts after
            # all, so the conversation awaits a reply again (and gets its follow-up).
            handlers.first_contact_settled(
                conversation_id=message.conversation_id, sent=True, now=timezone.now()
            )
    logger.info("message sent", extra={"message_id": message.pk, "wamid": wamid})


# Taken this long before the slot opens: the gate's read then runs on a connection in hand,
# and no wait for the pool sits between a granted slot and the request it counts.
CONNECTION_LEAD_SECONDS = 0.05


def _wait_for_slot() -> None:
    """Sleep until this send's slot opens, holding a database connection only for its last moment."""
    opens_at = time.monotonic() + ratelimit.reserve(settings.WHATSAPP_PHONE_NUMBER_ID)
    early = opens_at - CONNECTION_LEAD_SECONDS - time.monotonic()
    if early > 0:
        time.sleep(early)
    connection.ensure_connection()
    remaining = opens_at - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


_BLOCK_DETAIL: dict[str, str] = {
    Reason.NEEDS_HUMAN: "The conversation waits for a person; Sara stays silent.",
    Reason.OPTED_OUT: "The customer opted out; nothing was sent.",
    Reason.HELD_OUT: "The person is in the holdout group (this cart or a newer one), never contacted.",
    Reason.ERASED: "The person's data was erased (LGPD): they are never contacted again.",
    Reason.WINDOW_CLOSED: "More than 24 hours since the customer's last message; only templates may go out.",
    Reason.CONVERSATION_CLOSED: "The conversation was closed before this proactive message went out.",
    Reason.CUSTOMER_ANSWERED: "The customer answered before this step went out; the sequence stopped.",
}


def message_fail(*, message: Message, code: str, detail: str, report: bool = True) -> None:
    """Mark a send failed for good, with the reason ops will see in the admin."""
    # Meta's per-user marketing limit ends this step, not the recovery: the sequence goes on
    # after its delay (SPEC §15). Expected, so not an error for Sentry either.
    marketing_limit = code == str(MARKETING_LIMIT_CODE)
    report = report and not marketing_limit
    first_contact = message.purpose == Message.Purpose.FIRST_CONTACT and code not in (
        Reason.OPTED_OUT,
        Reason.HELD_OUT,
        Reason.ERASED,
        Reason.CUSTOMER_ANSWERED,
        str(MARKETING_LIMIT_CODE),
    )
    # A failed first contact and its conversation's error are written together: a worker that
    # dies in between cannot leave the recovery looking as if it had started.
    with transaction.atomic() if first_contact else nullcontext():
        updated = statuses.send_failed(message_id=message.pk, code=code, detail=detail, now=timezone.now())
        if updated and first_contact:
            # The recovery never started: the conversation shows as an error for ops.
            handlers.first_contact_settled(
                conversation_id=message.conversation_id, sent=False, now=timezone.now()
            )
    if not updated:
        return
    metrics.SEND_FAILURES.labels(code[:50]).inc()
    logger.warning("send failed", extra={"message_id": message.pk, "error_code": code})
    if report:
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("error_code", code)
            scope.set_context("message", {"id": message.pk, "purpose": message.purpose})
            sentry_sdk.capture_message(f"WhatsApp send failed ({code})", level="error")
