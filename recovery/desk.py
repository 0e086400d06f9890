"""The support desk (SPEC §8): the inbox's reads, unread markers, notes, the reply's guardrails
and the desk's guarded template send.

Status and assignment changes go through `recovery.handoff` and `recovery.lifecycle`; this
module adds what a team needs around them and writes only its own rows (notes, reads, sends).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Least
from django.utils import timezone
from django.utils.translation import gettext as _

from compliance.gate import WINDOW, in_service_window
from core.staff import staff_name
from core.text import brl
from messaging.models import Message, Template, WebhookEvent
from recovery import handoff
from recovery.inbound import cart_figures
from recovery.models import Conversation, ConversationRead, DeskSend, PrivateNote
from recovery.quotes import expected_amounts
from recovery.selectors import shop_knowledge
from recovery.sequence import template_parameters
from sara import guardrails
from sara.interpretation import Context

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

# The inbox pages through every waiting conversation, this many a page.
INBOX_PAGE_SIZE = 50
# Before any message Sara ever kept: "read at" for a conversation a person never opened.
NEVER = datetime(2000, 1, 1, tzinfo=UTC)


def waiting() -> QuerySet[Conversation]:
    """Every open conversation waiting for a person: the inbox's rows and the dashboard's count."""
    return Conversation.objects.filter(needs_human=True, status__in=Conversation.OPEN_STATUSES)


def waiting_summary() -> tuple[int, int | None]:
    """How many wait for a person, and the newest of them (its id): what the page's script polls."""
    figures = waiting().aggregate(count=Count("pk"), newest=Max("pk"))
    return figures["count"], figures["newest"]


def inbox(*, user: User, shown: str = "", words: str = "") -> QuerySet[Conversation]:
    """The inbox, the longest wait first: every waiting conversation, never capped.

    The wait counts from the oldest customer message nobody answered: after a person's last
    reply, the customer's next message; before any, the hand-off (or a message of the customer
    Sara had not answered when it happened). A conversation a person answered and whose
    customer has not written since waits for nobody: it sorts last, with no wait shown.
    """
    conversations = waiting()
    if shown == "me":
        conversations = conversations.filter(assigned_to=user)
    elif shown == "none":
        conversations = conversations.filter(assigned_to__isnull=True)
    if words.strip():
        conversations = conversations.filter(pk__in=conversations_with_words(words))
    messages = Message.objects.filter(conversation=OuterRef("pk")).order_by()
    last_staff = messages.filter(direction=Message.Direction.OUT, purpose=Message.Purpose.STAFF_REPLY)
    last_staff_at = Subquery(last_staff.values("conversation").annotate(at=Max("created_at")).values("at"))
    last_out = messages.filter(direction=Message.Direction.OUT)
    last_out_at = Subquery(last_out.values("conversation").annotate(at=Max("created_at")).values("at"))
    last_in = Message.objects.filter(conversation=OuterRef("pk"), direction=Message.Direction.IN).order_by(
        "-created_at", "-id"
    )
    return (
        conversations.select_related("customer", "assigned_to", "abandonment__product")
        .annotate(
            last_staff_at=last_staff_at,
            last_out_at=last_out_at,
            read_at=Subquery(
                ConversationRead.objects.filter(conversation=OuterRef("pk"), user=user).values("read_at")[:1]
            ),
        )
        .annotate(
            first_unanswered_at=_oldest_in_after("last_staff_at"),
            first_unanswered_by_sara_at=_oldest_in_after("last_out_at"),
        )
        .annotate(
            waiting_since=Case(
                When(last_staff_at__isnull=False, then=F("first_unanswered_at")),
                default=Least(
                    Coalesce(
                        "handoff_at", "first_unanswered_by_sara_at", "last_user_message_at", "created_at"
                    ),
                    Coalesce(
                        "first_unanswered_by_sara_at", "handoff_at", "last_user_message_at", "created_at"
                    ),
                ),
                output_field=DateTimeField(),
            ),
            last_customer_text=Subquery(last_in.values("text")[:1]),
            last_customer_at=Subquery(last_in.values("created_at")[:1]),
            unread=_unread_count(),
        )
        .order_by(F("waiting_since").asc(nulls_last=True), "pk")
    )


