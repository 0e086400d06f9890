"""Sara's own publish on Redis writes the message Celery's `apply_async` writes.

A Celery upgrade that changes its message makes this fail before a worker misreads one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import redis
import sentry_sdk

from config.celery import app as celery_app
from core import broker, tracing
from messaging.tasks import process_inbound, send_message

pytestmark = pytest.mark.redis

# Fresh for every message, or specific to the process that published it.
PER_MESSAGE_HEADERS = {"id", "root_id", "origin"}
PER_MESSAGE_PROPERTIES = {"correlation_id", "delivery_tag", "reply_to"}


@pytest.fixture
def broker_queue() -> Iterator[redis.Redis]:
    """Tasks published to the Redis broker for real, read back from its lists."""
    client = redis.Redis.from_url(celery_app.conf.broker_url)
    client.delete("celery", "send")
    celery_app.conf.task_always_eager = False
    token = tracing.set_current("trace-publish-1")
    # As deployed without SENTRY_DSN (an earlier test may have turned Sentry on in this process).
    scopes = (sentry_sdk.get_global_scope(), sentry_sdk.get_isolation_scope(), sentry_sdk.get_current_scope())
    clients = [scope.client for scope in scopes]
    for scope in scopes:
        scope.set_client(None)
    yield client
    for scope, saved in zip(scopes, clients, strict=True):
        scope.set_client(saved)
    tracing._trace_id.reset(token)
    client.delete("celery", "send")


def _stored(client: redis.Redis, queue: str) -> list[dict]:
    # LPUSH adds at the head and workers take from the tail: oldest last in LRANGE.
    return [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]


@pytest.mark.parametrize(("task", "queue"), [(process_inbound, "celery"), (send_message, "send")])
def test_the_message_is_the_one_celery_sends(broker_queue, task, queue) -> None:
    task.apply_async((42,))
    broker.publish(task, 42)

    celerys, ours = _stored(broker_queue, queue)

    assert set(ours) == set(celerys)
    assert {k: v for k, v in ours["headers"].items() if k not in PER_MESSAGE_HEADERS} == {
        k: v for k, v in celerys["headers"].items() if k not in PER_MESSAGE_HEADERS
    }
    assert ours["headers"]["root_id"] == ours["headers"]["id"] == ours["properties"]["correlation_id"]
    assert ours["headers"]["sara_trace_id"] == "trace-publish-1"
    assert {k: v for k, v in ours["properties"].items() if k not in PER_MESSAGE_PROPERTIES} == {
        k: v for k, v in celerys["properties"].items() if k not in PER_MESSAGE_PROPERTIES
    }
    assert json.loads(base64.b64decode(ours["body"])) == json.loads(base64.b64decode(celerys["body"]))
    assert (ours["content-type"], ours["content-encoding"]) == (
        celerys["content-type"],
        celerys["content-encoding"],
    )


def test_a_batch_is_stored_in_its_order(broker_queue) -> None:
    broker.publish_each(process_inbound, [(1,), (2,), (3,)])

    stored = _stored(broker_queue, "celery")

    assert [json.loads(base64.b64decode(m["body"]))[0] for m in stored] == [[1], [2], [3]]
    assert len({m["headers"]["id"] for m in stored}) == 3
