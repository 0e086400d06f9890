"""Shared fixtures: signed webhook posts, recorded Meta payloads, the Graph and OpenAI fakes."""

from __future__ import annotations

import copy
import functools
import importlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import responses
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from config.celery import app as celery_app
from core.http import signature_of
from messaging import whatsapp
from messaging.whatsapp import console
from sara.llm import openai_client

FIXTURES = Path(__file__).parent / "fixtures"
GRAPH_URL = "https://graph.test/v21.0/106540352242922/messages"

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
HAS_REDIS = bool(settings.REDIS_URL)
# Browser tests drive Debian's Chromium through Playwright; without it they are skipped by name.
CHROMIUM = Path("/usr/bin/chromium")


def pytest_report_header(config: pytest.Config) -> list[str]:
    db = "PostgreSQL" if ON_POSTGRES else "SQLite (tests that need PostgreSQL are skipped)"
    redis = settings.REDIS_URL or "none (tests that need Redis are skipped)"
    return [f"sara: database {db}; redis {redis}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_pg = pytest.mark.skip(
        reason="needs PostgreSQL (set DATABASE_URL): row locks and concurrent transactions"
    )
    skip_redis = pytest.mark.skip(
        reason="needs Redis (set REDIS_URL): shared limiter, broker and real workers"
    )
    skip_browser = pytest.mark.skip(
        reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium): browser test"
    )
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_pg)
        if ("redis" in item.keywords or "worker" in item.keywords) and not HAS_REDIS:
            item.add_marker(skip_redis)
        if "worker" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_pg)
        if "browser" in item.keywords and not CHROMIUM.exists():
            item.add_marker(skip_browser)


@pytest.fixture(autouse=True)
def _eager_tasks_and_clean_outbox(settings: Any) -> Iterator[None]:
    """Tasks run in-process (queued on commit); real workers are started only by worker tests."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = False
    # Password hashing is slow on purpose; tests log staff in often and need no such strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.WHATSAPP_BACKEND = "messaging.whatsapp.console.ConsoleBackend"
    settings.SARA_INTERPRETER = "rules"
    settings.SARA_QUIET_HOURS = ""
    whatsapp._backend.cache_clear()
    console.outbox.clear()
    console.read_receipts.clear()
    yield
    whatsapp._backend.cache_clear()
    console.outbox.clear()
    console.read_receipts.clear()


@pytest.fixture(autouse=True)
def _seeded_keywords_in_transactional_tests(request: pytest.FixtureRequest) -> None:
    """Transactional tests flush every table after each test, the data migration's opt-out
    keywords included: seed them again so every test sees the database a deploy has."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        return
    request.getfixturevalue("transactional_db")
    from compliance.models import OptOutKeyword

    seed = importlib.import_module("compliance.migrations.0002_seed_optout_keywords")
    for keyword in seed.KEYWORDS:
        OptOutKeyword.objects.get_or_create(keyword=keyword)


# Maria's recovery, the conversation most tests follow: a weekday afternoon in Brazil (outside
# quiet hours), her phone, and her open cart of a R$ 297 Python course (discount link at 10 %).
MARIA_NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)
MARIA_PHONE = "+5548999327881"


@pytest.fixture
def frozen_clock() -> Iterator[None]:
    with time_machine.travel(MARIA_NOW, tick=False):
        yield


@pytest.fixture
def conversation(db: None) -> Any:
    """Maria's open recovery of a R$ 297 Python course (discount link at 10 %)."""
    from tests.factories import AbandonmentFactory, ConversationFactory, CustomerFactory

    customer = CustomerFactory(phone=MARIA_PHONE, name="Maria Silva")
    return ConversationFactory(abandonment=AbandonmentFactory(customer=customer))


@pytest.fixture
def capture(django_capture_on_commit_callbacks: Any) -> Any:
    """pytest-django's on-commit capture: `with capture(execute=True):` runs what the block
    queues on commit, as the worker would."""
    return django_capture_on_commit_callbacks


@pytest.fixture
def outbox() -> list:
    """What the console backend "sent": (wamid, OutboundMessage) pairs."""
    return console.outbox


def signed(body: bytes, secret: str) -> dict[str, str]:
    return {"HTTP_X_HUB_SIGNATURE_256": signature_of(secret, body)}


@pytest.fixture
def post_signed(client: Client) -> Callable[..., Any]:
    """POST a JSON body (dict or raw bytes) with a valid X-Hub-Signature-256."""

    def post(url: str, data: Any, *, secret: str | None = None, headers: dict[str, str] | None = None) -> Any:
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        if secret is None:
            secret = (
                settings.WHATSAPP_APP_SECRET if url.endswith("/messages") else settings.PAYMENT_WEBHOOK_SECRET
            )
        return client.post(
            url, body, content_type="application/json", **signed(body, secret), **(headers or {})
        )

    return post


def abandonment_body(**overrides: Any) -> dict[str, Any]:
    """Maria's abandoned cart as the generic abandonment webhook takes it; None removes a field."""
    body = {
        "userId": "user-42",
        "name": "Maria Silva",
        "phone": "+5548999327881",
        "productId": "curso-python",
        "paymentLink": "https://pay.example.com/cart/123",
        "abandonmentId": "ab-1001",
        "value": "297.00",
    } | overrides
    return {key: value for key, value in body.items() if value is not None}


def abandon(post_signed: Callable[..., Any], capture: Any, *, send: bool = True, **overrides: Any) -> Any:
    """Maria's cart posted to the abandonment webhook, its Conversation. The first step goes out on
    commit; with send=False its task is lost (Redis gone, worker killed...)."""
    from recovery.models import Conversation

    with capture(execute=send):
        response = post_signed("/webhook/abandonment", abandonment_body(userId="user-1", **overrides))
    assert response.status_code == 200, response.content
    return Conversation.objects.get(pk=response.json()["conversationId"])


