"""Celery's broker as operators see it: is it there, and how much work waits in each queue.

The broker is Redis or RabbitMQ (CELERY_BROKER_URL); kombu speaks to either, so the probe and
the queue-depth gauge read whichever one is configured, through the same calls.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings
from kombu import Connection
from kombu.exceptions import OperationalError

if TYPE_CHECKING:
    from celery import Task

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
                # The transport's channel; the stubs only know the abstract StdChannel.
                channel: Any = conn.channel()
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


def publish_each(task: Task[Any, Any], calls: list[tuple[Any, ...]]) -> None:
    """Queue one `task(*args)` per entry of `calls`, in that order, through one producer: on
    Redis its publishes go out together in one pipeline (each publish on its own costs about
    a millisecond of CPU, more than storing the message)."""
    if len(calls) == 1:
        task.apply_async(calls[0])
        return
    with task.app.producer_or_acquire() as producer, producer.batch():
        for args in calls:
            task.apply_async(args, producer=producer)


def task(name: str) -> Task[Any, Any]:
    """One of the project's tasks by its Celery name.

    A service queues its app's task by name, so it imports no task module (the task module
    imports the service): no circle between modules. Every app's `AppConfig.ready` imports
    its task module, so the name is registered in the web process as in the worker.
    """
    from celery import current_app

    return current_app.tasks[name]
