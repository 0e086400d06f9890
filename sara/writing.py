"""Brazilian WhatsApp writing brought to one spelling before any rule reads it.

Customers type "n", "ñ", "num" for "não", "vc" for "você", "q" for "que", "msg" and "zap" for
the message and the app, stretch words ("paraaa", "simmm") and drop accents. The rules are
written once against the plain spelling; this module maps the rest onto it.
"""

from __future__ import annotations

import re

from core.text import fold, unstretch

# "kkkk", "rsrs", "hahaha": laughter, not words.
_LAUGHTER = re.compile(r"\b(k{2,}|(rs){1,}|(ha){2,}|(he){2,}|(hu){2,}|(ks){2,})\b")

# Each shorthand (folded) and the spelling the rules read. Only what customers really type;
# one-letter words are mapped only where the letter alone cannot mean anything else here.
SHORTHAND: dict[str, str] = {
    "n": "nao",
    "nn": "nao",
    "naum": "nao",
    "nao": "nao",
    "num": "nao",
    "vc": "voce",
    "vcs": "voces",
    "voce": "voce",
    "q": "que",
    "oq": "o que",
    "pq": "porque",
    "pqp": "que raiva",
    "tb": "tambem",
    "tbm": "tambem",
    "tmb": "tambem",
    "msg": "mensagem",
    "msgs": "mensagens",
    "mensagem": "mensagem",
    "mensagens": "mensagens",
    "mensages": "mensagens",
    "mensagen": "mensagem",
    "zap": "whatsapp",
    "zapzap": "whatsapp",
    "wpp": "whatsapp",
    "whats": "whatsapp",
    "wts": "whatsapp",
    "pfv": "por favor",
    "pf": "por favor",
    "pfvr": "por favor",
    "plmds": "pelo amor de deus",
    "pls": "por favor",
    "obg": "obrigado",
    "obgd": "obrigado",
    "brigado": "obrigado",
    "vlw": "valeu",
    "hj": "hoje",
    "agr": "agora",
    "mt": "muito",
    "mto": "muito",
    "mta": "muita",
    "qnt": "quanto",
    "qnto": "quanto",
    "qto": "quanto",
    "qt": "quanto",
    "qnts": "quantos",
    "qntos": "quantos",
    "qtos": "quantos",
    "qnd": "quando",
    "qdo": "quando",
    "td": "tudo",
    "tds": "todos",
    "blz": "beleza",
    "dps": "depois",
    "dpois": "depois",
    "nd": "nada",
    "nda": "nada",
    "vdd": "verdade",
    "msm": "mesmo",
    "cmg": "comigo",
    "ngm": "ninguem",
    "aki": "aqui",
    "p": "pra",
    "pro": "pra o",
    "c": "com",
    "cm": "com",
    "tou": "to",
    "eh": "e",
    "ta": "ta",
    "kd": "cade",
    "ctz": "certeza",
    "sdds": "saudades",
    "trampo": "trabalho",
    "grana": "dinheiro",
    "din": "dinheiro",
    "conto": "reais",
    "pila": "reais",
    "pilas": "reais",
    "contos": "reais",
    "to": "to",
}


def normalise(text: str) -> str:
    """Folded (lower case, no accents or punctuation), stretched letters squeezed, shorthand spelled out."""
    folded = _LAUGHTER.sub(" ", fold(text))
    folded = unstretch(folded)
    return " ".join(SHORTHAND.get(word, word) for word in folded.split())