def open_cart(post_signed: Callable[..., Any], capture: Any, external_id: str = "ab-1001") -> Any:
    """Maria abandons a cart of its own product (the first step goes out on commit); its Conversation."""
    from tests.factories import ProductFactory

    ProductFactory(product_id=f"curso-{external_id}", name="Curso de Python")
    return abandon(post_signed, capture, productId=f"curso-{external_id}", abandonmentId=external_id)


def assert_error(response: Any, status: int, code: str) -> Any:
    """The one error shape of SPEC §4; returns its details."""
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details", "traceId"}
    assert error["code"] == code
    assert error["message"]
    assert error["traceId"] == response["X-Request-ID"]
    return error["details"]


def text_body(to: str, body: str) -> dict[str, Any]:
    """The exact Graph body of a free-form text send (links previewed)."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": True, "body": body},
    }


def template_sent(
    name: str,
    *,
    to: str = "+5548999327881",
    parameters: tuple[str, ...] = ("Maria", "Curso de Python"),
    buttons: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The exact Graph body of a pt_BR template send: its body's `parameters`, then a quick-reply
    button per payload in `buttons`."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": "pt_BR"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": text} for text in parameters]},
                *(
                    {
                        "type": "button",
                        "sub_type": "quick_reply",
                        "index": str(index),
                        "parameters": [{"type": "payload", "payload": payload}],
                    }
                    for index, payload in enumerate(buttons)
                ),
            ],
        },
    }


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread, all released together (as concurrent webhooks or two
    workers are); each thread closes its database connection. Returns the results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except BaseException as exc:  # surfaced below, in the test's own thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def post_from_threads(url: str, secret: str, bodies: list[dict[str, Any]]) -> list[Any]:
    """POST each JSON body, signed with `secret`, from its own thread, all released at once;
    returns the responses in order."""

    def post(body: dict[str, Any]) -> Any:
        raw = json.dumps(body).encode()
        return Client().post(url, raw, content_type="application/json", **signed(raw, secret))

    return at_once([functools.partial(post, body) for body in bodies])


def meta_payload(name: str) -> dict[str, Any]:
    """A recorded Meta webhook body from tests/fixtures/whatsapp/<name>.json (a fresh copy)."""
    return copy.deepcopy(json.loads((FIXTURES / "whatsapp" / f"{name}.json").read_text()))


def first_message(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["entry"][0]["changes"][0]["value"]["messages"][0]


def first_status(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["entry"][0]["changes"][0]["value"]["statuses"][0]


@pytest.fixture
def say(post_signed: Callable[..., Any], django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """The customer writes `text` now: a recorded Meta payload (fresh wamid, current — or frozen —
    time), posted signed, the work it queues run on commit. Returns the stored inbound Message."""

    def write(text: str, *, fixture: str = "text", wa_id: str | None = None) -> Any:
        from messaging.models import Message

        payload = meta_payload(fixture)
        message = first_message(payload)
        message["id"] = f"wamid.test.{uuid.uuid4().hex}"
        message["timestamp"] = str(int(timezone.now().timestamp()))
        message["text"]["body"] = text
        if wa_id:
            message["from"] = wa_id
            payload["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = wa_id
        with django_capture_on_commit_callbacks(execute=True):
            assert post_signed("/webhook/messages", payload).status_code == 200
        return Message.objects.get(whatsapp_message_id=message["id"])

    return write


@pytest.fixture
def graph(settings: Any) -> Iterator[responses.RequestsMock]:
    """The Cloud API backend pointed at a `responses` fake of Graph (every mocked call must fire)."""
    settings.WHATSAPP_BACKEND = "messaging.whatsapp.cloud.CloudAPIBackend"
    settings.WHATSAPP_ACCESS_TOKEN = "test-token"
    settings.WHATSAPP_API_BASE_URL = "https://graph.test"
    settings.WHATSAPP_API_VERSION = "v21.0"
    settings.WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
    whatsapp._backend.cache_clear()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock
    whatsapp._backend.cache_clear()


def graph_ok(
    wamid: str = "wamid.HBgNNTU0ODk5OTMyNzg4MRUCABEYEjQ4RDE3NjQ1M0U0QTRBNkI0AA==", to: str = "+5548999327881"
) -> dict:
    """Graph's answer to an accepted send."""
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
        "messages": [{"id": wamid}],
    }


def graph_error(code: int, message: str = "Error", details: str = "", http_status: int = 400) -> dict:
    """Graph's error body (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes)."""
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEf",
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


@pytest.fixture
def openai_fake(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Callable[[httpx.Request], httpx.Response]], list]:
    """Switch to the OpenAI interpreter with the SDK talking to an httpx.MockTransport handler.

    Returns a function that installs a handler and gives back the list of requests seen.
    """
    settings.SARA_INTERPRETER = "openai"
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = "https://openai.test/v1"

    def install(handler: Callable[[httpx.Request], httpx.Response]) -> list:
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return handler(request)

        client = openai_client.build_client(http_client=httpx.Client(transport=httpx.MockTransport(record)))
        monkeypatch.setattr(openai_client, "_default_client", lambda: client)
        return seen

    return install


def openai_completion(content: dict[str, Any] | str, total_tokens: int = 120) -> httpx.Response:
    """A Chat Completions answer in OpenAI's format with the given JSON content."""
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return httpx.Response(
        200,
        json={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1763785200,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": total_tokens - 20,
                "completion_tokens": 20,
                "total_tokens": total_tokens,
            },
        },
    )


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"
