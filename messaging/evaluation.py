"""How well Sara reads customers: a labelled set run through the same reading a message gets.

Each message goes through layer-1 opt-out detection (the active keywords), the interpreter and,
for a message that gets a reply, the discount rule, the guardrails and the composed text, on a
sample cart of a shop with a full knowledge. Nothing is stored and nothing is sent.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings

from compliance import optout
from sara import agent, guardrails
from sara.interpretation import INTENTS, Context, Interpreter
from sara.knowledge import ShopKnowledge

EVAL_DIR = Path(settings.BASE_DIR) / "tests" / "eval"
OPTOUT_CATEGORIES = ("explicit_optout", "implicit_optout")

# A shop that filled in everything, as the README's example: the figures a reply may quote.
SAMPLE_SHOP = ShopKnowledge(
    name="Casa Aurora",
    about="Loja de eletrônicos e acessórios de Florianópolis, vendendo online desde 2016.",
    shipping=(
        "Enviamos para todo o Brasil. Frete grátis acima de R$ 299,00. Abaixo disso: PAC R$ 19,90 "
        "(5 a 10 dias úteis) ou SEDEX R$ 34,90 (2 a 4 dias úteis). Sul e Sudeste costumam receber "
        "antes; Norte e Nordeste, até 12 dias úteis pelo PAC. O código de rastreio chega por e-mail "
        "no dia do envio."
    ),
    payment_methods=(
        "PIX com 5% de desconto, aprovado na hora; boleto bancário, que vence em 3 dias úteis e "
        "compensa em até 2 dias úteis; cartão de crédito Visa, Mastercard, Elo e Amex."
    ),
    installments="Até 10x sem juros no cartão de crédito, parcela mínima de R$ 30,00.",
    returns=(
        "Você tem 7 dias após o recebimento para desistir da compra, com reembolso integral. "
        "Troca por defeito em até 90 dias. A primeira troca de tamanho ou cor é grátis em 30 dias."
    ),
    support_hours="Segunda a sexta, das 9h às 18h; sábado, das 9h às 13h.",
    product_price=Decimal("349.90"),
    product_faq=(
        "P: Tem garantia?\nR: Sim, 12 meses de garantia do fabricante.\n"
        "P: Funciona com iPhone e Android?\nR: Sim, conecta por Bluetooth 5.3 em qualquer celular.\n"
        "P: Vem com nota fiscal?\nR: Sim, a nota fiscal vai junto com o pedido."
    ),
)
SAMPLE_CART: dict[str, Any] = {
    "customer_name": "Maria Silva",
    "product_name": "Fone Bluetooth Aurora",
    "product_description": "Fone de ouvido sem fio com cancelamento de ruído e 30 horas de bateria.",
    "value": Decimal("349.90"),
    "payment_link": "https://pay.casaaurora.com.br/c/7f3a9",
    "discount_link": "https://pay.casaaurora.com.br/c/7f3a9?cupom=VOLTA10",
    "discount_percent": Decimal("10"),
    "discounted_value": Decimal("314.91"),
}


@dataclass(frozen=True)
class Case:
    text: str
    category: str
    intent: str


@dataclass
class Report:
    name: str
    rows: list[tuple[Case, str]] = field(default_factory=list)
    guardrail_hits: Counter = field(default_factory=Counter)
    # Outbound texts that still held a forbidden URL, figure or offer after the guardrails.
    leaks: list[str] = field(default_factory=list)
    replies: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    calls: int = 0

    def category_stats(self) -> dict[str, dict[str, float]]:
        by_category: dict[str, list[tuple[Case, str]]] = defaultdict(list)
        for case, predicted in self.rows:
            by_category[case.category].append((case, predicted))
        stats = {}
        for category, rows in sorted(by_category.items()):
            n = len(rows)
            correct = sum(case.intent == predicted for case, predicted in rows)
            opted = sum(predicted == "opt_out" for _, predicted in rows)
            stats[category] = {
                "n": n,
                "intent_accuracy": correct / n,
                # Recall for the opt-out categories, the false opt-out rate for every other.
                "opt_out_rate": opted / n,
            }
        return stats

    def intent_stats(self) -> dict[str, dict[str, float]]:
        stats = {}
        for intent in INTENTS:
            tp = sum(c.intent == intent and p == intent for c, p in self.rows)
            predicted = sum(p == intent for _, p in self.rows)
            actual = sum(c.intent == intent for c, _ in self.rows)
            stats[intent] = {
                "n": actual,
                "precision": tp / predicted if predicted else 1.0,
                "recall": tp / actual if actual else 1.0,
            }
        return stats

    @property
    def intent_accuracy(self) -> float:
        return sum(c.intent == p for c, p in self.rows) / max(len(self.rows), 1)

    def opt_out_rate(self, category: str) -> float:
        rows = [p for c, p in self.rows if c.category == category]
        return sum(p == "opt_out" for p in rows) / max(len(rows), 1)

    @property
    def false_opt_out_rate(self) -> float:
        """Opt-outs read in messages that are no request to stop: a willing buyer lost."""
        rows = [p for c, p in self.rows if c.intent != "opt_out"]
        return sum(p == "opt_out" for p in rows) / max(len(rows), 1)

    def intent_recall(self, intent: str) -> float:
        return self.intent_stats()[intent]["recall"]

    def misreadings(self) -> list[tuple[Case, str]]:
        return [(c, p) for c, p in self.rows if c.intent != p]


def load_cases(path: Path) -> list[Case]:
    """One JSON object a line: text, category, intent (the expected reading)."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        data = json.loads(line)
        intent = data.get("intent", "")
        if intent not in INTENTS:
            raise ValueError(f"{path}:{number}: intent {intent!r} is not one of {', '.join(INTENTS)}")
        cases.append(Case(text=data["text"], category=data.get("category", "uncategorised"), intent=intent))
    return cases


