"""OpenAI through the official SDK, with Structured Outputs and a hard deadline.

Any failure (timeout, HTTP error, refusal, malformed output) becomes the holding reply: the
conversation goes on and the rule-based interpreter keeps the opt-out decision safe.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import cache
from pathlib import Path

import httpx
import openai
from django.conf import settings

from core import metrics
from sara.interpretation import INTENTS, SENTIMENTS, Context, Interpretation, Interpreter

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


def build_messages(context: Context) -> list[dict[str, str]]:
    system = SYSTEM_PROMPT.format(
        customer_name=context.customer_name or "-",
        product_name=context.product_name or "-",
        product_description=context.product_description or "-",
        value=f"{context.value:.2f}",
    )
    messages = [{"role": "system", "content": system}]
    for turn in context.history[-10:]:
        messages.append({"role": "user" if turn.role == "customer" else "assistant", "content": turn.text})
    messages.append({"role": "user", "content": context.text})
    return messages


@cache
def _default_client() -> openai.OpenAI:
    return build_client()


def build_client(http_client: httpx.Client | None = None) -> openai.OpenAI:
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
            intent, sentiment, reply, tokens = future.result(timeout=settings.OPENAI_TIMEOUT_SECONDS)
        except (
            FutureTimeout,
            openai.OpenAIError,
            httpx.HTTPError,
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
        metrics.AI_TOKENS.inc(tokens)
        logger.info(
            "AI interpretation",
            extra={"intent": intent, "tokens": tokens, "elapsed_ms": round(elapsed * 1000)},
        )
        return Interpretation(
            intent=intent, sentiment=sentiment, reply=reply[:REPLY_MAX_CHARS], tokens_used=tokens
        )

    def _complete(self, context: Context) -> tuple[str, str, str, int]:
        completion = self.client.chat.completions.create(
            model=settings.OPENAI_MODEL,
            messages=build_messages(context),
            response_format=RESPONSE_FORMAT,
            timeout=settings.OPENAI_TIMEOUT_SECONDS,
        )
        choice = completion.choices[0].message
        if getattr(choice, "refusal", None):
            raise ValueError("model refused")
        data = json.loads(choice.content or "")
        intent, sentiment, reply = data["intent"], data["sentiment"], str(data["reply"]).strip()
        if intent not in INTENTS or sentiment not in SENTIMENTS or not reply:
            raise ValueError("answer outside the schema")
        usage = getattr(completion, "usage", None)
        return intent, sentiment, reply, int(getattr(usage, "total_tokens", 0) or 0)
