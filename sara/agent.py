"""Sara's decisions that stay in code: which interpreter, the discount rule, the reply text."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from core import metrics
from sara import guardrails, rules
from sara.interpretation import Context, Interpretation, Interpreter
from sara.money import brl, percent

WHATSAPP_TEXT_LIMIT = 4096

FAREWELL = "Tudo bem, você não receberá mais mensagens nossas. Obrigado pela atenção e até logo!"
HANDOFF = rules.HANDOFF_NOTE
ASK_FOR_TEXT = "Desculpe, por aqui só consigo ler mensagens de texto. Pode me escrever o que precisa?"
# Once per conversation, for a picture, a file, a location or a contact card without words. It
# acknowledges nothing: a picture is never taken as proof of payment.
ASK_WHAT_YOU_NEED = "Recebi, mas por aqui só consigo ler texto. Pode me escrever o que você precisa?"
# The first template's quick-reply buttons (SPEC §15): each tap gets its own short answer.
QUICK_FINISH = "Ótimo! É só usar o link abaixo para finalizar a compra."
QUICK_QUESTION = "Claro! Qual é a sua dúvida? Pode escrever aqui que eu te ajudo."
# "Não tenho interesse": no sale pushed, the sequence stops, and the way out is offered.
QUICK_NOT_INTERESTED = (
    "Tudo bem, obrigado por avisar! Não vou mais lembrar você deste carrinho. "
    "Se preferir não receber mais mensagens nossas, é só responder PARAR."
)
THANK_YOU = "Pagamento confirmado! Muito obrigado pela compra, {name}. Qualquer dúvida, é só chamar."
THANK_YOU_WITH_AMOUNT = (
    "Pagamento de {amount} confirmado! Muito obrigado pela compra, {name}. Qualquer dúvida, é só chamar."
)


def get_interpreter() -> Interpreter:
    if settings.SARA_INTERPRETER == "openai":
        from sara.llm.openai_client import OpenAIInterpreter

        return OpenAIInterpreter()
    return rules.RuleBasedInterpreter()


def interpret(context: Context, interpreter: Interpreter | None = None) -> Interpretation:
    """The AI's reading. When the AI gives none (timeout, error, refusal, a content filter, an
    answer cut off or outside the schema), the rule-based reading answers in the same turn: the
    customer gets a real answer (shipping, PIX, a wish to leave or to talk to a person), never
    a holding sentence that nothing follows. No tokens are counted for it."""
    interpretation = (interpreter or get_interpreter()).interpret(context)
    if not interpretation.fallback:
        return interpretation
    reading = rules.RuleBasedInterpreter().interpret(context)
    return Interpretation(
        intent=reading.intent,
        sentiment=reading.sentiment,
        reply=reading.reply,
        fallback=True,
        ai_error=interpretation.ai_error,
    )


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


@dataclass(frozen=True)
class Judgement:
    """How hard a reply may sell (SPEC §5, judgement), decided in code whatever the interpreter."""

    # The discount may be offered and the reply may invite the customer to buy.
    push: bool = True
    # The payment link goes with the reply.
    links: bool = True
    # The reply says how to stop receiving messages.
    offer_stop: bool = False


COMPLAINT_REPLY = f"Desculpe o incômodo. {rules.STOP_OFFER}"
# How far back a complaint still colours an unclear message ("que chato isso" ... "hm").
COMPLAINT_MEMORY = 4


def judge(context: Context, interpretation: Interpretation) -> Judgement:
    """Unsure or annoyed: no push. A complaint about the messages: no link, and the way to stop."""
    if interpretation.offer_stop or rules.complains_about_contact(context.text):
        return Judgement(push=False, links=False, offer_stop=True)
    annoyed = interpretation.sentiment == "negative" and interpretation.intent != "price_question"
    recent = [turn.text for turn in context.history[-COMPLAINT_MEMORY:] if turn.role == "customer"]
    after_complaint = interpretation.intent == "unclear" and any(map(rules.complains_about_contact, recent))
    if annoyed or after_complaint:
        return Judgement(push=False)
    return Judgement()


def should_offer_discount(
    cart: CartFigures, interpretation: Interpretation, judgement: Judgement | None = None
) -> bool:
    """The discount rule (SPEC §5), in code so the model can never hand out discounts.

    Offered once; again only when the customer asks about the price again, never to someone
    annoyed or unsure (a discount pushed at an annoyed customer reads as pressure).
    """
    if not cart.discount_available or (judgement is not None and not judgement.push):
        return False
    if cart.offers_so_far >= settings.SARA_MAX_DISCOUNT_OFFERS:
        return False
    asks_price = interpretation.intent == "price_question"
    if cart.offers_so_far and not asks_price:
        return False
    return cart.value > settings.SARA_DISCOUNT_VALUE_THRESHOLD or asks_price


def guarded_reply(
    context: Context, interpretation: Interpretation, *, offer_discount: bool
) -> guardrails.Guarded:
    """The interpreter's words with every sentence the shop did not authorise dropped.

    Should nothing worth sending remain, a safe reply written from the shop's knowledge by the
    rules stands in. Each rule broken is counted, so a model that drifts shows on /metrics.
    """
    allowance = guardrails.allowance_for(context, offer_discount=offer_discount)
    guarded = guardrails.guard(interpretation.reply, allowance)
    if not guarded.violations:
        return guarded
    for violation in guarded.violations:
        metrics.GUARDRAIL_HITS.labels(violation).inc()
    if guarded.text:
        return guarded
    return guardrails.Guarded(
        text=safe_reply(context, allowance),
        violations=guarded.violations,
        dropped=guarded.dropped,
        replaced=True,
    )


def safe_reply(context: Context, allowance: guardrails.Allowance) -> str:
    """What the rules answer from the shop's knowledge, itself checked; a plain offer to help else."""
    reading = rules.RuleBasedInterpreter().interpret(context)
    if reading.intent not in ("opt_out", "human") and reading.reply:
        checked = guardrails.guard(reading.reply, allowance)
        if checked.text and not checked.violations:
            return checked.text
    product = f" de {context.product_name}" if context.product_name else ""
    return f"Posso te ajudar a finalizar a compra{product}? O link está logo abaixo."


