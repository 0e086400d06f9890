"""kombu's Redis transport, with one Redis client object per channel for its plain commands.

kombu builds a new `redis.Redis` client for every command it sends outside its event loop:
every publish, and, with `acks_late`, the bookkeeping of every task delivered (kept in the
`unacked` hash until its ack) and of every ack. Building a client (its table of response
callbacks) cost more CPU than the command itself: about a tenth of a worker's CPU per task
(bench/RESULTS.md). A client is only a handle on the channel's connection pool and is
thread-safe, so one per channel serves every thread. `install()` (config/celery.py) makes it
what kombu uses for `redis://` URLs; everything else is kombu's own.
"""

from __future__ import annotations

from typing import Any

from kombu import transport
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _plain_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            # The event loop's client (BRPOP, its own connection pool) stays kombu's.
            return super()._create_client(asynchronous=True)  # type: ignore[misc]  # kombu's Channel has it; its stubs do not
        if self._plain_client is None:
            # Two threads may both build one the first time; either serves.
            self._plain_client = super()._create_client()  # type: ignore[misc]  # as above
        return self._plain_client


class Transport(kombu_redis.Transport):
    Channel = Channel


def install() -> None:
    """Use this transport for every `redis://` broker URL of the process (kombu's alias table)."""
    transport.TRANSPORT_ALIASES["redis"] = f"{__name__}:Transport"
