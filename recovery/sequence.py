"""The recovery sequence (SPEC §15): its steps, the variant each cart gets, and what a step sends.

A step goes as free-form text when the customer's 24 h window is open (cheaper, and what a
person would do), as one of its templates otherwise. The variant is drawn from a keyed hash of
the cart and the step, weighted: a retry, a second sweep or a re-run never switches a cart's
variant, and a checkout cannot steer which variant its carts get. A template Meta paused is
never sent: the message carries the step's other variants, and the send path takes the first
one Meta still accepts, or waits (messaging.services.outbound).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac

from compliance.gate import WINDOW
from compliance.quiet_hours import next_allowed_at
from core.text import fold
from messaging.models import Message, Template
from recovery.models import Abandonment, Conversation, SequenceStep, StepVariant
from recovery.outbox import message_queue

logger = logging.getLogger(__name__)

# A step goes as text only with this much of the window left: a text deferred past the window's
# end would be refused (window_closed) where the template would have gone.
TEXT_MARGIN = timedelta(hours=1)


class QuickReply:
    """The first template's quick-reply buttons (SPEC §15): the payload Sara sends for each, and
    the intent a tap reads as. A tap whose payload Sara did not set is read by the button's text."""

    FINISH = "SARA_FINISH"
    QUESTION = "SARA_QUESTION"
    NOT_INTERESTED = "SARA_NOT_INTERESTED"

    BY_TEXT = {
        "quero finalizar": FINISH,
        "tenho uma duvida": QUESTION,
        "nao tenho interesse": NOT_INTERESTED,
    }

    @classmethod
    def payload_for(cls, button_text: str) -> str:
        return cls.BY_TEXT.get(fold(button_text).strip(" .!"), button_text[:128])

    @classmethod
    def read(cls, *, payload: str, text: str) -> str:
        """FINISH, QUESTION or NOT_INTERESTED for a tap on one of Sara's buttons, else ""."""
        if payload in (cls.FINISH, cls.QUESTION, cls.NOT_INTERESTED):
            return payload
        for candidate in (payload, text):
            found = cls.BY_TEXT.get(fold(candidate or "").strip(" .!"))
            if found:
                return found
        return ""


@dataclass(frozen=True)
class Variant:
    name: str
    language: str
    weight: int
    # Meta's last word on it; None when Sara never heard of it (taken as approved).
    template: Template | None = None

    @property
    def sendable(self) -> bool:
        return self.template is None or self.template.sendable

    @property
    def button_texts(self) -> list[str]:
        """Its quick-reply buttons as the customer sees them, in the order Meta approved them."""
        texts = self.template.buttons if self.template is not None else []
        return [text for text in texts if isinstance(text, str)]

    @property
    def buttons(self) -> list[str]:
        """The payloads of its quick-reply buttons, in the same order."""
        return [QuickReply.payload_for(text) for text in self.button_texts]

    @property
    def body(self) -> str:
        if self.template is not None and self.template.body:
            return self.template.body
        return str(settings.WHATSAPP_TEMPLATE_BODIES.get(self.name, ""))

    def as_template(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "language": self.language,
            "buttons": self.buttons,
            "button_texts": self.button_texts,
        }


@dataclass(frozen=True)
class Step:
    order: int
    delay: timedelta
    variants: tuple[Variant, ...]
    first: bool  # the sequence's first active step: its message is the first contact


def sequence_steps() -> list[Step]:
    """The active steps in order. With no steps configured at all, today's two from the settings."""
    rows = list(SequenceStep.objects.prefetch_related("variants__template").order_by("order"))
    if not rows:
        return _settings_steps()
    templates = _templates_by_key()
    steps: list[Step] = []
    for row in (r for r in rows if r.active):
        first = not steps
        variants = []
        # A step with no variant, or a variant with no template, sends the settings' template.
        for variant in row.variants.all() or [StepVariant(weight=1)]:
            if variant.template is not None:
                template = variant.template
                variants.append(Variant(template.name, template.language, variant.weight, template))
            else:
                name = settings.WHATSAPP_TEMPLATE_NAME if first else settings.WHATSAPP_FOLLOWUP_TEMPLATE_NAME
                language = settings.WHATSAPP_TEMPLATE_LANGUAGE
                variants.append(Variant(name, language, variant.weight, templates.get((name, language))))
        steps.append(
            Step(order=row.order, delay=row.delay(first=first), variants=tuple(variants), first=first)
        )
    return steps


