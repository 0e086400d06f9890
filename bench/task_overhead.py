"""Celery's own CPU per task in a real worker: tasks that do almost nothing, on either broker.

    .venv/bin/python bench/task_overhead.py [--n 3000]
    BENCH_BROKER_URL=amqp://guest:guest@127.0.0.1:5672/<vhost> .venv/bin/python bench/task_overhead.py

Queues `send_message` for ids that do not exist (the claim, one UPDATE, finds no row) to a
worker started as deployed (threads pool, 50 threads) and divides the worker's CPU (from /proc)
by the tasks run: what fetching, acknowledging and running a task costs besides its own work.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from percall_worker import process_cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    common.setup_django()
    import redis
    from kombu import Connection

    from messaging.tasks import send_message

    client = redis.Redis.from_url(common.ENV["REDIS_URL"])
    client.flushdb()
    broker = common.ENV["CELERY_BROKER_URL"] or common.ENV["REDIS_URL"]
    send_message.app.control.purge()

    def run(count: int) -> None:
        with send_message.app.producer_or_acquire() as producer:
            for i in range(count):
                send_message.apply_async((10**12 + i,), producer=producer)
        while True:
            if broker.startswith("redis"):
                waiting = client.llen("send") + client.hlen("unacked")
            else:
                with Connection(broker) as conn:
                    waiting = conn.channel().queue_declare(queue="send", passive=True).message_count
            if not waiting:
                return
            time.sleep(0.1)

    worker = common.start_worker(concurrency=50, name="task-overhead")
    run(200)
    time.sleep(1)
    cpu0, started = process_cpu(worker.pid), time.time()
    run(args.n)
    cpu = process_cpu(worker.pid) - cpu0
    common.stop(worker)
    result = {
        "broker": "rabbitmq" if broker.startswith("amqp") else "redis",
        "n": args.n,
        "cpu_ms_per_task": round(1000 * cpu / args.n, 3),
        "seconds": round(time.time() - started, 1),
        "load": os.getloadavg(),
    }
    print(f"{result['broker']}: {result['cpu_ms_per_task']} ms of worker CPU per task ({args.n} tasks)")
    common.save(f"task-overhead-{result['broker']}", result)


if __name__ == "__main__":
    main()
