"""LGPD requests: find the person a phone names (erased records included) and export everything
Sara stores about them. Erasure itself is a lifecycle step (`recovery.lifecycle.customer_erase`);
what an erased phone becomes is policy (`compliance.lgpd`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from compliance.lgpd import is_erased, phone_digest
from core.phones import InvalidPhone, normalize_phone
from messaging.models import Conversation
from recovery.models import Abandonment, Customer


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


@dataclass(frozen=True)
class PhoneCheck:
    """What Sara knows about a typed phone number, for support answering "is it blocked?"."""

    phone: str  # the canonical E.164 form of what was typed
    customer: Customer | None

    @property
    def blocked(self) -> bool:
        return bool(self.customer and self.customer.opted_out)

    @property
    def erased(self) -> bool:
        return bool(self.customer and is_erased(self.customer))


def phone_check(*, raw_phone: str) -> PhoneCheck:
    """Look a typed phone up, erased records included (by the keyed digest: no phone is stored).

    Raises ValueError for something that is not a phone number.
    """
    try:
        phone = normalize_phone(raw_phone)
    except InvalidPhone as exc:
        raise ValueError(str(exc)) from exc
    return PhoneCheck(phone=phone, customer=customer_for_phone(phone))


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
