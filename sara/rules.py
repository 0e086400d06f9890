"""The rule-based interpreter: word patterns and short Portuguese answers from the shop's knowledge.

It runs without credentials (no OPENAI_API_KEY) and decides a weak opt-out match whenever the
AI cannot. Patterns read the lower-cased, accent-folded text, punctuation dropped.
"""

from __future__ import annotations

import re

from core.text import fold
from sara.interpretation import Context, Interpretation, Interpreter
from sara.knowledge import ShopKnowledge
from sara.money import brl

HANDOFF_NOTE = (
    "Vou chamar uma pessoa da nossa equipe para continuar o seu atendimento. Ela responde em breve!"
)


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


# Someone asking for a person: a human, an attendant, a phone call.
PERSON = _any(
    r"\b(falar|fala|falo|conversar|converso|chamar|chama|passa|passar|transfere|transferir|quero|queria|"
    r"preciso|tem|tem como|cade|chama ai)\b(\s+\w+){0,4}\s+\b(pessoa|pessoas|humano|humana|atendente|"
    r"atendentes|alguem|vendedor|vendedora|consultor|consultora|gerente|responsavel|funcionario|"
    r"funcionaria|gente de verdade|dono|dona|suporte)\b",
    r"\b(atendente|atendimento humano|pessoa de verdade|pessoa real|ser humano|falar com humano)\b",
    r"\b(falar|conversar|fala|falo|converso) com (o |a )?(atendimento|suporte|sac|equipe|loja)\b",
    r"\b(me liga|me ligar|me ligue|pode ligar|ligacao|telefonar|telefona)\b",
    r"\bnao quero falar com (robo|bot|maquina|ia)\b",
)

# A request to stop being contacted, written without (or around) an opt-out keyword.
IMPLICIT_OPTOUT = _any(
    r"\bnao (precisa|precisam|precisa mais|precisam mais) (mais )?(me )?(escrever|mandar|chamar|"
    r"enviar|contatar|procurar|ligar|insistir|mandar mensagem)",
    r"\bnao (quero|desejo|gostaria de|aceito) (mais )?(ser )?(contatad|contactad|receber|mensage|"
    r"ser incomodad|que me (escrevam|chamem|mandem|procurem|liguem))",
    r"\b(para|pare|parem|parar|pararem|pode parar|podem parar|favor parar|por favor parar|chega|deixa|"
    r"deixe|deixem|deixar|deixarem) "
    r"de (me )?(mandar|enviar|escrever|chamar|encher|mandando|enviando|incomodar|perturbar|insistir|"
    r"ligar|procurar)",
    r"\b(some|sumam|suma|esquece|esquecam|esqueca|apaga|apaguem|apague|apagar|tira|tirem|tire|tirar|"
    r"remove|removam|remova|remover|deleta|deletem|deletar|exclui|excluam|exclua|excluir) (com )?(o )?"
    r"(meu|esse|este) (numero|contato|telefone|"
    r"cadastro|zap|whats|whatsapp)",
    r"\b(esquece|esquecam|esqueca) (de )?mim\b",
    r"\bme (deixa|deixe|deixem) em paz\b",
    r"\b(nao|nunca mais) me (mande|mandem|manda|chame|chamem|chama|procure|procurem|perturbe|perturbem|incomode|"
    r"incomodem|escreva|escrevam|liguem|ligue|contate|contatem|encham|enche)\b",
    r"\b(me )?(tira|tirem|tire|remove|removam|remova|exclui|excluam|exclua) (da|dessa|desta|de sua|"
    r"da sua) (lista|base|cadastro)",
    r"\b(numero errado|nao sou (eu|essa pessoa|esse cliente|essa cliente|cliente de voces)|engano|"
    r"nao fiz (nenhuma |essa )?compra|nao conheco (essa|esta|a) loja|nunca comprei)\b",
    r"\b(isso e spam|e spam|vou (te |lhes? )?bloquear|vou denunciar|bloquear (esse|este|o) numero)\b",
    r"\b(descadastr|desinscrev|cancelar (as |essas |minha )?(mensage|inscricao|assinatura das)|"
    r"sair (da|dessa) lista|nao receber mais)",
    r"\bchega (de|dessa|dessas|desse|desses|com essa|com essas) (mensage|msg|mandar|me mandar|propaganda|spam)",
    r"\b(como (eu )?(faco|faz) pra|quero) (parar de receber|nao receber|sair da lista|ser removid)",
    r"\bnao (me )?(contatar|contatem|contate|contactar|procurar|incomodar|enviar mais|mandar mais|"
    r"escrever mais|ligar mais)\b",
    r"\bnao (tenho interesse|autorizo|permito|aceito|quero) (em )?(receber|o uso|uso|contato|ser contatad|"
    r"essas mensage|mensage)",
    r"\bparem\b(?!\s+de\s+(cobrar|vender))",
)

