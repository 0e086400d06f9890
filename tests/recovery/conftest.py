"""Maria's recovery and her conversation with Sara through the Meta webhook, at a frozen hour."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from recovery.models import Conversation
from tests.factories import AbandonmentFactory, ConversationFactory, CustomerFactory

NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)
PHONE = "+5548999327881"
PAYMENT_LINK = "https://pay.example.com/cart/123"
DISCOUNT_LINK = "https://pay.example.com/curso-python?cupom=VOLTA10"


def recovery(**abandonment: Any) -> Conversation:
    """Maria's open recovery; the abandonment's fields (value, product...) as given."""
    customer = CustomerFactory(phone=PHONE, name="Maria Silva")
    return ConversationFactory(abandonment=AbandonmentFactory(customer=customer, **abandonment))


@pytest.fixture
def reply_to(say: Callable[[str], Any], outbox: list) -> Callable[[str], str | None]:
    """The customer writes `text` now; returns the text of Sara's one reply (None when she is silent)."""

    def write(text: str) -> str | None:
        sent_before = len(outbox)
        say(text)
        replies = [m.text for _, m in outbox[sent_before:]]
        assert len(replies) <= 1, replies
        return replies[0] if replies else None

    return write
