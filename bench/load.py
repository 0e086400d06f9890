"""A paced load generator: POST prepared bodies at a fixed rate, on loopback, and time each one.

Threads share one schedule (request i is due at start + i / rate); each opens a connection per
request, as gunicorn's sync workers close it after answering. With enough threads the offered
rate holds even when answers slow down; the rate actually achieved is reported all the same.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from dataclasses import dataclass


@dataclass
class Sent:
    index: int
    started: float  # wall clock (time.time()) when the request was sent
    latency: float  # seconds until the whole answer was read
    status: int


def post_paced(
    port: int,
    path: str,
    bodies: list[tuple[bytes, dict[str, str]]],
    rate: float,
    threads: int = 32,
    timeout: float = 30.0,
) -> list[Sent]:
    """Send every body once, body i at start + i / rate; returns one Sent per body, in order."""
    results: list[Sent | None] = [None] * len(bodies)
    counter = itertools.count()
    lock = threading.Lock()
    start = time.monotonic() + 0.2
    wall_offset = time.time() - time.monotonic()

    def run() -> None:
        while True:
            with lock:
                i = next(counter)
            if i >= len(bodies):
                return
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body, headers = bodies[i]
            began = time.monotonic()
            status = 0
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
                response = conn.getresponse()
                response.read()
                status = response.status
                conn.close()
            except OSError:
                status = -1
            results[i] = Sent(i, began + wall_offset, time.monotonic() - began, status)

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=len(bodies) / rate + timeout + 60)
    return [r if r is not None else Sent(i, 0.0, 0.0, -2) for i, r in enumerate(results)]
