"""Codes shown to staff as words: intents, sentiments, template names, send errors, colleagues."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django import template
from django.utils.translation import gettext_lazy as _

from core.staff import staff_name
from core.text import brl
from messaging.models import Message
from messaging.retry_advice import error_code_words, error_detail_words
from messaging.template_labels import template_label

if TYPE_CHECKING:
    from django.contrib.auth.models import User

register = template.Library()

INTENTS = {
    "price_question": _("asks about the price"),
    "objection": _("objection"),
    "confirmation": _("confirms"),
    "question": _("question"),
    "opt_out": _("asks to stop"),
    "human": _("asks for a person"),
    "unclear": _("unclear"),
}
SENTIMENTS = {"positive": _("positive"), "neutral": _("neutral"), "negative": _("negative")}


@register.filter
def intent_words(code: str) -> str:
    return str(INTENTS.get(code, code))


@register.filter
def sentiment_words(code: str) -> str:
    return str(SENTIMENTS.get(code, code))


register.filter("template_label", template_label)


@register.filter
def send_error_words(message: Message) -> str:
    """ "network: ConnectionError…" → "No answer from Meta (network): the connection to Meta failed (…)"."""
    code = error_code_words(message.error_code)
    detail = error_detail_words(message.error_code, message.error_detail)
    return f"{code}: {detail}" if detail else code


@register.filter(name="brl")
def brl_filter(amount: Decimal | None) -> str:
    """1299 → "R$ 1.299,00"; a dash for no amount."""
    return brl(amount) if amount is not None else "—"


@register.filter(name="staff_name")
def staff_name_filter(user: User | None) -> str:
    """A colleague by their full name, or their username when it is empty."""
    return staff_name(user)
