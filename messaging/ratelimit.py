"""A send rate cap per phone-number id shared by every worker process (SPEC §6).

Every send reserves a slot, a moment at which it may leave, such that no window of WINDOW
seconds holds more than the cap: a sliding window, so no second, wherever it starts, sees more
than WHATSAPP_MPS sends (fixed one-second windows would let twice the cap through around the
turn of a second). The caller sleeps until its slot: no polling, and each waiting send has a
slot of its own. Slots are kept in a Redis sorted set, on Redis's own clock, so workers on
different machines share one budget. Without Redis (the embedded default) they are kept in
this process.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from functools import cache

import redis
from django.conf import settings

# A little over a second: a request leaves a few milliseconds after its slot, and Meta counts
# arrivals, so slots one second apart could arrive closer than a second.
WINDOW_SECONDS = 1.02
_WINDOW_US = int(WINDOW_SECONDS * 1_000_000)

# KEYS[1]: the id's slots (scores: µs on Redis's clock). ARGV: cap, window µs, longest wait µs,
# a unique member. Returns the µs to wait before sending, or -1 when the slot is too far off.
_RESERVE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000000 + tonumber(now[2])
local cap, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - window)
local slot = t
local count = redis.call('ZCARD', KEYS[1])
if count > 0 then
  slot = math.max(slot, tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]))
  if count >= cap then
    -- The cap-th latest slot must have left the window before this one.
    local nth = redis.call('ZRANGE', KEYS[1], count - cap, count - cap, 'WITHSCORES')
    slot = math.max(slot, tonumber(nth[2]) + window)
  end
end
if slot - t > tonumber(ARGV[3]) then return -1 end
redis.call('ZADD', KEYS[1], slot, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil((slot - t + window) / 1000) + 1000)
return math.floor(slot - t)
"""


class RateLimitTimeout(Exception):
    """No send slot in time, or no way to count one: the send is tried again later."""


@cache
def _redis_script():  # noqa: ANN202 - redis' Script type is private
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    return client.register_script(_RESERVE)


_local_lock = threading.Lock()
_local_slots: dict[str, collections.deque[float]] = {}


def _reserve_local(key: str, cap: int, max_wait: float) -> float:
    """The same reservation as the Redis script, in this process (seconds to wait, or -1)."""
    now = time.monotonic()
    with _local_lock:
        slots = _local_slots.setdefault(key, collections.deque())
        while slots and slots[0] <= now - WINDOW_SECONDS:
            slots.popleft()
        slot = max(now, slots[-1]) if slots else now
        if len(slots) >= cap:
            slot = max(slot, slots[len(slots) - cap] + WINDOW_SECONDS)
        if slot - now > max_wait:
            return -1.0
        slots.append(slot)
    return slot - now


def acquire(phone_number_id: str, *, limit: int | None = None, max_wait: float = 30.0) -> None:
    """Block until this process may send one message for the phone-number id."""
    cap = limit or settings.WHATSAPP_MPS
    key = f"sara:send-slots:{phone_number_id}"
    if settings.REDIS_URL:
        try:
            waited = _redis_script()(
                keys=[key], args=[cap, _WINDOW_US, int(max_wait * 1_000_000), uuid.uuid4().hex]
            )
        except redis.RedisError as exc:
            # Without the shared count no slot can be granted safely; the send waits instead.
            raise RateLimitTimeout(f"Rate limiter unavailable: {exc}") from exc
        wait = int(waited) / 1_000_000
    else:
        wait = _reserve_local(key, cap, max_wait)
    if wait < 0:
        raise RateLimitTimeout(f"No send slot for {phone_number_id} within {max_wait}s.")
    if wait > 0:
        time.sleep(wait)
