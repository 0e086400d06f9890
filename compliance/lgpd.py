"""LGPD tools: export everything Sara stores about a person; erase it, keeping the opt-out.

Erasure anonymises rather than deletes: aggregates (abandonments, values, conversions,
message counts) stay for the shop's figures, while the phone, the name and every message text
go. An opted-out person's phone becomes a one-way digest, so a later cart for that number is
still recognised and never contacted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from django.conf import settings
from django.utils import timezone

from messaging.models import Conversation
from recovery.models import Abandonment, Customer
from recovery.phones import InvalidPhone, normalize_phone

logger = logging.getLogger(__name__)

ERASED_PREFIX = "erased:"


def phone_digest(phone: str) -> str:
    """A keyed one-way digest of a canonical phone; fits the phone column and never reverses."""
    digest = hmac.new(settings.SECRET_KEY.encode(), phone.encode(), hashlib.sha256).hexdigest()
    return ERASED_PREFIX + digest[:12]


def customer_for_phone(phone: str) -> Customer | None:
    """The customer with this phone, or the erased record that still carries its opt-out."""
    return (
        Customer.objects.filter(phone__in=[phone, phone_digest(phone)])
        .order_by("-opted_out", "-created_at")
        .first()
    )


def customer_for_request(raw_phone: str) -> Customer:
    """The customer a data-subject request names, by a phone typed any way; ValueError if none."""
    try:
        phone = normalize_phone(raw_phone)
    except InvalidPhone as exc:
        raise ValueError(f"Not a valid phone number: {exc}") from exc
    customer = customer_for_phone(phone)
    if customer is None:
        raise ValueError("No customer with this phone.")
    return customer


def is_erased(customer: Customer) -> bool:
    """Whether this is an erased person's record (its phone is a digest, not a phone)."""
    return customer.phone.startswith(ERASED_PREFIX)


def customer_export(*, customer: Customer) -> dict[str, Any]:
    """Everything stored about one person, as JSON-ready data (the data subject's copy)."""
    abandonments = Abandonment.objects.filter(customer=customer).select_related("product")
    conversations = Conversation.objects.filter(customer=customer).prefetch_related("messages")
    return {
        "exported_at": timezone.now().isoformat(),
        "customer": {
            "phone": customer.phone,
            "name": customer.name,
            "opted_out": customer.opted_out,
            "opted_out_at": customer.opted_out_at.isoformat() if customer.opted_out_at else None,
            "opted_out_reason": customer.opted_out_reason,
            "created_at": customer.created_at.isoformat(),
        },
        "abandonments": [
            {
                "abandonmentId": a.external_id,
                "productId": a.external_product_id,
                "product": a.product.name if a.product else None,
                "value": f"{a.value:.2f}",
                "payment_link": a.payment_link,
                "status": a.status,
                "discount_offers": a.discount_offers,
                "payment_id": a.payment_id,
                "converted_at": a.converted_at.isoformat() if a.converted_at else None,
                "created_at": a.created_at.isoformat(),
            }
            for a in abandonments
        ],
        "conversations": [
            {
                "id": c.pk,
                "status": c.status,
                "close_reason": c.close_reason,
                "created_at": c.created_at.isoformat(),
                "messages": [
                    {
                        "direction": m.direction,
                        "kind": m.kind,
                        "text": m.text,
                        "status": m.status,
                        "intent": m.intent,
                        "sentiment": m.sentiment,
                        "created_at": m.created_at.isoformat(),
                    }
                    for m in c.messages.all()
                ],
            }
            for c in conversations
        ],
    }
