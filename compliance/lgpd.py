"""LGPD policy: what an erased person's phone becomes, and how an erased record is told apart.

Erasure anonymises rather than deletes: aggregates (abandonments, values, conversions,
message counts) stay for the shop's figures, while every copy of the person's data goes. Their
phone becomes a keyed one-way digest, so a later cart or message from that number is still
recognised and never answered (SPEC §14). The erasure itself, the export and the look-up by
phone are `recovery.lgpd`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from django.conf import settings

ERASED_PREFIX = "erased:"


class HasPhone(Protocol):
    phone: str | None


def phone_digest(phone: str) -> str:
    """A keyed one-way digest of a canonical phone; fits the phone column and never reverses."""
    digest = hmac.new(settings.SECRET_KEY.encode(), phone.encode(), hashlib.sha256).hexdigest()
    return ERASED_PREFIX + digest[:12]


def erased_id(value: str) -> str:
    """A keyed one-way digest of an external id (a cart's, a payment's, a wamid): unique as the
    id was, and nothing that leads back to the person (a wamid even encodes the phone)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()
    return ERASED_PREFIX + digest[:32]


def is_erased(customer: HasPhone) -> bool:
    """Whether this is an erased person's record (its phone or its BSUID is a digest)."""
    return (customer.phone or "").startswith(ERASED_PREFIX) or (
        getattr(customer, "whatsapp_user_id", None) or ""
    ).startswith(ERASED_PREFIX)
