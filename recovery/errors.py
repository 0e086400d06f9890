"""What can go wrong with a cart, as the services say it (views choose the HTTP answer)."""

from __future__ import annotations

from core.errors import DomainError


class RecoveryError(DomainError):
    """A payment that cannot convert its cart; the event is kept either way."""


class AbandonmentNotFound(RecoveryError):
    """No abandonment with this id (yet: the cart may still be on its way)."""


class AmountMismatch(RecoveryError):
    """The amount paid is not the cart's value (or its discounted value)."""


class PaymentIdReused(RecoveryError):
    """The platform sent a paymentId already received for another abandonment."""


class PayloadUnusable(DomainError):
    """An authentic platform event Sara cannot read: a field missing or of the wrong type."""
