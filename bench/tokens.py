"""Tokens per reply with a full shop knowledge: what one interpretation costs, and what is cached.

Every labelled message of tests/eval is put in the prompt Sara sends (the sample shop's full
knowledge, a cart with its FAQ, ten earlier turns), and the prompt is counted with OpenAI's
o200k_base encoding (gpt-4o-mini's), through the `gpt-tokenizer` npm package, which ships the
encoding's table (`npm install --prefix bench/.node gpt-tokenizer@3.0.1`). The answer is
counted as the JSON the model writes for a reply of the usual length.

    .venv/bin/python bench/tokens.py   # writes bench/results/tokens.json
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from backoffice.evaluation import EVAL_DIR, SAMPLE_CART, SAMPLE_SHOP, load_cases  # noqa: E402
from sara.interpretation import Context, Turn  # noqa: E402
from sara.llm.openai_client import build_messages  # noqa: E402

NODE_DIR = ROOT / "bench" / ".node"
# Chat Completions adds a few tokens per message for the role markers (OpenAI's cookbook: 3 per
# message and 3 to prime the answer).
PER_MESSAGE, PER_CALL = 3, 3
HISTORY = [
    Turn("sara", "Oi, Maria! Vi que você deixou o Fone Bluetooth Aurora no carrinho. Posso ajudar?"),
    Turn("customer", "Oi! Tava vendo ainda"),
    Turn("sara", "Claro! Ele tem cancelamento de ruído e 30 horas de bateria. Quer tirar alguma dúvida?"),
    Turn("customer", "Tem garantia?"),
    Turn(
        "sara",
        "Sim, 12 meses de garantia do fabricante. Finalize sua compra aqui: https://pay.casaaurora.com.br/c/7f3a9",
    ),
    Turn("customer", "E funciona no meu android?"),
    Turn("sara", "Funciona sim, conecta por Bluetooth 5.3 em qualquer celular."),
    Turn("customer", "Legal. Vou ver com calma"),
    Turn("sara", "Sem problemas! Seu carrinho continua esperando por você."),
    Turn("customer", "Obrigada"),
]
TYPICAL_ANSWER = json.dumps(
    {
        "intent": "question",
        "sentiment": "neutral",
        "reply": (
            "O frete é grátis acima de R$ 299,00, então o seu pedido de R$ 349,90 vai sem custo de entrega! "
            "Pelo PAC chega em 5 a 10 dias úteis; pelo SEDEX, em 2 a 4. Posso ajudar a finalizar?"
        ),
    },
    ensure_ascii=False,
)


def count(texts: list[str]) -> list[int]:
    out = subprocess.run(
        ["node", str(ROOT / "bench" / "count_tokens.js")],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")},
    )
    return json.loads(out.stdout)


def main() -> None:
    cases = [case for name in ("dev", "test", "holdout") for case in load_cases(EVAL_DIR / f"{name}.jsonl")]
    prompts = [
        build_messages(Context(text=case.text, knowledge=SAMPLE_SHOP, history=HISTORY, **SAMPLE_CART))
        for case in cases
    ]
    systems = {p[0]["content"] for p in prompts}
    assert len(systems) == 1, "the system message must be the same for every message of a shop"
    (system,) = systems
    system_tokens, answer_tokens = count([system, TYPICAL_ANSWER])
    documents = count([p[1]["content"] for p in prompts])
    inputs = [system_tokens + d + 2 * PER_MESSAGE + PER_CALL for d in documents]
    result = {
        "encoding": "o200k_base",
        "messages": len(cases),
        "system_prefix_tokens": system_tokens + PER_MESSAGE,
        "input_tokens_mean": round(statistics.mean(inputs), 1),
        "input_tokens_p95": sorted(inputs)[int(0.95 * (len(inputs) - 1))],
        "input_tokens_max": max(inputs),
        "output_tokens_typical": answer_tokens,
        "cacheable_share_of_input": round((system_tokens + PER_MESSAGE) / statistics.mean(inputs), 3),
        "shop_knowledge_chars": len(SAMPLE_SHOP.shop_text()),
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "tokens.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
