"""Best-effort ordering of one customer's messages across workers (a Redis lock per sender).

Correctness never rests on it: the message and conversation row locks make every effect
exactly once. The lock only keeps a customer's second message from being read by the AI
while the first one's answer is still being written, so replies follow the conversation.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

LOCK_TTL_SECONDS = 60  # longer than one processing; a dead worker's lock expires by itself
WAIT_SECONDS = 30

_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)


@contextmanager
def sender_turn(sender: str) -> Iterator[bool]:
    """Hold the turn of one sender's messages; go ahead anyway if it cannot be had in time.

    Yields whether another message held the turn first: what the caller read before may have
    changed meanwhile (it is the only way it could, as far as this lock goes).
    """
    if not sender:
        yield False
        return
    if settings.REDIS_URL:
        lock = _client().lock(f"sara:turn:{sender}", timeout=LOCK_TTL_SECONDS, blocking_timeout=WAIT_SECONDS)
        waited = True
        try:
            acquired = lock.acquire(blocking=False)
            waited = not acquired
            if not acquired:
                acquired = lock.acquire()
        except redis.RedisError:
            logger.warning("sender lock unavailable; processing without it")
            acquired = False
        try:
            yield waited
        finally:
            if acquired:
                # Expired or Redis gone: the TTL cleans up.
                with contextlib.suppress(redis.RedisError):
                    lock.release()
        return
    with _local_guard:
        local = _local_locks.setdefault(sender, threading.Lock())
    waited = not local.acquire(blocking=False)
    if waited:
        local.acquire()
    try:
        yield waited
    finally:
        local.release()
