"""A send rate cap per phone-number id shared by every worker process (SPEC §6).

Fixed one-second windows counted in Redis, on Redis's own clock, so workers on different
machines agree on which second a send belongs to. Without Redis (the embedded default) the
count is kept in this process.
"""

from __future__ import annotations

import threading
import time
from functools import cache

import redis
from django.conf import settings

# Returns 0 when the send may go now, else the milliseconds until the next window opens.
_ACQUIRE = """
local now = redis.call('TIME')
local second = tonumber(now[1])
local key = KEYS[1] .. ':' .. second
local count = redis.call('INCR', key)
if count == 1 then redis.call('EXPIRE', key, 2) end
if count <= tonumber(ARGV[1]) then return 0 end
return 1000 - math.floor(tonumber(now[2]) / 1000)
"""


class RateLimitTimeout(Exception):
    """No send slot in time, or no way to count one: the send is tried again later."""


@cache
def _redis_script():  # noqa: ANN202 - redis' Script type is private
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    return client.register_script(_ACQUIRE)


_local_lock = threading.Lock()
_local_counts: dict[tuple[str, int], int] = {}


def _try_local(key: str, limit: int) -> float:
    now = time.time()
    second = int(now)
    with _local_lock:
        for stale in [k for k in _local_counts if k[1] < second]:
            del _local_counts[stale]
        count = _local_counts.get((key, second), 0) + 1
        _local_counts[(key, second)] = count
    return 0.0 if count <= limit else (second + 1 - now)


def acquire(phone_number_id: str, *, limit: int | None = None, max_wait: float = 30.0) -> None:
    """Block until this process may send one message for the phone-number id."""
    limit = limit or settings.WHATSAPP_MPS
    key = f"sara:mps:{phone_number_id}"
    deadline = time.monotonic() + max_wait
    while True:
        if settings.REDIS_URL:
            try:
                wait = int(_redis_script()(keys=[key], args=[limit])) / 1000
            except redis.RedisError as exc:
                # Without the shared count no slot can be granted safely; the send waits instead.
                raise RateLimitTimeout(f"Rate limiter unavailable: {exc}") from exc
        else:
            wait = _try_local(key, limit)
        if wait <= 0:
            return
        if time.monotonic() + wait > deadline:
            raise RateLimitTimeout(f"No send slot for {phone_number_id} within {max_wait}s.")
        time.sleep(wait)
