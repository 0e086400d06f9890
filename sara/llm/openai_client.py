"""OpenAI through the official SDK, with Structured Outputs and a hard deadline.

Any failure (timeout, HTTP error, refusal, malformed output) becomes the holding reply: the
conversation goes on and the rule-based interpreter keeps the opt-out decision safe.
"""

from __future__ import annotations

import json
import logging
import time
from functools import cache
from pathlib import Path

import httpx
import openai
from django.conf import settings

from sara.interpretation import INTENTS, SENTIMENTS, Context, Interpretation, Interpreter

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (Path(__file__).resolve().parent.parent / "prompts" / "system.md").read_text()
REPLY_MAX_CHARS = 1000

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
        try:
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
        except (openai.OpenAIError, httpx.HTTPError, ValueError, KeyError, TypeError, IndexError) as exc:
            logger.warning(
                "AI interpretation failed, holding reply used",
                extra={
                    "error": exc.__class__.__name__,
                    "elapsed_ms": round((time.monotonic() - started) * 1000),
                },
            )
            return Interpretation.holding()
        usage = getattr(completion, "usage", None)
        tokens = int(getattr(usage, "total_tokens", 0) or 0)
        logger.info(
            "AI interpretation",
            extra={
                "intent": intent,
                "tokens": tokens,
                "elapsed_ms": round((time.monotonic() - started) * 1000),
            },
        )
        return Interpretation(
            intent=intent, sentiment=sentiment, reply=reply[:REPLY_MAX_CHARS], tokens_used=tokens
        )
