"""The rule-based interpreter: weighed word cues and short Portuguese answers from the shop's knowledge.

It runs without credentials (no OPENAI_API_KEY) and decides a weak opt-out match whenever the
AI cannot. Every rule reads the text as `sara.writing.normalise` spells it (lower case, no
accents or punctuation, "n"/"vc"/"msg"/"zap" spelled out, stretched letters squeezed), so a
cue is written once. No single keyword decides: each cue adds weight to a reading, and the
heaviest reading wins, so "não quero o azul" (a purchase object refused) never weighs as much
as "não me manda mais nada" (the contact refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.text import fold
from sara.interpretation import Context, Interpretation, Interpreter
from sara.knowledge import ShopKnowledge
from sara.money import brl
from sara.writing import normalise

HANDOFF_NOTE = (
    "Vou chamar uma pessoa da nossa equipe para continuar o seu atendimento. Ela responde em breve!"
)
STOP_OFFER = "Se preferir não receber mais mensagens, é só responder PARAR."


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


Cues = tuple[tuple[re.Pattern[str], float], ...]


def _weigh(text: str, cues: Cues) -> float:
    return sum(weight for pattern, weight in cues if pattern.search(text))


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

# What contact is: the messages, the number, the app. A stop-family verb aimed at one of these
# is a request to be left alone; aimed at anything else it is about the purchase.
_CONTACT = (
    r"(mandar|manda|mandando|mandarem|enviar|envia|enviando|escrever|escrevendo|chamar|chamando|"
    r"encher|enchendo|incomodar|incomodando|perturbar|perturbando|insistir|insistindo|ligar|ligando|"
    r"procurar|lembrar|lembrando|importunar|receber|mensagem|mensagens|propaganda|propagandas|spam|"
    r"notificac\w*|promoc\w*|contato|contatar|me \w+)"
)
_CONTACT_OBJECT = r"(numero|contato|telefone|celular|nome|cadastro|lista|whatsapp|base|dados)"
_STOP_VERB = (
    r"(para|pare|parem|parar|pararem|paro|chega|deixa|deixe|deixem|deixar|cansei|cansado|cansada|"
    r"pode parar|podem parar|favor parar)"
)
_REMOVE_VERB = (
    r"(tira|tire|tirem|tirar|apaga|apague|apaguem|apagar|remove|remova|removam|remover|exclui|exclua|"
    r"excluam|excluir|deleta|delete|deletem|deletar|bloqueia|bloqueie|bloquear|esquece|esqueca|"
    r"esquecam|some|suma|sumam|descadastra|descadastre|descadastrar)"
)

# Cues of a wish to stop being contacted: 3 decides alone, lighter ones must add up.
OPTOUT_CUES: Cues = (
    # "para de me mandar", "chega de mensagem", "para com essas mensagens", "cansei de receber"
    (re.compile(rf"\b{_STOP_VERB} (de |com )?(ficar )?(me |nos )?(essas? |esses? |isso )?{_CONTACT}\b"), 3),
    # "não me manda mais", "nao me perturba", "não me chamem", "não entrem mais em contato"
    (
        re.compile(
            r"\b(nao|nunca mais) (me|nos) (manda|mande|mandem|mandar|mandarem|envia|envie|enviem|chama|chame|"
            r"chamem|procura|procure|procurem|perturba|perturbe|perturbem|incomoda|incomode|incomodem|enche|"
            r"encham|escreve|escreva|escrevam|liga|ligue|liguem|contata|contate|contatem|importuna|"
            r"importune|lembra|lembre|lembrem|adiciona)\b"
            r"|\bnao (entre|entrem|entrar) (mais )?em contato\b|\bnao (me )?(contatar|contatem|contate)\b"
        ),
        3,
    ),
    # "não quero receber", "não autorizo vocês", "não quero mais contato", "não quero ser incomodada"
    (
        re.compile(
            r"\bnao (quero|queremos|desejo|gosto de|aceito|autorizo|autorizei|permito|pedi pra|pedi para|tenho interesse em|"
            r"dei permissao pra|quero mais) (mais |nenhum |nenhuma )?(ser |que )?(receber|mensage\w*|contat\w*|"
            r"incomodad\w*|importunad\w*|lembrad\w*|perturbad\w*|procurad\w*|voces|voce|ninguem a me|"
            r"propaganda\w*|promoc\w*|notificac\w*|me (mand|chame|chamem|procur|escrev|lig|envi)\w*)"
        ),
        3,
    ),
    # "não precisa mais me escrever", "n precisa mandar mais nada"
    (
        re.compile(
            r"\bnao (precisa|precisam) (mais )?(me |nos )?(mais )?(escrever|mandar|chamar|enviar|contatar|"
            r"procurar|ligar|insistir|lembrar)"
        ),
        3,
    ),
    # "apaga meu número", "tira meu nome daí", "me tira dessa lista", "bloqueia meu contato"
    (re.compile(rf"\b{_REMOVE_VERB} (\w+ ){{0,2}}{_CONTACT_OBJECT}\b"), 3),
    (
        re.compile(
            r"\bme (tira|tire|tirem|remove|remova|removam|exclui|exclua|excluam|descadastra|descadastre|"
            r"descadastrar|bloqueia|apaga|deleta)( (da|dessa|desta|do|desse|deste|daqui|dai|ai|agora|ja|"
            r"por favor|dessas|desses)\b|$)"
        ),
        3,
    ),
    # Being left alone: "me deixa em paz", "me deixa quieto", "me esquece", "desiste de mim"
    (
        re.compile(
            r"\bme (deixa|deixe|deixem|deixar) (em paz|quiet\w*|sossegad\w*|em sossego)|\bme (deixa|deixem)$"
            r"|\bme (esquece|esqueca|esquecam|esquecer)\b|\b(esquece|esqueca|esquecam|desiste|desistam) de mim\b"
            r"|\b(some|suma|sumam) (daqui|da minha vida|do meu \w+)"
        ),
        3,
    ),
    # The wrong person: they owe the shop nothing and must hear nothing more.
    (
        re.compile(
            r"\b(numero errado|pessoa errada|engano|nao sou (eu|essa pessoa|esse cliente|essa cliente|a \w+|o \w+)\b|"
            r"nao e (de quem|da pessoa|meu|o meu|minha)|nunca dei (o )?meu (numero|contato|telefone)|"
            r"(como|onde) (voces )?(conseguiram|pegaram|arrumaram|acharam) (o )?meu (numero|contato|telefone)|"
            r"(nao|nem) conheco (essa|esta|a|sua|ninguem|voces)|nao fiz (nenhuma|essa|compra)|"
            r"nunca comprei (nada )?(de voces|com voces|nessa loja|nesta loja|ai|aqui|nada))"
        ),
        3,
    ),
    (
        re.compile(
            r"\b(quero|queria|gostaria de|preciso) ser (removid|excluid|descadastrad|tirad|apagad)\w*"
            r"|\bnao (autorizo|autorizei|permito) (o )?uso\b"
            r"|\b(direito|permissao|autorizacao) (de|pra|para) me (mand|envi|cham|escrev|contat)\w*"
            # "parem" speaks to the shop: it is "stop writing" unless it names what to stop.
            r"|\bparem\b(?! de (cobrar|vender|\w+ o (preco|frete)))"
        ),
        3,
    ),
    (re.compile(r"\b(e spam|isso e spam|denunciar|denuncia|denunciado|reportar)\b"), 3),
    (re.compile(r"\b(vou|vou te|vou lhe|vou voces|vou ter que|ja) (bloquear|bloqueei)\b|^bloquead[oa]\b"), 3),
    (re.compile(r"\b(descadastr\w*|desinscrev\w*|sair (da|dessa|desta) lista|nao receber mais)\b"), 3),
    # Being fed up weighs 2.5, annoyance 2, a refusal 1.5, "I said so already" 1, the messages
    # named 0.5: "de saco cheio dessas mensagens" is a wish to stop, "que chato, todo dia
    # mensagem" a complaint (answered with the way to stop), and "já falei mil vezes que não
    # quero nada, que coisa chata" adds up to a wish to stop.
    (
        re.compile(
            r"\b(saco cheio|cansei|cansada|cansado|nao aguento|insuportavel|que inferno|inferno|pelo amor de deus)\b"
        ),
        2.5,
    ),
    (re.compile(r"\b(que saco|chato|chata|chatice|cansativo|irritante|que raiva|que coisa)\b"), 2),
    (re.compile(r"\b(todo dia|toda hora|todo santo dia|toda semana|mensage\w*|propaganda\w*)\b"), 0.5),
    (re.compile(r"\bnao (quero|vou comprar|tenho interesse|compro)\b"), 1.5),
    (re.compile(r"\bja (falei|disse|pedi|avisei|respondi)|mil vezes|de novo\b"), 1),
)
OPTOUT_THRESHOLD = 3.0

# A request to stop typed alone ("PARE", "para com isso", "cancela pfv").
SHORT_STOP = re.compile(
    r"(pare|parem|para|parar|para com isso|pode parar|cancela|cancele|cancelem|remove|remova|removam|"
    r"sai|saia|saiam|tira|tire|tirem|exclui|exclua|excluam|descadastra|descadastre|bloqueia|chega disso)"
    r"( (por favor|agora|ja|ai|obrigado|obrigada|valeu|mais|com isso|de uma vez|pelo amor de deus))*"
)

# "Chega!", "basta": enough of what? Maybe the messages, maybe the haggling.
UNAIMED_STOP = re.compile(r"(ja )?(chega|basta)( ne| disso| por hoje)?")

# The purchase: a refused item, a payment step, a size, a colour. A stop-family word aimed at
# one of these is about the cart, and weighs against an opt-out.
PURCHASE_WORDS = re.compile(
    r"\b(pagar|paguei|pago|pagamento|pix|boleto|cartao|credito|debito|compra|comprar|compro|pedido|"
    r"carrinho|item|itens|produto|produtos|frete|entrega|link|cupom|desconto|tamanho|cor|modelo|"
    r"unidade|unidades|quantidade|parcela|parcelas|parcelamento|checkout|banco|app do banco|troco|"
    r"endereco|cep|assinatura|plano|garantia|capinha|expresso|embalagem|presente|estoque|"
    r"finalizar|fechar|levar|lojinha|site|mercado pago|conta|seguro|caixa|entregador|correio|correios)\b"
)
PURCHASE_CUES: Cues = (
    # "não quero o azul", "n quero o tamanho M", "não quero a embalagem", "não quero parcelar"
    (
        re.compile(
            r"\bnao (quero|vou querer|preciso) (o|a|os|as|esse|essa|esses|essas|este|esta|um|uma|do|da) "
            r"(?!(sua|seu|suas|seus|essas|esses)? ?(mensage|contato|propaganda|numero|whatsapp|loja))"
            r"|\bnao (quero|vou) (parcelar|pagar|esperar|perder|juros|dividir|trocar|o frete|frete)"
        ),
        2,
    ),
    (PURCHASE_WORDS, 1),
    # "cancelar só a capinha", "remover o frete expresso", "sair do app do banco"
    (re.compile(r"\b(cancelar|cancela|remover|remove|tirar|tira|excluir|exclui) (so |um |o |a |uma )"), 1),
)
STOP_KEYWORDS = re.compile(
    r"\b(parar|remover|cancelar|sair|stop|nao quero|me tire|excluir|desinscrever|unsubscribe)\b"
)
# Words after a keyword that aim it at the contact ("sair da lista", "cancelar as mensagens").
CONTACT_WORDS = re.compile(
    r"\b(mensagens?|contato|contatos|numero|whatsapp|lista|propaganda|notificac\w*|me|mim|receber|"
    r"escrever|chamar|voces|isso aqui|dessa conversa|dessa loja|nada)\b"
)

TOPICS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "installments",
        # "vezes" only with a count: "às vezes", "mil vezes" are no installments.
        re.compile(
            r"\b(parcel\w*|juros|dividir|divide|dividido|divido|\d{1,2} ?x|(em|quantas|quantos|ate) \d{0,2} ?x\b|"
            r"(em|quantas|\d{1,2}|duas|tres|quatro|cinco|seis|dez|doze) vezes)\b"
        ),
    ),
    (
        "payment",
        re.compile(
            r"\b(pix|boleto|cartao|cartoes|credito|debito|forma de pagamento|formas de pagamento|"
            r"pagamento|paypal|mercado pago|picpay|transferencia|deposito|a vista|pago (na|no|com|em)|"
            r"(como|onde|posso|da pra|consigo|tem como|forma de|formas de|jeito de) pagar)\b"
        ),
    ),
    (
        "shipping",
        re.compile(
            r"\b(frete|entrega|entregam|entregar|entregue|prazo de entrega|prazo|"
            r"(quando|quantos dias|que dia|pra|para|vai|demora pra|demora para|demora a) cheg\w*|"
            r"cheg\w* (em|ate|no|na|aqui|rapido|antes|a tempo|essa|esta|hoje|amanha|semana)|"
            r"(demora|demoram|leva|levam) (muito|quanto|quantos)|^demora|demora\b.*cheg|"
            r"envio|enviam|envia pra|envia para|envia p|envia pelos|correios|sedex|transportadora|cep|rastreio|"
            r"rastrear|codigo de rastreio|mandam pra|manda pra|mandam pelos|retirar|retirada|"
            r"quanto tempo (demora|leva|pra chegar|para chegar|de entrega|chega))\b"
        ),
    ),
    (
        "returns",
        re.compile(
            r"\b(troca|trocar|troco o|devolu\w*|devolver|devolvo|arrepend\w*|reembolso|estorno|"
            r"nao servir|nao gostar|nao servi|nao gostei|vier (errado|com defeito|quebrado|diferente)|defeito)\b"
        ),
    ),
    ("hours", re.compile(r"\b(horario|que horas|atendem|funcionam|aberto|abre|sabado|domingo)\b")),
)
SHIPPING_COST = re.compile(
    r"\b(quanto(?! tempo)|valor|preco|gratis|caro|barato|reais|custa|custo|cobra|cobram|taxa|pagar (o |esse |de |pelo )?frete)\b"
)

PRICE_CUES: Cues = (
    (
        re.compile(
            r"\b(preco|precos|precinho|valor|valores|caro|carissimo|puxado|salgado|"
            r"descont\w*|promoc\w*|cupom\w*|cupons|barato|baratinho|mais em conta|abaixa|abaixar|baixar|"
            r"melhorar o preco|melhora o preco|faz por|faz um|faz mais barato|sai por|\d+ reais|\d+ (off|por cento)|"
            r"(ta|muito|achei|meio|bem|tao) cara\b)"
        ),
        2,
    ),
    (
        re.compile(
            r"^quanto\b|\bquanto (custa|fica|sai|ta|e|vale|da|que sai|q sai|cobra|ficaria|sairia|mesmo)\b"
            r"|\bvale \d+|\bqual (e )?o total\b"
        ),
        2,
    ),
)
OBJECTION_CUES: Cues = (
    (
        re.compile(
            r"\b(depois|pensar|pensando|talvez|sem dinheiro|sem condic\w*|salario|outra hora|outro dia|"
            r"proxima|mes que vem|semana que vem|black friday|esperar|decidindo|nao sei|desisti|desistir|"
            r"mudei de ideia|nao tenho interesse|sem interesse|nao precisa$|nao precisa (nao|agora)|"
            r"nao (vou|vai) (levar|comprar|querer|dar)|nao (to|estou|ando) precisando|nao preciso|"
            r"(agora|hoje|por enquanto) nao|nao (da|posso|consigo) (agora|hoje|nao|$)|nao obrigad\w*|"
            r"deixa (quieto|pra|para)|fica pra|vou ver|com (meu marido|minha esposa|minha mulher|meu namorado|"
            r"minha namorada|minha mae|meu pai)|vale a pena|duvida se|na duvida|desanimei|ainda nao)\b"
        ),
        2,
    ),
    # Fear and distrust: the buyer who hesitates, not a question to answer with a policy.
    (re.compile(r"\b(medo|receio|insegur\w*|confio|confianca|golpe|nunca comprei)\b"), 3),
    # Bought elsewhere already: no question to answer, no price to quote.
    (re.compile(r"\b(comprei|achei|vi|encontrei) (em |um |uma |o )?outr\w*"), 3),
    (re.compile(r"^nao\b|\bnao$|^(chega|basta|ja chega|chega ne)$"), 1),
)
CONFIRMATION_CUES: Cues = (
    (
        re.compile(
            r"\b(sim|ok|okay|bora|fechado|fechou|combinado|beleza|perfeito|claro|certo|show|top|"
            r"pode ser|pode mandar|manda o link|manda ai|manda|quero sim|vou querer|vou levar|vou comprar|"
            r"vou pagar|vou fechar|vou finalizar|ja vou|finalizo|pago agora|ja paguei|paguei|ja to pagando|"
            r"to pagando|estou pagando|(?<!nao )quero|vamos|isso)\b"
        ),
        2,
    ),
    # Eagerness written as a refusal: "não quero perder", "chega de enrolar".
    (
        re.compile(
            r"\bnao (quero|vou) (perder|esperar|ficar sem)\b|\bchega de (pensar|enrolar|enrolacao|esperar)"
        ),
        3,
    ),
    # Paying is under way: "já pago no pix", "vou sair do app pra pagar", "que eu compro".
    (
        re.compile(
            r"\b(ja |eu |e )(pago|compro|finalizo|fecho)\b|\b(vou|ja vou|to indo)\b.*\b(pra|para|e) (ja )?"
            r"(pagar|pago|finalizar|finalizo|comprar|compro)\b"
        ),
        2,
    ),
    (re.compile(r"^(vou|sim|ok|quero)\b"), 1),
)
# A refusal turns an agreement word around: "não vou levar", "não quero".
NEGATED_AGREEMENT = re.compile(
    r"\bnao (vou|quero|posso|da|to|estou)\b"
    r"(?! (perder|esperar|ficar sem|o|a|os|as|esse|essa|este|esta|do|da|um|uma|pagar|parcelar)\b)"
)
# A change to the order ("não quero o azul", "cancelar só a capinha", "remover o cupom"): a
# request the shop must answer, neither a refusal nor a yes.
ORDER_CHANGE = re.compile(
    r"\bnao (quero|vou querer) (o|a|os|as|esse|essa|esses|essas|este|esta|do|da|um|uma)\b(?! (sua|seu|mensage))"
    r"|\b(cancelar|cancela|remover|remove|tirar|tira|excluir|exclui|trocar|troca) (so |um |o |a |uma |os |as )"
)
QUESTION_OPENERS = re.compile(
    r"^(qual|quais|como|tem|e se|vem|funciona|serve|da pra|consigo|posso|pode|onde|quando|quem|"
    r"por que|porque|o que|sera|ele|ela|voces tem|aceita|aceitam)\b"
)
GREETING = re.compile(
    r"((oi|ola|opa|alo|e ai|eai|bom dia|boa tarde|boa noite|tudo bem|tudo bom|td bem|como vai|"
    r"quem e|quem e voce|quem fala|quem ta falando|hm|hmm|ah|ah ta|ue|ok|oie)\s*)+"
)
NEGATIVE = re.compile(
    r"\b(caro|carissimo|ruim|pessimo|absurdo|chega|nao gostei|irritad\w*|chato|chata|chatice|"
    r"insistente|enche|encher|spam|ridiculo|palhacada|raiva|odeio|porcaria|lixo|decepcion\w*|saco|"
    r"inferno|cansei|puxado|salgado|que coisa)\b"
)
POSITIVE = re.compile(
    r"\b(obrigad\w*|otimo|otima|legal|perfeito|sim|beleza|gostei|adorei|amei|show|top|maravilh\w*|"
    r"massa|valeu|bacana)\b"
)
# A complaint about the messages themselves: answered with an apology and the way to stop.
CONTACT_COMPLAINT = re.compile(
    r"\b(mensage\w*|mandando|mandam|whatsapp|numero|escrevendo|chamando|insist\w*|"
    r"todo dia|toda hora|propaganda\w*|spam)\b"
)
ANNOYANCE = re.compile(
    r"\b(chato|chata|chatice|saco|inferno|cansei|cansativo|insistente|irritante|insuportavel|que raiva|"
    r"de novo|outra vez|toda hora|todo dia|pelo amor de deus|que coisa|demais)\b"
)


def wants_person(text: str) -> bool:
    """`text` as `normalise` spells it."""
    return bool(PERSON.search(text))


def complains_about_contact(text: str) -> bool:
    """A complaint about being messaged ("de novo essa mensagem?", "vocês mandam demais")."""
    said = normalise(text)
    return bool(ANNOYANCE.search(said) and CONTACT_COMPLAINT.search(said))


@dataclass(frozen=True)
class OptOutReading:
    wants_out: bool
    # A stop keyword neither aimed at the contact nor at the purchase: the rules cannot tell.
    unsure: bool = False


def read_optout(context: Context) -> OptOutReading:
    """A wish to stop being contacted, weighed against what the words say about the purchase.

    When a keyword stands in a sentence aimed at neither the contact nor the purchase, the
    rules cannot tell: they neither opt out nor sell (SPEC §5 step 3, the judgement paragraph).
    """
    said = normalise(context.text)
    if not said:
        return OptOutReading(wants_out=False)
    if SHORT_STOP.fullmatch(said):
        return OptOutReading(wants_out=True)
    weight = _weigh(said, OPTOUT_CUES)
    against = _weigh(said, PURCHASE_CUES) + (1.0 if _names_the_product(said, context) else 0.0)
    unsure = False
    if context.weak_optout:
        # Keywords are the shop's to switch off: only an active one, matched upstream, counts.
        for match in STOP_KEYWORDS.finditer(said):
            after = " ".join(said[match.end() :].split()[:4])
            if CONTACT_WORDS.search(after) and not PURCHASE_WORDS.search(after):
                weight += OPTOUT_THRESHOLD
                break
        else:
            unsure = against == 0 and weight < OPTOUT_THRESHOLD
    if UNAIMED_STOP.fullmatch(said):
        unsure = True
    wants_out = weight >= OPTOUT_THRESHOLD and weight > against
    return OptOutReading(wants_out=wants_out, unsure=unsure and not wants_out)


def is_optout(context: Context) -> bool:
    return read_optout(context).wants_out


def _names_the_product(said: str, context: Context) -> bool:
    words = {w for w in fold(context.product_name).split() if len(w) > 3 and w not in _STOPWORDS}
    return bool(words & set(said.split()))


def topics_of(said: str) -> list[str]:
    return [name for name, pattern in TOPICS if pattern.search(said)]


@dataclass(frozen=True)
class _Scores:
    said: str
    topics: list[str]
    price: float
    objection: float
    confirmation: float
    question: float
    # A topic asked about is answered; named in a statement ("pago no boleto hoje") it weighs less.
    topic_weight: float

    def intent(self) -> str:
        topic_price = (
            "installments" in self.topics
            or "payment" in self.topics
            or ("shipping" in self.topics and bool(SHIPPING_COST.search(self.said)))
        )
        weights = {
            "price_question": self.price + (self.topic_weight if topic_price else 0.0),
            "question": self.question + (self.topic_weight if self.topics and not topic_price else 0.0),
            "objection": self.objection,
            "confirmation": self.confirmation,
        }
        # Ties go to what can be answered: a price, then a question, then a hesitation.
        best = max(weights, key=lambda intent: (weights[intent], -list(weights).index(intent)))
        return best if weights[best] >= 1 else "unclear"


def _scores(said: str, asked: bool) -> _Scores:
    confirmation = _weigh(said, CONFIRMATION_CUES)
    objection = _weigh(said, OBJECTION_CUES)
    if NEGATED_AGREEMENT.search(said):
        objection += 1.5
        confirmation = max(confirmation - 2, 0)
    question = 0.0
    if asked:
        question += 1.0
        # "Sim?", "ok?", "oi?": agreement or a greeting with a question mark asks nothing.
        if GREETING.fullmatch(said) or re.fullmatch(r"(sim|ok|pode ser|pode|certo|isso|claro)( \w+)?", said):
            question = 0.0
        # A question is answered, even when it holds a "não" or a "depois".
        objection = max(objection - 1.5, 0)
        confirmation = max(confirmation - 1, 0)
    if not said:
        question = 0.0
    elif QUESTION_OPENERS.search(said):
        question += 0.5
    if ORDER_CHANGE.search(said):
        question += 3
    return _Scores(
        said=said,
        topics=topics_of(said),
        price=_weigh(said, PRICE_CUES),
        objection=objection,
        confirmation=confirmation,
        question=question,
        topic_weight=2.5 if asked else 1.5,
    )


class RuleBasedInterpreter(Interpreter):
    def interpret(self, context: Context) -> Interpretation:
        said = normalise(context.text)
        sentiment = _sentiment(said)
        if wants_person(said):
            return Interpretation(intent="human", sentiment=sentiment, reply=HANDOFF_NOTE)
        optout = read_optout(context)
        if optout.wants_out:
            return Interpretation(intent="opt_out", sentiment=sentiment, reply="")
        scores = _scores(said, asked="?" in context.text)
        intent = scores.intent()
        complaint = complains_about_contact(context.text)
        if complaint or optout.unsure:
            # Annoyed by the messages, or a stop word the rules cannot place: no pitch at all.
            reply = "Desculpe o incômodo." if complaint else "Tudo bem, sem problemas."
            return Interpretation(
                intent=intent if intent != "confirmation" else "unclear",
                sentiment="negative" if complaint else sentiment,
                reply=f"{reply} {STOP_OFFER}",
                offer_stop=True,
            )
        annoyed = sentiment == "negative" and intent != "price_question"
        reply = _reply(intent, scores, context, annoyed=annoyed)
        return Interpretation(intent=intent, sentiment=sentiment, reply=reply)


def _reply(intent: str, scores: _Scores, context: Context, *, annoyed: bool) -> str:
    """A short answer to what was asked; an annoyed customer gets no invitation to buy."""
    closing = "" if annoyed else "Posso ajudar a finalizar?"
    if intent in ("price_question", "question") and scores.topics:
        return _topic_reply(scores.topics, context, closing=closing)
    if intent == "price_question":
        return _join(f"Entendo! O valor do {_cart(context)} é {brl(context.value)}.", closing)
    if intent == "question":
        return _product_reply(scores.said, context)
    if intent == "objection":
        return _objection_reply(scores, context)
    if intent == "confirmation":
        return "Que ótimo! É só finalizar pelo link abaixo."
    return f"Oi! Estou por aqui para ajudar com {_purchase(context)}. Ficou alguma dúvida?"


def _objection_reply(scores: _Scores, context: Context) -> str:
    reply = f"Sem problemas, entendo. Se mudar de ideia, {_cart(context)} continua esperando por você."
    fear = OBJECTION_CUES[1][0].search(scores.said) or "returns" in scores.topics
    returns = _first_sentences(context.knowledge.returns, 1)
    if fear and returns:
        # A buyer afraid it will not fit is reassured by the shop's own return policy, nothing more.
        return f"Entendo a insegurança! {returns} {reply.split('. ', 1)[1]}"
    return reply


def _join(*lines: str) -> str:
    return " ".join(line for line in lines if line)


def _sentiment(said: str) -> str:
    if NEGATIVE.search(said):
        return "negative"
    if POSITIVE.search(said):
        return "positive"
    return "neutral"


def _cart(context: Context) -> str:
    return f"seu carrinho de {context.product_name}" if context.product_name else "seu carrinho"


def _purchase(context: Context) -> str:
    return f"sua compra de {context.product_name}" if context.product_name else "sua compra"


TOPIC_FIELDS = {
    "shipping": "shipping",
    "payment": "payment_methods",
    "installments": "installments",
    "returns": "returns",
    "hours": "support_hours",
}
# A reply stays within about four short lines before the links.
TOPIC_REPLY_CHARS = 320
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _first_sentences(text: str, count: int) -> str:
    return " ".join(_SENTENCE.split(" ".join(text.split()))[:count]).strip()


def _topic_reply(topics: list[str], context: Context, *, closing: str) -> str:
    """The shop's own words on what was asked, the first topic first; no labels, no pasted policy."""
    knowledge: ShopKnowledge = context.knowledge
    parts: list[str] = []
    for topic in topics[:2]:
        text = getattr(knowledge, TOPIC_FIELDS[topic]).strip()
        if not text:
            continue
        # Whole sentences, as many as fit the room left.
        room = TOPIC_REPLY_CHARS - sum(len(p) for p in parts)
        chosen = ""
        for count in range(1, 4):
            candidate = _first_sentences(text, count)
            if len(candidate) > room and chosen:
                break
            chosen = candidate
        if chosen and (not parts or len(chosen) <= room):
            parts.append(chosen)
    if not parts:
        return _join(
            "Essa informação eu não tenho aqui, mas nossa equipe confirma para você.",
            closing and f"Posso ajudar com mais alguma coisa sobre {_purchase(context)}?",
        )
    return "\n".join(parts) + (f"\n\n{closing}" if closing else "")


def _product_reply(said: str, context: Context) -> str:
    answer = faq_answer(said, context.knowledge.product_faq)
    if answer:
        return answer
    if context.product_description:
        about = _first_sentences(context.product_description, 2)[:300]
        return f"Boa pergunta! Sobre {context.product_name or 'o produto'}: {about}"
    return f"Boa pergunta! Posso te ajudar a finalizar {_purchase(context)}."


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