def compose_reply(
    text: str, *, cart: CartFigures, offer_discount: bool, judgement: Judgement | None = None
) -> str:
    """The interpreter's words, then the payment link, then the discount link when offered.

    A complaint about the messages gets an apology and the way to stop, and no link at all.
    """
    judgement = judgement or Judgement()
    if not judgement.links:
        return COMPLAINT_REPLY if judgement.offer_stop else text.strip()
    body = text.strip()
    if cart.discount_link:
        # The model sees earlier offers in the history and may copy the link; only the rule hands it out.
        body = body.replace(cart.discount_link, "").strip()
    if judgement.offer_stop and rules.STOP_OFFER not in body:
        body = f"{body}\n\n{rules.STOP_OFFER}".strip()
    links = f"\n\nFinalize sua compra aqui: {cart.payment_link}"
    if offer_discount and cart.discount_percent is not None and cart.discounted_value is not None:
        links += (
            f"\n\nOu com {percent(cart.discount_percent)}% de desconto "
            f"({brl(cart.discounted_value)}): {cart.discount_link}"
        )
    room = WHATSAPP_TEXT_LIMIT - len(links)
    if len(body) > room:
        body = body[: room - 1].rstrip() + "…"
    return body + links


def thank_you_text(name: str, amount: Decimal | None = None) -> str:
    first = (name or "").split(" ")[0] or "cliente"
    if amount is not None:
        return THANK_YOU_WITH_AMOUNT.format(name=first, amount=brl(amount))
    return THANK_YOU.format(name=first)
