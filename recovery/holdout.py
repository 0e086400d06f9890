"""The holdout draw: which new carts Sara leaves alone, so their payments show what she adds."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils.crypto import salted_hmac

# 2**64 equal slices of [0, 100): the first 8 bytes of the HMAC are plenty for a percentage.
_SLICES = 2**64


@dataclass(frozen=True)
class Draw:
    percent: Decimal  # the share in force when the cart was drawn
    held_out: bool


def holdout_number(external_id: str) -> float:
    """A number in [0, 100), fixed for this abandonment id and unpredictable without SECRET_KEY.

    Keyed, so a checkout cannot steer carts in or out of the group by choosing ids; a function
    of the id alone, so a repeat of the same cart lands the same way.
    """
    digest = salted_hmac("sara.holdout", external_id, algorithm="sha256").digest()
    return int.from_bytes(digest[:8], "big") * 100 / _SLICES


def holdout_draw(*, external_id: str, percent: Decimal | None = None) -> Draw:
    """Draw a new cart in or out of the holdout group under the share in force (SARA_HOLDOUT_PERCENT)."""
    share = settings.SARA_HOLDOUT_PERCENT if percent is None else percent
    return Draw(percent=share, held_out=share > 0 and holdout_number(external_id) < share)