# A short message that is only a request to stop, in the verb forms people type ("PARE", "parem").
SHORT_STOP = re.compile(
    r"(pare|parem|para|para com isso|cancela|cancele|cancelem|remove|remova|removam|sai|"
    r"saia|saiam|tira|tire|tirem|exclui|exclua|excluam|descadastra|descadastre)"
    r"( (por favor|pfv|pf|pls|agora|ja|ai|obrigado|obrigada|valeu|mais|com isso))*"
)

# Words about messages and contact: an opt-out keyword next to one is a request to stop.
CONTACT_WORDS = re.compile(
    r"\b(mensagens?|msgs?|contato|contatos|numero|whatsapp|whats|zap|lista|propaganda|notificac\w*|"
    r"me|mim|receber|escrever|chamar|voces|vcs|isso aqui|dessa conversa|dessa loja)\b"
)
# Words about the purchase: an opt-out keyword among them is about the cart, not the contact.
PURCHASE_WORDS = re.compile(
    r"\b(pagar|paguei|pago|pagamento|pix|boleto|cartao|credito|debito|compra|comprar|compro|pedido|"
    r"carrinho|item|itens|produto|produtos|frete|entrega|link|cupom|desconto|tamanho|cor|modelo|"
    r"unidade|unidades|quantidade|parcela|parcelas|parcelamento|checkout|banco|app do banco|troco|"
    r"endereco|cep|assinatura|plano|garantia|capinha|expresso|embalagem|presente|estoque|"
    r"finalizar|fechar|levar|lojinha|site|mercado pago|conta)\b"
)
STOP_KEYWORDS = re.compile(
    r"\b(parar|remover|cancelar|sair|stop|nao quero|me tire|excluir|desinscrever|unsubscribe)\b"
)

