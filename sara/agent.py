"""Sara's decisions that stay in code: which interpreter, the discount rule, the reply text."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from sara import rules
from sara.interpretation import Context, Interpretation, Interpreter

WHATSAPP_TEXT_LIMIT = 4096

FAREWELL = "Tudo bem, você não receberá mais mensagens nossas. Obrigado pela atenção e até logo!"
HANDOFF = "Vou chamar uma pessoa da nossa equipe para continuar o seu atendimento. Ela responde em breve!"
ASK_FOR_TEXT = "Desculpe, por aqui só consigo ler mensagens de texto. Pode me escrever o que precisa?"
THANK_YOU = "Pagamento confirmado! Muito obrigado pela compra, {name}. Qualquer dúvida, é só chamar."


def get_interpreter() -> Interpreter:
    if settings.SARA_INTERPRETER == "openai":
        from sara.llm.openai_client import OpenAIInterpreter

        return OpenAIInterpreter()
    return rules.RuleBasedInterpreter()


def interpret(context: Context, interpreter: Interpreter | None = None) -> Interpretation:
    """The AI's reading; on a weak opt-out match without the AI, the rules decide (opt-out wins)."""
    interpretation = (interpreter or get_interpreter()).interpret(context)
    if interpretation.fallback and context.weak_optout and rules.is_optout(context):
        return Interpretation(intent="opt_out", sentiment=interpretation.sentiment, reply="", fallback=True)
    return interpretation


@dataclass(frozen=True)
class CartFigures:
    """What the discount rule and the reply read of a cart: plain values, no model."""

    value: Decimal
    payment_link: str
    offers_so_far: int = 0
    # A discount is available when the percent and the discounted value are both known.
    discount_percent: Decimal | None = None
    discounted_value: Decimal | None = None
    # Set whenever the product has one, offered or not: an echo of it is always removed.
    discount_link: str = ""

    @property
    def discount_available(self) -> bool:
        return self.discount_percent is not None and self.discounted_value is not None


def should_offer_discount(cart: CartFigures, interpretation: Interpretation) -> bool:
    """The discount rule (SPEC §5), in code so the model can never hand out discounts."""
    if not cart.discount_available:
        return False
    if cart.offers_so_far >= settings.SARA_MAX_DISCOUNT_OFFERS:
        return False
    return (
        cart.value > settings.SARA_DISCOUNT_VALUE_THRESHOLD
        or interpretation.intent == "price_question"
        or interpretation.sentiment == "negative"
    )


def compose_reply(text: str, *, cart: CartFigures, offer_discount: bool) -> str:
    """The interpreter's words, then the payment link, then the discount link when offered."""
    body = text.strip()
    if cart.discount_link:
        # The model sees earlier offers in the history and may copy the link; only the rule hands it out.
        body = body.replace(cart.discount_link, "").strip()
    links = f"\n\nFinalize sua compra aqui: {cart.payment_link}"
    if offer_discount and cart.discount_available:
        percent = f"{cart.discount_percent.normalize():f}".replace(".", ",")
        price = f"{cart.discounted_value:.2f}".replace(".", ",")
        links += f"\n\nOu com {percent}% de desconto (R$ {price}): {cart.discount_link}"
    room = WHATSAPP_TEXT_LIMIT - len(links)
    if len(body) > room:
        body = body[: room - 1].rstrip() + "…"
    return body + links


def thank_you_text(name: str) -> str:
    first = (name or "").split(" ")[0] or "cliente"
    return THANK_YOU.format(name=first)
