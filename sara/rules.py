"""The rule-based interpreter: keyword lists and short Portuguese answers, no credentials."""

from __future__ import annotations

from core.text import fold
from sara.interpretation import Context, Interpretation, Interpreter

PRICE_WORDS = ("preco", "valor", "caro", "cara", "pagamento", "desconto", "parcel", "frete", "quanto")
OBJECTION_WORDS = ("nao", "chega", "depois", "talvez")
CONFIRMATION_WORDS = ("sim", "ok", "vou", "quero", "claro", "beleza", "pode")
NEGATIVE_WORDS = ("caro", "ruim", "pessimo", "absurdo", "chega", "nao gostei", "irritado")
POSITIVE_WORDS = ("obrigad", "otimo", "legal", "perfeito", "sim", "beleza", "gostei")
# Words about finishing the purchase: a keyword among them is not a wish to leave.
PURCHASE_WORDS = ("pagar", "pix", "boleto", "cartao", "comprar", "compra", "link", "frete", "pagamento")

REPLIES = {
    "price_question": "Entendo! O valor do seu carrinho de {product} é R$ {value}. Posso ajudar a finalizar?",
    "objection": "Sem problemas, entendo. Se mudar de ideia, seu carrinho de {product} continua esperando por você.",
    "confirmation": "Que ótimo! É só finalizar pelo link abaixo.",
    "question": "Boa pergunta! Sobre {product}: {description}",
    "unclear": "Estou aqui para ajudar com sua compra de {product}. Quer finalizar agora?",
}


def _has(folded: str, words: tuple[str, ...]) -> bool:
    tokens = folded.split()
    return any(
        (" " in w and w in folded) or any(t.startswith(w) if len(w) > 4 else t == w for t in tokens)
        for w in words
    )


def is_optout(context: Context) -> bool:
    """A weak keyword match without the AI: when unsure, the person's wish to leave wins."""
    return not _has(fold(context.text), PURCHASE_WORDS)


class RuleBasedInterpreter(Interpreter):
    def interpret(self, context: Context) -> Interpretation:
        folded = fold(context.text)
        if context.weak_optout and is_optout(context):
            intent = "opt_out"
        elif _has(folded, PRICE_WORDS):
            intent = "price_question"
        elif _has(folded, OBJECTION_WORDS):
            intent = "objection"
        elif _has(folded, CONFIRMATION_WORDS):
            intent = "confirmation"
        elif "?" in context.text:
            intent = "question"
        else:
            intent = "unclear"
        if _has(folded, NEGATIVE_WORDS):
            sentiment = "negative"
        elif _has(folded, POSITIVE_WORDS):
            sentiment = "positive"
        else:
            sentiment = "neutral"
        template = REPLIES.get(intent, REPLIES["unclear"])
        if intent == "question" and not context.product_description:
            template = "Boa pergunta! Posso te ajudar a finalizar a compra de {product}."
        reply = template.format(
            product=context.product_name or "seu pedido",
            value=f"{context.value:.2f}".replace(".", ","),
            description=context.product_description[:500],
        )
        return Interpretation(intent=intent, sentiment=sentiment, reply=reply)
