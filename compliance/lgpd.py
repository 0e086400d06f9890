"""LGPD policy: what an erased person's phone becomes, and how an erased record is told apart.

Erasure anonymises rather than deletes: aggregates (abandonments, values, conversions,
message counts) stay for the shop's figures, while the phone, the name and every message text
go. An opted-out person's phone becomes a one-way digest, so a later cart for that number is
still recognised and never contacted. The erasure itself is the recovery lifecycle's
(`recovery.lifecycle.customer_erase`); the export and the look-up by phone are `recovery.lgpd`.
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


def is_erased(customer: HasPhone) -> bool:
    """Whether this is an erased person's record (its phone is a digest, not a phone)."""
    return (customer.phone or "").startswith(ERASED_PREFIX)
