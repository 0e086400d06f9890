"""A Celery app for bench/broker_recovery.py: one task that records when it starts, then waits.

Delivery settings are Sara's (config/settings.py): acks_late, reject_on_worker_lost, prefetch 1,
confirm_publish on RabbitMQ, a visibility timeout on Redis (short here: BENCH_VISIBILITY_TIMEOUT).
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

BROKER = os.environ["BENCH_BROKER"]
# A queue of its own per round: a killed worker's tasks from one round never reach the next.
QUEUE = os.environ.get("BENCH_QUEUE", "bench_broker")
STARTED = "bench:broker:started"

app = Celery("bench_broker", broker=BROKER)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    broker_transport_options=(
        {"confirm_publish": True}
        if BROKER.startswith("amqp")
        else {"visibility_timeout": int(os.environ.get("BENCH_VISIBILITY_TIMEOUT", "10"))}
    ),
)
_record = redis.Redis.from_url(os.environ["BENCH_RECORD_REDIS"])


@app.task(name="bench.hold")
def hold(n: int, seconds: float) -> None:
    _record.rpush(STARTED, f"{n} {time.time()}")
    time.sleep(seconds)
