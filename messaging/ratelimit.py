"""A send rate cap per phone-number id shared by every worker process (SPEC §6).

Two steps, because Meta counts requests where they arrive, not where a slot was granted:

1. Pacing. Each send reserves a slot, a moment at which it may leave, at least
   WINDOW_SECONDS / cap after the slot before it, and sleeps until then (no polling; each
   waiting send has a slot of its own). A busy minute goes out as a steady stream rather than a
   burst at the turn of each second.
2. Departure. Between a slot and the request leaving there is work (the gate's read, building
   the request) and, on a loaded machine, a thread that wakes late: two late sends followed by
   two on time bunch up. So right before the request leaves, `depart` records the moment in a
   log of the last WINDOW_SECONDS of departures and, when the log already holds the cap, waits
   until the oldest leaves it. No window of WINDOW_SECONDS then holds more than the cap
   departures, whatever the slots did; the part of a second beyond one covers the time
   between being counted and reaching Graph.

Both live in Redis, on Redis's own clock, so workers on different machines share one budget.
Without Redis (the embedded default) they live in this process.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from functools import cache

import redis
from django.conf import settings

# A tenth of a second over one: on a loaded machine a request reaches Graph up to about 0.1 s
# after it is counted (a thread waiting for the CPU or the GIL between the count and the socket;
# bench/RESULTS.md, "The limiter at Graph"), so departures are counted over a window that much
# longer than the second Meta counts. Slots are spaced by the same window, so the departure log
# only waits for late bunches. The cost: at most cap / 1.1 sends a second (72.7 at 80).
WINDOW_SECONDS = 1.1

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


# KEYS[1]: the id's departure log (a sorted set of µs on Redis's clock).
# ARGV: window µs, cap, this departure's unique member.
# Returns 0 when the departure is recorded, else the µs until the oldest leaves the window.
_DEPART = """
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000000 + tonumber(now[2])
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], t, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, math.floor(tonumber(oldest[2]) + window - t))
"""


class RateLimitTimeout(Exception):
    """No send slot in time, or no way to count one: the send is tried again later."""


@cache
def _redis_scripts(url: str) -> tuple:
    """The reservation and departure scripts of this Redis, on one client (one connection pool)."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    return client.register_script(_RESERVE), client.register_script(_DEPART)


_local_lock = threading.Lock()
_local_slots: dict[str, float] = {}
_local_departures: dict[str, deque[float]] = {}


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
            waited = _redis_scripts(settings.REDIS_URL)[0](
                keys=[key], args=[int(spacing * 1_000_000), int(max_wait * 1_000_000)]
            )
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


def _depart_local(key: str, cap: int) -> float:
    """The same departure log as the Redis script, in this process (seconds to wait, or 0)."""
    with _local_lock:
        now = time.monotonic()
        log = _local_departures.setdefault(key, deque())
        while log and log[0] <= now - WINDOW_SECONDS:
            log.popleft()
        if len(log) < cap:
            log.append(now)
            return 0.0
        return max(log[0] + WINDOW_SECONDS - now, 0.000_001)


def depart(phone_number_id: str, *, limit: int | None = None, max_wait: float = 5.0) -> None:
    """Record a request leaving now, first waiting while the last window already holds the cap.

    Called as late as possible, right before the request goes to Graph: a wait here is a few
    milliseconds (the slots already pace the stream), and the moment recorded is the one Meta
    will count, give or take the network.
    """
    cap = limit or settings.WHATSAPP_MPS
    key = f"sara:send-departures:{phone_number_id}"
    deadline = time.monotonic() + max_wait
    while True:
        if settings.REDIS_URL:
            try:
                waited = _redis_scripts(settings.REDIS_URL)[1](
                    keys=[key], args=[int(WINDOW_SECONDS * 1_000_000), cap, uuid.uuid4().hex]
                )
            except redis.RedisError as exc:
                raise RateLimitTimeout(f"Rate limiter unavailable: {exc}") from exc
            wait = int(waited) / 1_000_000
        else:
            wait = _depart_local(key, cap)
        if wait <= 0:
            return
        if time.monotonic() + wait > deadline:
            raise RateLimitTimeout(f"No departure for {phone_number_id} within {max_wait}s.")
        time.sleep(wait)
