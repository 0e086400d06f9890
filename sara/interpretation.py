"""What an interpreter is given and what it answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

INTENTS = ("price_question", "objection", "confirmation", "question", "opt_out", "unclear")
SENTIMENTS = ("positive", "neutral", "negative")

HOLDING_REPLY = "Um momento enquanto avalio sua mensagem..."


@dataclass(frozen=True)
class Turn:
    role: str  # "customer" | "sara"
    text: str


@dataclass(frozen=True)
class Context:
    """Everything the interpreter may use: the message, the last turns, the cart."""

    text: str
    customer_name: str = ""
    product_name: str = ""
    product_description: str = ""
    value: Decimal = Decimal("0")
    history: list[Turn] = field(default_factory=list)
    weak_optout: bool = False


@dataclass(frozen=True)
class Interpretation:
    intent: str
    sentiment: str
    reply: str
    tokens_used: int = 0
    # True when the AI could not answer (timeout, error) and the holding reply stands in.
    fallback: bool = False

    @classmethod
    def holding(cls) -> Interpretation:
        return cls(intent="unclear", sentiment="neutral", reply=HOLDING_REPLY, fallback=True)


class Interpreter:
    def interpret(self, context: Context) -> Interpretation:  # pragma: no cover - interface
        raise NotImplementedError
