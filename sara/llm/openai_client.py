"""OpenAI through the official SDK, with Structured Outputs and a hard deadline.

Any failure (timeout, HTTP error, refusal, malformed output) becomes the holding reply: the
conversation goes on and the rule-based interpreter keeps the opt-out decision safe.
"""

from __future__ import annotations

import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import cache
from pathlib import Path
from typing import Any

import openai
from django.conf import settings
from openai._base_client import make_request_options
from openai.types.chat import ChatCompletion

from core import metrics
from sara.interpretation import INTENTS, SENTIMENTS, Context, Interpretation, Interpreter
from sara.money import brl

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (Path(__file__).resolve().parent.parent / "prompts" / "system.md").read_text()
REPLY_MAX_CHARS = 1000
# Calls run here so that the deadline holds whatever the network does (see interpret()).
_EXECUTOR = ThreadPoolExecutor(max_workers=128, thread_name_prefix="openai")

RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "sara_interpretation",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "intent": {"type": "string", "enum": list(INTENTS)},
                "sentiment": {"type": "string", "enum": list(SENTIMENTS)},
                "reply": {"type": "string"},
            },
            "required": ["intent", "sentiment", "reply"],
            "additionalProperties": False,
        },
    },
}


def system_prompt(context: Context) -> str:
    """The instructions and the shop's knowledge: the same for every cart of the shop, so the
    provider's prompt cache serves this prefix (it must not hold anything that varies per cart)."""
    return SYSTEM_PROMPT.replace("{shop}", context.knowledge.shop_text())


def conversation_document(context: Context) -> str:
    """The cart and the conversation as one JSON document: the customer's words are quoted
    strings inside it, data to read and never instructions to follow."""
    cart: dict[str, object] = {
        "cliente": context.customer_name or "-",
        "produto": context.product_name or "-",
        "descricao_do_produto": context.product_description or "-",
        "valor_do_carrinho": brl(context.value),
    }
    product = context.knowledge.product_text()
    if product:
        cart["sobre_o_produto"] = product
    history = [
        {"de": "cliente" if turn.role == "customer" else "sara", "texto": turn.text}
        for turn in context.history[-10:]
    ]
    document = {"carrinho": cart, "historico": history, "mensagem_do_cliente": context.text}
    return "Dados do carrinho e da conversa (JSON):\n" + json.dumps(document, ensure_ascii=False, indent=1)


def build_messages(context: Context) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_prompt(context)},
        {"role": "user", "content": conversation_document(context)},
    ]


@cache
def _default_client() -> openai.OpenAI:
    return build_client()


def build_client(http_client: Any = None) -> openai.OpenAI:
    """The SDK's client; `http_client` replaces its own (tests pass httpx's with a MockTransport)."""
    return openai.OpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
        timeout=settings.OPENAI_TIMEOUT_SECONDS,
        # The deadline is the whole budget: a retry would blow it.
        max_retries=0,
        http_client=http_client,
    )


