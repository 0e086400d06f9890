"""Sara's decisions that stay in code: which interpreter, the discount rule, the reply text."""

from __future__ import annotations

from django.conf import settings

from recovery.models import Abandonment
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


def should_offer_discount(abandonment: Abandonment, interpretation: Interpretation) -> bool:
    """The discount rule (SPEC §5), in code so the model can never hand out discounts."""
    if not abandonment.discount_available():
        return False
    if abandonment.discount_offers >= settings.SARA_MAX_DISCOUNT_OFFERS:
        return False
    return (
        abandonment.value > settings.SARA_DISCOUNT_VALUE_THRESHOLD
        or interpretation.intent == "price_question"
        or interpretation.sentiment == "negative"
    )


def compose_reply(text: str, *, abandonment: Abandonment, offer_discount: bool) -> str:
    """The interpreter's words, then the payment link, then the discount link when offered."""
    product = abandonment.product
    body = text.strip()
    if product is not None and product.discount_link:
        # The model sees earlier offers in the history and may copy the link; only the rule hands it out.
        body = body.replace(product.discount_link, "").strip()
    links = f"\n\nFinalize sua compra aqui: {abandonment.payment_link}"
    if offer_discount:
        percent = f"{product.discount_percent.normalize():f}".replace(".", ",")
        price = f"{abandonment.discounted_value():.2f}".replace(".", ",")
        links += f"\n\nOu com {percent}% de desconto (R$ {price}): {product.discount_link}"
    room = WHATSAPP_TEXT_LIMIT - len(links)
    if len(body) > room:
        body = body[: room - 1].rstrip() + "…"
    return body + links


def thank_you_text(name: str) -> str:
    first = (name or "").split(" ")[0] or "cliente"
    return THANK_YOU.format(name=first)