def evaluate(
    name: str,
    cases: Iterable[Case],
    *,
    interpreter: Interpreter | None = None,
    knowledge: ShopKnowledge = SAMPLE_SHOP,
) -> Report:
    report = Report(name=name)
    keywords = optout.active_keywords()
    for case in cases:
        match = optout.detect(case.text, keywords)
        if match is optout.Match.STRONG:
            report.rows.append((case, "opt_out"))
            continue
        context = Context(
            text=case.text, weak_optout=match is optout.Match.WEAK, knowledge=knowledge, **SAMPLE_CART
        )
        reading = agent.interpret(context, interpreter)
        report.rows.append((case, reading.intent))
        if reading.tokens_used:
            report.calls += 1
            report.tokens_in += reading.tokens_in
            report.tokens_out += reading.tokens_out
        if reading.intent in ("opt_out", "human"):
            continue
        cart = agent.CartFigures(
            value=context.value,
            payment_link=context.payment_link,
            discount_percent=context.discount_percent,
            discounted_value=context.discounted_value,
            discount_link=context.discount_link,
        )
        judgement = agent.judge(context, reading)
        offer = agent.should_offer_discount(cart, reading, judgement)
        guarded = agent.guarded_reply(context, reading, offer_discount=offer)
        report.replies += 1
        report.guardrail_hits.update(guarded.violations)
        outbound = agent.compose_reply(guarded.text, cart=cart, offer_discount=offer, judgement=judgement)
        allowance = guardrails.allowance_for(context, offer_discount=offer)
        if guardrails.guard(outbound, allowance).violations:
            report.leaks.append(outbound)
    return report


def format_report(report: Report) -> str:
    lines = [f"== {report.name}: {len(report.rows)} messages =="]
    lines.append(f"{'category':<22}{'n':>5}{'intent acc.':>13}{'opted out':>11}")
    for category, s in report.category_stats().items():
        lines.append(f"{category:<22}{s['n']:>5}{s['intent_accuracy']:>12.1%}{s['opt_out_rate']:>11.1%}")
    lines.append("")
    lines.append(f"{'intent':<22}{'n':>5}{'precision':>11}{'recall':>9}")
    for intent, s in report.intent_stats().items():
        lines.append(f"{intent:<22}{s['n']:>5}{s['precision']:>11.1%}{s['recall']:>9.1%}")
    lines.append("")
    lines.append(f"intent accuracy: {report.intent_accuracy:.1%}")
    lines.append(
        "opt-out recall: explicit "
        f"{report.opt_out_rate('explicit_optout'):.1%}, implicit {report.opt_out_rate('implicit_optout'):.1%}; "
        f"false opt-outs on keyword-in-sentence: {report.opt_out_rate('keyword_in_purchase'):.1%}, "
        f"on every other message: {report.false_opt_out_rate:.1%}"
    )
    lines.append(f"objection recall: {report.intent_recall('objection'):.1%}")
    hits = ", ".join(f"{rule} {count}" for rule, count in sorted(report.guardrail_hits.items())) or "none"
    lines.append(
        f"guardrail hits over {report.replies} replies: {hits}; forbidden text sent: {len(report.leaks)}"
    )
    if report.calls:
        lines.append(
            f"tokens per call: {report.tokens_in / report.calls:.0f} in, "
            f"{report.tokens_out / report.calls:.0f} out ({report.calls} calls)"
        )
    return "\n".join(lines)
