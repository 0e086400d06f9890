"""OpenAI through the official SDK, with Structured Outputs and a hard deadline.

Any failure (timeout, HTTP error, refusal, a content filter, an answer cut off or outside the
schema) is reported as a failed interpretation with its reason: the agent then has the
rule-based interpreter answer in the same turn.
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

from core import metrics
from sara.interpretation import INTENTS, SENTIMENTS, Context, Interpretation, Interpreter
from sara.money import brl

logger = logging.getLogger(__name__)

# The answer is whole only when the model stopped by itself: "length" cuts it (a truncated
# answer may still parse), "content_filter" removes parts of it.
COMPLETE = "stop"

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
            reason = _failure_reason(exc)
            logger.warning(
                "AI interpretation failed, the rules answer",
                extra={"error": reason, "elapsed_ms": round(elapsed * 1000)},
            )
            return Interpretation.failed(reason)
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

    def _create(self, messages: list[dict[str, str]], response_format: dict[str, Any]) -> Any:
        # The SDK's public call: its private request helpers change between releases.
        # Plain dicts in the shapes the SDK documents; its TypedDicts name each variant.
        return self.client.chat.completions.create(  # type: ignore[call-overload]
            model=settings.OPENAI_MODEL,
            messages=messages,
            response_format=response_format,
            timeout=settings.OPENAI_TIMEOUT_SECONDS,
        )


JSON_MODE = {"type": "json_object"}
# Servers (by base URL) that answered a json_schema request with an error about it.
_SCHEMA_REFUSED: set[str] = set()
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def _refuses_json_schema(exc: openai.APIStatusError) -> bool:
    detail = f"{exc.message} {exc.body}".lower()
    return any(word in detail for word in ("json_schema", "response_format", "structured output"))


class UnusableAnswer(ValueError):
    """The model answered, but not with something Sara may use; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _failure_reason(exc: BaseException) -> str:
    """A short, stable name for why the AI gave no usable answer (kept on the reply as ai_error)."""
    if isinstance(exc, UnusableAnswer):
        return exc.reason
    if isinstance(exc, FutureTimeout | openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.APIStatusError):
        return f"http_{exc.status_code}"
    if isinstance(exc, openai.OpenAIError):
        return "error"
    return "schema"


def _read(completion: Any) -> Interpretation:
    """The model's answer checked against the schema, whichever mode produced it."""
    first = completion.choices[0]
    choice = first.message
    if getattr(choice, "refusal", None):
        raise UnusableAnswer("refusal")
    finish_reason = getattr(first, "finish_reason", COMPLETE) or COMPLETE
    if finish_reason != COMPLETE:
        # "length", "content_filter"...: a part of the answer is missing, even if it parses.
        raise UnusableAnswer(str(finish_reason)[:40])
    try:
        data = json.loads(_FENCE.sub("", (choice.content or "").strip()))
    except ValueError as exc:
        raise UnusableAnswer("schema") from exc
    if not isinstance(data, dict):
        raise UnusableAnswer("schema")
    intent, sentiment = data.get("intent"), data.get("sentiment")
    reply = str(data.get("reply") or "").strip()
    if intent not in INTENTS or sentiment not in SENTIMENTS:
        raise UnusableAnswer("schema")
    if not reply and intent not in ("opt_out", "human"):
        raise UnusableAnswer("schema")
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
