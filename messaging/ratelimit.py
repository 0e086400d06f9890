"""A send rate cap per phone-number id shared by every worker process (SPEC §6).

Sends are spaced evenly: each reserves a slot, a moment at which it may leave, at least
WINDOW_SECONDS / cap after the slot before it, and sleeps until then (no polling; each waiting
send has a slot of its own). So no second, wherever it starts, holds more than the cap, and a
busy minute goes out as a steady stream rather than a burst at the turn of each second (fixed
one-second windows let twice the cap through around that turn). Slots are reserved in Redis,
on Redis's own clock, so workers on different machines share one budget. Without Redis (the
embedded default) they are reserved in this process.
"""

from __future__ import annotations

import threading
import time
from functools import cache

import redis
from django.conf import settings

# A little over a second: a request leaves a few milliseconds after its slot and Meta counts
# arrivals, so the spacing leaves room for one late send in any second.
WINDOW_SECONDS = 1.02

# KEYS[1]: the id's latest slot (µs on Redis's clock). ARGV: spacing µs, longest wait µs.
# Returns the µs to wait before sending, or -1 when the slot would be too far off.
_RESERVE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000000 + tonumber(now[2])
local slot = math.max(t, tonumber(redis.call('GET', KEYS[1]) or 0) + tonumber(ARGV[1]))
if slot - t > tonumber(ARGV[2]) then return -1 end
redis.call('SET', KEYS[1], string.format('%d', slot), 'PX', math.ceil((slot - t) / 1000) + 2000)
return math.floor(slot - t)
"""


class RateLimitTimeout(Exception):
    """No send slot in time, or no way to count one: the send is tried again later."""


@cache
def _redis_script():  # noqa: ANN202 - redis' Script type is private
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    return client.register_script(_RESERVE)


_local_lock = threading.Lock()
_local_slots: dict[str, float] = {}


def _reserve_local(key: str, spacing: float, max_wait: float) -> float:
    """The same reservation as the Redis script, in this process (seconds to wait, or -1)."""
    with _local_lock:
        now = time.monotonic()
        slot = max(now, _local_slots.get(key, 0.0) + spacing)
        if slot - now > max_wait:
            return -1.0
        _local_slots[key] = slot
    return slot - now


def reserve(phone_number_id: str, *, limit: int | None = None, max_wait: float = 30.0) -> float:
    """Reserve this process's next send slot for the phone-number id: the seconds until it opens."""
    spacing = WINDOW_SECONDS / (limit or settings.WHATSAPP_MPS)
    key = f"sara:send-slot:{phone_number_id}"
    if settings.REDIS_URL:
        try:
            waited = _redis_script()(keys=[key], args=[int(spacing * 1_000_000), int(max_wait * 1_000_000)])
        except redis.RedisError as exc:
            # Without the shared count no slot can be granted safely; the send waits instead.
            raise RateLimitTimeout(f"Rate limiter unavailable: {exc}") from exc
        wait = int(waited) / 1_000_000
    else:
        wait = _reserve_local(key, spacing, max_wait)
    if wait < 0:
        raise RateLimitTimeout(f"No send slot for {phone_number_id} within {max_wait}s.")
    return wait


def acquire(phone_number_id: str, *, limit: int | None = None, max_wait: float = 30.0) -> None:
    """Block until this process may send one message for the phone-number id."""
    wait = reserve(phone_number_id, limit=limit, max_wait=max_wait)
    if wait > 0:
        time.sleep(wait)