class OpenAIInterpreter(Interpreter):
    def __init__(self, client: openai.OpenAI | None = None) -> None:
        self._client = client

    @property
    def client(self) -> openai.OpenAI:
        return self._client or _default_client()

    def interpret(self, context: Context) -> Interpretation:
        started = time.monotonic()
        # The SDK's timeout bounds each network phase, not the whole call: a server that
        # trickles its answer could outlast it. The future enforces the deadline as a whole.
        future = _EXECUTOR.submit(self._complete, context)
        try:
            interpretation = future.result(timeout=settings.OPENAI_TIMEOUT_SECONDS)
        except (
            FutureTimeout,
            # Network and HTTP errors arrive as the SDK's own (APIConnectionError, APITimeoutError,
            # APIStatusError), whichever HTTP client carried the call.
            openai.OpenAIError,
            ValueError,
            KeyError,
            TypeError,
            IndexError,
        ) as exc:
            elapsed = time.monotonic() - started
            metrics.AI_LATENCY.labels("fallback").observe(elapsed)
            logger.warning(
                "AI interpretation failed, holding reply used",
                extra={"error": exc.__class__.__name__, "elapsed_ms": round(elapsed * 1000)},
            )
            return Interpretation.holding()
        elapsed = time.monotonic() - started
        metrics.AI_LATENCY.labels("ok").observe(elapsed)
        metrics.AI_TOKENS.inc(interpretation.tokens_used)
        metrics.AI_TOKENS_BY_KIND.labels("input").inc(interpretation.tokens_in)
        metrics.AI_TOKENS_BY_KIND.labels("output").inc(interpretation.tokens_out)
        metrics.AI_TOKENS_BY_KIND.labels("cached").inc(interpretation.tokens_cached)
        logger.info(
            "AI interpretation",
            extra={
                "intent": interpretation.intent,
                "tokens": interpretation.tokens_used,
                "tokens_in": interpretation.tokens_in,
                "tokens_out": interpretation.tokens_out,
                "tokens_cached": interpretation.tokens_cached,
                "elapsed_ms": round(elapsed * 1000),
            },
        )
        return interpretation

    def _complete(self, context: Context) -> Interpretation:
        messages = build_messages(context)
        server = str(self.client.base_url)
        if server not in _SCHEMA_REFUSED:
            try:
                return _read(self._create(messages, RESPONSE_FORMAT))
            except (openai.BadRequestError, openai.UnprocessableEntityError, openai.NotFoundError) as exc:
                if not _refuses_json_schema(exc):
                    raise
                # An OpenAI-compatible server without Structured Outputs (a local model server):
                # JSON mode and our own validation from now on, instead of failing every call.
                _SCHEMA_REFUSED.add(server)
                logger.warning("server refused json_schema output, using JSON mode", extra={"server": server})
        return _read(self._create(messages, JSON_MODE))

    def _create(self, messages: list[dict[str, str]], response_format: dict) -> Any:
        # The same request as `chat.completions.create()`, posted through the SDK's client (its
        # auth, errors and typed response): `create()` first walks every parameter through its
        # TypedDict transform, about a millisecond of CPU per call for a body that is already
        # plain JSON (bench/RESULTS.md, W10).
        return self.client.post(
            "/chat/completions",
            body={"model": settings.OPENAI_MODEL, "messages": messages, "response_format": response_format},
            cast_to=ChatCompletion,
            options=make_request_options(
                timeout=settings.OPENAI_TIMEOUT_SECONDS, security={"bearer_auth": True}
            ),
        )


JSON_MODE = {"type": "json_object"}
# Servers (by base URL) that answered a json_schema request with an error about it.
_SCHEMA_REFUSED: set[str] = set()
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def _refuses_json_schema(exc: openai.APIStatusError) -> bool:
    detail = f"{exc.message} {exc.body}".lower()
    return any(word in detail for word in ("json_schema", "response_format", "structured output"))


def _read(completion: Any) -> Interpretation:
    """The model's answer checked against the schema, whichever mode produced it."""
    choice = completion.choices[0].message
    if getattr(choice, "refusal", None):
        raise ValueError("model refused")
    data = json.loads(_FENCE.sub("", (choice.content or "").strip()))
    if not isinstance(data, dict):
        raise ValueError("answer is not a JSON object")
    intent, sentiment = data.get("intent"), data.get("sentiment")
    reply = str(data.get("reply") or "").strip()
    if intent not in INTENTS or sentiment not in SENTIMENTS:
        raise ValueError("answer outside the schema")
    if not reply and intent not in ("opt_out", "human"):
        raise ValueError("answer without a reply")
    usage = getattr(completion, "usage", None)
    details = getattr(usage, "prompt_tokens_details", None)
    return Interpretation(
        intent=intent,
        sentiment=sentiment,
        reply=reply[:REPLY_MAX_CHARS],
        tokens_used=int(getattr(usage, "total_tokens", 0) or 0),
        tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
        tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
        tokens_cached=int(getattr(details, "cached_tokens", 0) or 0),
    )
