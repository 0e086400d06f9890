"""The one place sources reach the recovery lifecycle: open a cart, convert it.

Every platform's cart goes through the same services as POST /webhook/abandonment (SPEC §4.1)
and POST /webhook/payment (§4.4); only the amount differs: a platform's paid order is the
truth, so a difference from the quote is recorded, never refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.text import brl
from messaging.models import WebhookEvent
from recovery import services
from recovery.models import Abandonment


@dataclass(frozen=True)
class Opened:
    outcome: str  # received | already_processed | skipped (opted out)
    abandonment: Abandonment
    conversation_id: int | None


def cart_open(
    *,
    external_id: str,
    phone: str,
    name: str,
    product_id: str,
    payment_link: str,
    value: Decimal,
    payload: dict[str, Any],
) -> Opened:
    result = services.abandonment_open(
        external_id=external_id,
        phone=phone,
        name=name,
        external_user_id="",
        external_product_id=product_id,
        payment_link=payment_link,
        value=value,
        payload=payload,
    )
    return Opened(
        outcome=str(result.outcome),
        abandonment=result.abandonment,
        conversation_id=result.conversation.pk if result.conversation is not None else None,
    )


@dataclass(frozen=True)
class Converted:
    converted: bool
    detail: str


def cart_convert(*, abandonment_id: int, event: WebhookEvent, amount: Decimal | None) -> Converted:
    """Convert with the platform's amount; inside the caller's transaction."""
    abandonment = (
        Abandonment.objects.select_for_update(of=("self",))
        .select_related("product", "customer")
        .get(pk=abandonment_id)
    )
    if abandonment.payment_id is not None:
        # Converted, or a held-out cart already paid (its status stays held_out).
        return Converted(False, "already converted: a possible second payment")
    paid = amount if amount is not None else abandonment.value
    discounted = abandonment.discounted_value()
    link_type = (
        "discounted" if discounted is not None and paid == discounted != abandonment.value else "original"
    )
    detail = ""
    if amount is None:
        detail = "the platform sent no amount: the cart's value counted"
    elif paid not in (abandonment.value, discounted):
        detail = f"paid {brl(paid)}, quoted {brl(abandonment.value)}"
    services.payment_convert(abandonment, event, link_type=link_type, thank=True, paid_amount=paid)
    return Converted(True, detail)
