"""Celery's broker as operators see it: is it there, and how much work waits in each queue.

The broker is Redis or RabbitMQ (CELERY_BROKER_URL); kombu speaks to either, so the probe and
the queue-depth gauge read whichever one is configured, through the same calls.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

import redis
import sentry_sdk
from django.conf import settings
from kombu import Connection
from kombu.exceptions import OperationalError

from core import tracing

if TYPE_CHECKING:
    from celery import Celery, Task

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 2


def broker_kind() -> str:
    """ "redis", "rabbitmq" or "memory" (no broker: tasks run in-process)."""
    url = settings.CELERY_BROKER_URL
    if url.startswith(("amqp://", "amqps://", "pyamqp://")):
        return "rabbitmq"
    if url.startswith(("redis://", "rediss://", "unix://")):
        return "redis"
    return "memory"


def _connection() -> Connection:
    options = {"socket_timeout": TIMEOUT_SECONDS} if broker_kind() == "redis" else {}
    return Connection(settings.CELERY_BROKER_URL, connect_timeout=TIMEOUT_SECONDS, transport_options=options)


def broker_check() -> str:
    """ "ok", or "down: <what failed>" for /ready."""
    try:
        with _connection() as conn:
            conn.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
    except (OperationalError, OSError, TimeoutError) as exc:
        return f"down: {exc.__class__.__name__}"
    return "ok"


def queue_depths(queues: list[str]) -> dict[str, int] | None:
    """Tasks waiting (not yet handed to a worker) per queue; None when the broker is away.

    A queue the broker does not know yet has nothing in it: Redis drops an empty list, and
    RabbitMQ has no queue until a worker or publisher declared it.
    """
    depths: dict[str, int] = {}
    try:
        with _connection() as conn:
            conn.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
            for queue in queues:
                # A passive declare of a missing queue closes RabbitMQ's channel: one per queue.
                channel = conn.channel()
                try:
                    depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except conn.channel_errors:
                    depths[queue] = 0
                finally:
                    try:
                        channel.close()
                    except conn.connection_errors + conn.channel_errors:
                        pass
    except (OperationalError, OSError, TimeoutError) as exc:
        logger.warning("queue depth: broker unavailable (%s)", exc.__class__.__name__)
        return None
    return depths


# --- Publishing ------------------------------------------------------------------------------
# Celery's own publish (`delay()`) costs about half a millisecond of CPU: its routing, its
# settings read through Django's, the message built field by field, kombu's producer and
# its declarations; the LPUSH that is the publish on Redis costs a tenth of that
# (bench/RESULTS.md). Sara publishes the same two tasks all day — process_inbound for every
# inbound message (in the web request, before Meta's 200) and send_message for every message
# written — each with one id, so on Redis it writes Celery's message itself: the same
# protocol-2 message `apply_async` sends (tests/ops/test_broker_publish.py compares the two),
# with the trace id header Sara's tasks read. Anywhere else it is Celery's `apply_async`:
# RabbitMQ (its publisher confirms), eager tasks (the embedded mode, tests), and with Sentry on,
# whose Celery integration adds its trace headers to what `apply_async` publishes.


def publish(task: Task, *args: Any) -> None:
    """Queue `task(*args)` for a worker."""
    publish_each(task, [args])


def publish_each(task: Task, calls: list[tuple[Any, ...]]) -> None:
    """Queue one `task(*args)` per entry of `calls`, in that order; on Redis, in one round trip."""
    app = task.app
    url = app.conf.broker_url or ""
    if app.conf.task_always_eager or not url.startswith("redis://") or sentry_sdk.get_client().is_active():
        if len(calls) == 1:
            task.apply_async(calls[0])
            return
        with app.producer_or_acquire() as producer:
            for args in calls:
                task.apply_async(args, producer=producer)
        return
    queue = _queue_of(app, task.name)
    messages = [json.dumps(task_message(task, args, queue=queue)) for args in calls]
    _redis(url).lpush(queue, *messages)


def task_message(task: Task, args: tuple[Any, ...], *, queue: str) -> dict[str, Any]:
    """Celery's protocol-2 message for `task(*args)` as kombu's Redis transport stores it."""
    app = task.app
    task_id = str(uuid.uuid4())
    headers: dict[str, Any] = {
        "lang": "py",
        "task": task.name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [app.conf.task_time_limit, app.conf.task_soft_time_limit],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr(tuple(args)),
        "kwargsrepr": "{}",
        "origin": _origin(),
        "ignore_result": task.ignore_result,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    trace = tracing.current()
    if trace:
        headers[tracing.HEADER] = trace
    body = json.dumps([list(args), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    return {
        "body": base64.b64encode(body.encode()).decode("ascii"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,  # persistent
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }


@functools.cache
def _origin() -> str:
    from celery.utils.nodenames import anon_nodename

    return anon_nodename()


@functools.cache
def _queue_of(app: Celery, task_name: str) -> str:
    """The queue Celery's router sends this task to (CELERY_TASK_ROUTES)."""
    return app.amqp.router.route({}, task_name)["queue"].name


@functools.cache
def _redis(url: str) -> redis.Redis:
    # One client per broker URL and process: thread-safe, its connections pooled.
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS * 2)