TOPICS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "installments",
        re.compile(r"\b(parcel\w*|vezes|\d{1,2} ?x|juros|sem juros|dividir|divide|dividido)\b"),
    ),
    (
        "payment",
        re.compile(
            r"\b(pix|boleto|cartao|cartoes|credito|debito|forma de pagamento|formas de pagamento|"
            r"pagamento|paypal|mercado pago|picpay|transferencia|deposito|a vista|"
            r"(como|onde|posso|da pra|consigo|tem como|forma de|formas de|jeito de) pagar)\b"
        ),
    ),
    (
        "shipping",
        re.compile(
            r"\b(frete|entrega|entregam|entregar|entregue|prazo|demora|demorar|"
            r"(quando|quantos dias|que dia|ja|pra|para|vai|demora pra|demora para) cheg\w*|"
            r"cheg\w* (em|ate|no|na|aqui|rapido|antes|a tempo)|"
            r"envio|enviam|enviar|envia|correios|sedex|transportadora|cep|rastreio|rastrear|"
            r"mandam pra|manda pra|retirar|retirada|quanto tempo)\b"
        ),
    ),
    (
        "returns",
        re.compile(
            r"\b(troca|trocar|troco o|devolu\w*|devolver|devolvo|arrepend\w*|reembolso|estorno|"
            r"desistir|nao servir|nao gostar|nao servi)\b"
        ),
    ),
    ("hours", re.compile(r"\b(horario|que horas|atendem|funcionam|aberto|abre|fecha|sabado|domingo)\b")),
)
SHIPPING_COST = re.compile(r"\b(quanto|valor|preco|gratis|caro|custa|custo|cobra|cobram|taxa|pago)\b")
PRICE = re.compile(
    r"\b(preco|precos|valor|caro|cara|carissimo|quanto|custa|custo|descont\w*|promoc\w*|"
    r"cupom|mais barato|barato|baratinho|sai por|abaixa|abaixar|melhorar o preco|faz por)\b"
)
OBJECTION = re.compile(
    r"\b(nao|chega|depois|talvez|pensar|vou ver|vou pensar|mais tarde|sem dinheiro|sem grana|"
    r"desisti|desistir|mudei de ideia|nao tenho interesse|outra hora|semana que vem|mes que vem|"
    r"desanimei|salario|nao posso|fica pra (proxima|depois|outra)|proxima vez)\b"
)
CONFIRMATION = re.compile(
    r"\b(sim|ok|okay|vou|quero|claro|beleza|blz|pode|fechado|combinado|bora|vamos|manda|vou pagar|"
    r"vou comprar|ja vou|agora|certo|isso|perfeito|show|top|fechou|finalizar|paguei|ja paguei)\b"
)
GREETING = re.compile(
    r"((oi|ola|opa|alo|e ai|eai|bom dia|boa tarde|boa noite|tudo bem|tudo bom|td bem|como vai|"
    r"quem e|quem fala|quem ta falando)\s*)+"
)
# "Sim?", "ok?": agreement written with a question mark.
CONFIRMATION_ONLY = re.compile(r"(sim|ok|pode ser|pode|certo|isso|claro)( \w+)?")
NEGATIVE = re.compile(
    r"\b(caro|cara|carissimo|ruim|pessimo|absurdo|chega|nao gostei|irritad\w*|chato|chata|"
    r"insistente|enche|encher|spam|ridiculo|palhacada|raiva|odeio|porcaria|lixo|decepcion\w*)\b"
)
POSITIVE = re.compile(
    r"\b(obrigad\w*|otimo|otima|legal|perfeito|sim|beleza|gostei|adorei|amei|show|top|maravilh\w*|"
    r"massa|valeu|bacana)\b"
)
_STOPWORDS = frozenset(
    [
        "a",
        "o",
        "as",
        "os",
        "de",
        "da",
        "do",
        "das",
        "dos",
        "e",
        "em",
        "um",
        "uma",
        "que",
        "pra",
        "para",
        "por",
        "com",
        "se",
        "me",
        "eu",
        "voce",
        "voces",
        "vcs",
        "tem",
        "ter",
        "qual",
        "quais",
        "como",
        "isso",
        "esse",
        "essa",
        "este",
        "esta",
        "ele",
        "ela",
        "ja",
        "mais",
        "muito",
        "nao",
        "sim",
        "ou",
        "no",
        "na",
        "nos",
        "nas",
        "ao",
        "sao",
        "ser",
        "foi",
        "vai",
        "vem",
        "dar",
        "da",
        "tambem",
        "so",
        "quanto",
        "quando",
        "onde",
        "porque",
        "pq",
    ]
)


def wants_person(folded: str) -> bool:
    return bool(PERSON.search(folded))


def is_optout(context: Context) -> bool:
    """A request to stop being contacted; a keyword about the purchase is not one.

    When a keyword stands in a sentence that is about neither the contact nor the purchase,
    the person's wish to leave wins over a sale (SPEC §5 step 3).
    """
    folded = fold(context.text)
    if IMPLICIT_OPTOUT.search(folded) or SHORT_STOP.fullmatch(folded):
        return True
    if not context.weak_optout:
        # Keywords are the shop's to switch off: only an active one, matched upstream, counts.
        return False
    for match in STOP_KEYWORDS.finditer(folded):
        after = " ".join(folded[match.end() :].split()[:4])
        if CONTACT_WORDS.search(after) and not PURCHASE_WORDS.search(after):
            return True
    about_the_purchase = (
        PURCHASE_WORDS.search(folded)
        or topics_of(folded)
        or PRICE.search(folded)
        or _names_the_product(folded, context)
    )
    # A question that names no contact is a question about the order ("tem como sair a nota?").
    return not about_the_purchase and "?" not in context.text


def _names_the_product(folded: str, context: Context) -> bool:
    words = {w for w in fold(context.product_name).split() if len(w) > 3 and w not in _STOPWORDS}
    return bool(words & set(folded.split()))


def topics_of(folded: str) -> list[str]:
    return [name for name, pattern in TOPICS if pattern.search(folded)]