def _oldest_in_after(field: str) -> Subquery:
    """The oldest customer message after the outer row's `field` (none when it is null)."""
    return Subquery(
        Message.objects.filter(
            conversation=OuterRef("pk"), direction=Message.Direction.IN, created_at__gt=OuterRef(field)
        )
        .order_by()
        .values("conversation")
        .annotate(at=Min("created_at"))
        .values("at")
    )


def _unread_count() -> Coalesce:
    """The customer's messages since the outer row's `read_at` (all of them, never opened)."""
    counted = (
        Message.objects.filter(conversation=OuterRef("pk"), direction=Message.Direction.IN)
        .filter(created_at__gt=Coalesce(OuterRef("read_at"), Value(NEVER)))
        .order_by()
        .values("conversation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def conversations_with_words(words: str) -> QuerySet:
    """The conversations whose customer wrote these words: PostgreSQL's full-text search in
    Portuguese ("certificado" finds "certificados"); a plain substring search elsewhere."""
    inbound = Message.objects.filter(direction=Message.Direction.IN, conversation__isnull=False)
    found: QuerySet[Message, Any]
    if connection.vendor == "postgresql":
        found = inbound.annotate(words=SearchVector("text", config="portuguese")).filter(
            words=SearchQuery(words, config="portuguese")
        )
    else:
        found = inbound.filter(text__icontains=words.strip())
    return found.values("conversation_id")


def conversation_read(*, conversation_id: int, user: User, now: datetime | None = None) -> None:
    """The staff member opened the conversation: what the customer wrote until now is read."""
    ConversationRead.objects.update_or_create(
        conversation_id=conversation_id, user=user, defaults={"read_at": now or timezone.now()}
    )


def unread(*, conversation: Conversation, user: User) -> int:
    read_at = (
        ConversationRead.objects.filter(conversation=conversation, user=user)
        .values_list("read_at", flat=True)
        .first()
    )
    messages = Message.objects.filter(conversation=conversation, direction=Message.Direction.IN)
    if read_at is not None:
        messages = messages.filter(created_at__gt=read_at)
    return messages.count()


def next_waiting(*, user: User, after: int) -> Conversation | None:
    """The next conversation to answer: the longest wait not held by a colleague."""
    return (
        inbox(user=user).exclude(pk=after).filter(Q(assigned_to__isnull=True) | Q(assigned_to=user)).first()
    )


# --- Private notes ------------------------------------------------------------------------


def note_add(*, conversation_id: int, user: User, text: str) -> PrivateNote:
    """A note for colleagues on the conversation. It is a row of its own, never a message: no
    path that sends messages can ever pick it up."""
    note = PrivateNote.objects.create(
        conversation_id=conversation_id,
        author=user,
        author_name=staff_name(user),
        text=text.strip(),
    )
    logger.info("private note added", extra={"conversation_id": conversation_id, "note_id": note.pk})
    return note


# --- The reply's guardrails (SPEC §5 step 5, SPEC §8) ---------------------------------------


@dataclass(frozen=True)
class Breach:
    """One guardrail a staff reply breaks: its code and what broke it, as staff read it."""

    rule: str
    found: str

    @property
    def label(self) -> str:
        labels = {
            "url": _("link that is not the shop's: %(found)s"),
            "amount": _("amount that is not the cart's: %(found)s"),
            "percent": _("percentage not offered for this cart: %(found)s"),
            "coupon": _("coupon code the shop did not configure: %(found)s"),
            "discount_promise": _("promise of a discount the cart does not have: “%(found)s”"),
        }
        return labels.get(self.rule, "%(found)s") % {"found": self.found}


class GuardrailBreached(handoff.HandoffError):
    """A staff reply says what Sara may not say; sent only when the person confirms the exception."""

    code = "GUARDRAIL"
    message = _("The reply breaks the rules Sara's messages follow; confirm the exception to send it.")

    def __init__(self, conversation_id: int, breaches: list[Breach]) -> None:
        super().__init__(conversation_id)
        self.breaches = breaches


def reply_breaches(*, conversation: Conversation, text: str) -> list[Breach]:
    """The guardrails Sara's replies follow, applied to a person's text: only the cart's own links,
    its value and discounted value, the shop's written figures and codes. The cart's discount may
    be mentioned when the product has one: a person may offer what the shop configured."""
    abandonment = conversation.abandonment
    product = abandonment.product
    cart = cart_figures(abandonment)
    context = Context(
        text="",
        value=abandonment.value,
        knowledge=shop_knowledge(product=product),
        payment_link=cart.payment_link,
        discount_link=cart.discount_link if cart.discount_available else "",
        discount_percent=cart.discount_percent,
        discounted_value=cart.discounted_value,
    )
    allowance = guardrails.allowance_for(context, offer_discount=cart.discount_available)
    return [Breach(rule, _shown(rule, found)) for rule, found in guardrails.breaches(text, allowance)]


def _shown(rule: str, found: str) -> str:
    if rule == "amount":
        try:
            return brl(Decimal(found))
        except InvalidOperation:
            return found
    return found


def staff_reply(*, conversation_id: int, user: User, text: str, exception_confirmed: bool = False) -> Message:
    """A person's free-form reply: checked by the same guardrails as Sara's, sent as written only
    when it passes or the person confirmed the exception (kept on the message, with the rules)."""
    conversation = Conversation.objects.select_related("abandonment__product").get(pk=conversation_id)
    breaches = reply_breaches(conversation=conversation, text=text)
    if breaches and not exception_confirmed:
        raise GuardrailBreached(conversation_id, breaches)
    metadata: dict[str, object] | None = (
        {"guardrail_exception": [b.rule for b in breaches]} if breaches else None
    )
    return handoff.conversation_reply(
        conversation_id=conversation_id, user=user, text=text, metadata=metadata
    )


# --- The follow-up template from the desk: shown first, sent once ----------------------------


def template_preview(conversation: Conversation) -> str:
    """The follow-up template's text as this customer would read it."""
    name = settings.WHATSAPP_FOLLOWUP_TEMPLATE_NAME
    body = settings.WHATSAPP_TEMPLATE_BODIES.get(name) or (
        Template.objects.filter(name=name).values_list("body", flat=True).first() or ""
    )
    for number, value in enumerate(template_parameters(conversation.abandonment), start=1):
        body = body.replace(f"{{{{{number}}}}}", value)
    return body


def template_send(*, conversation_id: int, user: User, key: str) -> tuple[Message | None, bool]:
    """Send the follow-up template once per key: (the message, whether this call queued it).

    The key is written first, in the send's transaction: a second request with it (a double
    click that got through, a resubmitted form) finds it and queues nothing.
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                send = DeskSend.objects.create(key=key[:64], conversation_id=conversation_id)
        except IntegrityError:
            earlier = DeskSend.objects.filter(key=key[:64]).select_related("message").first()
            return (earlier.message if earlier else None), False
        message = handoff.conversation_reply_template(conversation_id=conversation_id, user=user)
        send.message = message
        send.save(update_fields=["message"])
    return message, True


# --- What the workspace shows beside the chat ---------------------------------------------


@dataclass(frozen=True)
class WindowState:
    open: bool
    until: datetime | None


def window_state(conversation: Conversation, now: datetime) -> WindowState:
    last = conversation.last_user_message_at
    if last is not None and in_service_window(last, now):
        return WindowState(open=True, until=last + WINDOW)
    return WindowState(open=False, until=None)


@dataclass(frozen=True)
class Mismatch:
    expected: list[str]
    paid: str
    payment_id: str
    link_type: str
    at: datetime


def payment_mismatch(conversation: Conversation) -> Mismatch | None:
    """The refused payment behind a payment-mismatch hand-off, in words staff read."""
    if conversation.handoff_reason != Conversation.HandoffReason.PAYMENT_MISMATCH:
        return None
    abandonment = conversation.abandonment
    event = (
        WebhookEvent.objects.filter(type=WebhookEvent.Type.PAYMENT, reference=abandonment.external_id)
        .exclude(error="")
        .order_by("-created_at", "-pk")
        .first()
    )
    if event is None:
        return None
    payload = event.payload if isinstance(event.payload, dict) else {}
    link_type = str(payload.get("linkType") or "original")
    try:
        paid = brl(Decimal(str(payload.get("amount"))))
    except (InvalidOperation, ValueError):
        paid = str(payload.get("amount") or "—")
    return Mismatch(
        expected=[brl(value) for value in expected_amounts(abandonment, link_type=link_type)],
        paid=paid,
        payment_id=event.external_id or "",  # a payment event always has one
        link_type=_("discount link") if link_type == "discounted" else _("original link"),
        at=event.created_at,
    )
