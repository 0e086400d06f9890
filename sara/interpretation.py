"""What an interpreter is given and what it answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sara.knowledge import ShopKnowledge

INTENTS = ("price_question", "objection", "confirmation", "question", "opt_out", "human", "unclear")
SENTIMENTS = ("positive", "neutral", "negative")


@dataclass(frozen=True)
class Turn:
    role: str  # "customer" | "sara"
    text: str


@dataclass(frozen=True)
class Context:
    """Everything the interpreter may use: the message, the last turns, the cart, the shop.

    The figures a reply may quote come from here too (the guardrails read them): the cart's
    value and links, the discount quoted on this cart, and what the shop wrote.
    """

    text: str
    customer_name: str = ""
    product_name: str = ""
    product_description: str = ""
    value: Decimal = Decimal("0")
    history: list[Turn] = field(default_factory=list)
    weak_optout: bool = False
    knowledge: ShopKnowledge = field(default_factory=ShopKnowledge)
    payment_link: str = ""
    # The discount this cart may be offered (the product's link and percent, or the quote kept
    # on the cart); None when it has none.
    discount_link: str = ""
    discount_percent: Decimal | None = None
    discounted_value: Decimal | None = None


@dataclass(frozen=True)
class Interpretation:
    intent: str
    sentiment: str
    reply: str
    tokens_used: int = 0
    # Prompt and completion tokens of the call, and how many of the prompt's came from the
    # provider's cache (the stable prefix of system prompt and shop knowledge).
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    # True when the AI could not answer and the rule-based reading stands in for it.
    fallback: bool = False
    # Why the AI could not answer: timeout, connection, http_<status>, refusal, content_filter,
    # length (cut off), schema (an answer outside the schema).
    ai_error: str = ""
    # The reading could not tell whether the customer wants to stop, or they complain about the
    # messages: the reply pushes nothing and says how to stop (SPEC §5, judgement).
    offer_stop: bool = False

    @classmethod
    def failed(cls, ai_error: str) -> Interpretation:
        """The AI gave no usable answer; the agent has the rules read the message instead."""
        return cls(intent="unclear", sentiment="neutral", reply="", fallback=True, ai_error=ai_error)


class Interpreter:
    def interpret(self, context: Context) -> Interpretation:  # pragma: no cover - interface
        raise NotImplementedError