class RuleBasedInterpreter(Interpreter):
    def interpret(self, context: Context) -> Interpretation:
        folded = fold(context.text)
        sentiment = _sentiment(folded)
        if wants_person(folded):
            return Interpretation(intent="human", sentiment=sentiment, reply=HANDOFF_NOTE)
        if is_optout(context):
            return Interpretation(intent="opt_out", sentiment=sentiment, reply="")
        topics = topics_of(folded)
        if topics:
            intent = _topic_intent(topics, folded)
            reply = _topic_reply(topics, context)
        elif PRICE.search(folded):
            intent = "price_question"
            reply = _price_reply(context)
        elif (
            "?" in context.text
            and folded
            and not (CONFIRMATION_ONLY.fullmatch(folded) or GREETING.fullmatch(folded))
        ):
            # A question is answered, even when it holds a "não" or a "depois".
            intent = "question"
            reply = _product_reply(folded, context)
        elif OBJECTION.search(folded):
            intent = "objection"
            reply = (
                f"Sem problemas, entendo. Se mudar de ideia, {_cart(context)} continua esperando por você."
            )
        elif CONFIRMATION.search(folded):
            intent = "confirmation"
            reply = "Que ótimo! É só finalizar pelo link abaixo."
        else:
            intent = "unclear"
            reply = f"Estou aqui para ajudar com {_purchase(context)}. Quer finalizar agora?"
        return Interpretation(intent=intent, sentiment=sentiment, reply=reply)


def _sentiment(folded: str) -> str:
    if NEGATIVE.search(folded):
        return "negative"
    if POSITIVE.search(folded):
        return "positive"
    return "neutral"


def _cart(context: Context) -> str:
    return f"seu carrinho de {context.product_name}" if context.product_name else "seu carrinho"


def _purchase(context: Context) -> str:
    return f"sua compra de {context.product_name}" if context.product_name else "sua compra"


def _topic_intent(topics: list[str], folded: str) -> str:
    if "installments" in topics or "payment" in topics:
        return "price_question"
    if "shipping" in topics and SHIPPING_COST.search(folded):
        return "price_question"
    return "question"


TOPIC_LABELS = {
    "shipping": ("shipping", "Sobre o frete e a entrega"),
    "payment": ("payment_methods", "Formas de pagamento"),
    "installments": ("installments", "Parcelamento"),
    "returns": ("returns", "Trocas e devoluções"),
    "hours": ("support_hours", "Nosso atendimento"),
}


def _topic_reply(topics: list[str], context: Context) -> str:
    knowledge: ShopKnowledge = context.knowledge
    parts = []
    for topic in topics[:2]:
        field, label = TOPIC_LABELS[topic]
        text = getattr(knowledge, field).strip()
        if text:
            parts.append(f"{label}: {text}")
    if not parts:
        return (
            "Essa informação eu não tenho aqui, mas nossa equipe confirma para você. "
            f"Posso ajudar com mais alguma coisa sobre {_purchase(context)}?"
        )
    return "\n".join(parts) + "\n\nPosso ajudar a finalizar?"


def _price_reply(context: Context) -> str:
    return f"Entendo! O valor do {_cart(context)} é {brl(context.value)}. Posso ajudar a finalizar?"


def _product_reply(folded: str, context: Context) -> str:
    answer = faq_answer(folded, context.knowledge.product_faq)
    if answer:
        return answer
    if context.product_description:
        return (
            f"Boa pergunta! Sobre {context.product_name or 'o produto'}: {context.product_description[:500]}"
        )
    return f"Boa pergunta! Posso te ajudar a finalizar {_purchase(context)}."


def faq_answer(folded: str, faq: str) -> str:
    """The FAQ entry sharing the most meaningful words with the question, if any shares one."""
    words = {w for w in folded.split() if len(w) > 3 and w not in _STOPWORDS}
    best, best_score = "", 0
    for entry in _faq_entries(faq):
        score = len(words & set(fold(entry).split()))
        if score > best_score:
            best, best_score = entry, score
    if not best:
        return ""
    # "P: Tem garantia? R: Sim, 1 ano." → the answer part, when the shop wrote it that way.
    answer = re.split(r"(?:^|\s)R:\s*", best, maxsplit=1)
    return (answer[1] if len(answer) == 2 else best).strip()


def _faq_entries(faq: str) -> list[str]:
    blocks = [b.strip() for b in re.split(r"\n\s*\n", faq) if b.strip()]
    if len(blocks) <= 1:
        blocks = []
        for line in (raw.strip() for raw in faq.splitlines()):
            if line and blocks and re.match(r"R:", line):
                blocks[-1] += " " + line  # an answer on the line below its question
            elif line:
                blocks.append(line)
    return [" ".join(b.split()) for b in blocks]