def _settings_steps() -> list[Step]:
    templates = _templates_by_key()
    language = settings.WHATSAPP_TEMPLATE_LANGUAGE
    names = (settings.WHATSAPP_TEMPLATE_NAME, settings.WHATSAPP_FOLLOWUP_TEMPLATE_NAME)
    return [
        Step(
            order=order,
            delay=timedelta(0) if order == 1 else timedelta(hours=settings.FOLLOWUP_AFTER_HOURS),
            variants=(Variant(name, language, 1, templates.get((name, language))),),
            first=order == 1,
        )
        for order, name in enumerate(names, start=1)
    ]


def _templates_by_key() -> dict[tuple[str, str], Template]:
    return {(t.name, t.language): t for t in Template.objects.all()}


def step_after(steps: list[Step], order: int) -> Step | None:
    """The step that follows the one of this order (0: the first)."""
    return next((step for step in steps if step.order > order), None)


_SLICES = 2**64


def variant_draw(*, cart_key: str, step: Step) -> tuple[Variant, list[Variant]]:
    """The cart's variant for this step and the others, in the order to fall back on.

    Drawn by weight among the variants Meta accepts now (among all of them when none does:
    the message then waits for one). The draw is a function of the cart and the step alone.
    """
    pool = [v for v in step.variants if v.sendable] or list(step.variants)
    total = sum(v.weight for v in pool)
    digest = salted_hmac("sara.variant", f"{cart_key}:{step.order}", algorithm="sha256").digest()
    point = int.from_bytes(digest[:8], "big") * total // _SLICES
    chosen = pool[-1]
    for variant in pool:
        if point < variant.weight:
            chosen = variant
            break
        point -= variant.weight
    others = sorted((v for v in step.variants if v is not chosen), key=lambda v: -v.weight)
    return chosen, others


def step_queue(
    *, conversation: Conversation, step: Step, now: datetime, update_conversation: bool = True
) -> Message:
    """Queue the step's message for the conversation's cart: text inside the window, else a template."""
    abandonment = conversation.abandonment
    variant, others = variant_draw(cart_key=abandonment.external_id, step=step)
    purpose = Message.Purpose.FIRST_CONTACT if step.first else Message.Purpose.FOLLOWUP
    parameters = template_parameters(abandonment)
    metadata: dict[str, Any] = {"sequence": {"step": step.order, "variant": variant.name}}
    wrote_at = customer_wrote_at(conversation)
    text = render_body(variant.body, parameters)
    if text and wrote_at is not None and _window_holds(conversation, wrote_at, now=now):
        # The window is the customer's, not the conversation's: they may have written about an
        # earlier cart. The message carries when, for the send-time gate to check again.
        metadata["customer_wrote_at"] = wrote_at.isoformat()
        metadata["sequence"]["as_text"] = True
        return message_queue(
            conversation=conversation,
            purpose=purpose,
            text=text,
            metadata=metadata,
            update_conversation=update_conversation,
        )
    if others:
        metadata["template_alternatives"] = [other.as_template() for other in others]
    return message_queue(
        conversation=conversation,
        purpose=purpose,
        template={**variant.as_template(), "parameters": parameters},
        metadata=metadata,
        update_conversation=update_conversation,
    )


def _window_holds(conversation: Conversation, wrote_at: datetime, *, now: datetime) -> bool:
    """The window stays open long enough for a text to leave, and quiet hours do not hold it."""
    if wrote_at + WINDOW - now < TEXT_MARGIN:
        return False
    phone = conversation.customer.phone or ""
    return next_allowed_at(phone, now) is None


def customer_wrote_at(conversation: Conversation) -> datetime | None:
    """When the customer last wrote to the shop, in this conversation or an earlier one."""
    last = (
        Message.objects.filter(
            direction=Message.Direction.IN, conversation__customer_id=conversation.customer_id
        )
        .exclude(kind__in=Message.NOT_TURN_KINDS)
        .order_by("-created_at")
        .values_list("whatsapp_timestamp", "created_at")
        .first()
    )
    candidates = [conversation.last_user_message_at]
    if last is not None:
        candidates.append(last[0] or last[1])
    known = [moment for moment in candidates if moment is not None]
    return max(known) if known else None


def render_body(body: str, parameters: list[str]) -> str:
    """The template's approved words with its parameters filled in, as the customer reads them."""
    if not body:
        return ""
    for index, value in enumerate(parameters, start=1):
        body = body.replace("{{" + str(index) + "}}", value)
    return body


def template_parameters(abandonment: Abandonment) -> list[str]:
    """The template's body parameters: {{1}} the customer's first name, {{2}} the product."""
    first_name = (abandonment.customer.name or "").split(" ")[0] or "cliente"
    product = abandonment.product.name if abandonment.product else "seu carrinho"
    return [first_name, product]
