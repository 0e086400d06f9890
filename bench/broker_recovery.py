"""Benchmark — how soon a SIGKILLed worker's in-flight tasks run again, on Redis and on RabbitMQ.

    .venv/bin/python bench/broker_recovery.py [--tasks 4] [--visibility-timeout 10] [--rounds 2]

A worker (threads pool, Sara's delivery settings: acks_late, reject_on_worker_lost, prefetch 1)
takes N long tasks; once all N have started, a standby worker is started and, when it is
ready, the first is killed with SIGKILL. Reported per broker: seconds from the kill until each
task started again on the standby (max and median), and the standby's start-up time. On Redis a task
comes back when the visibility timeout has passed (Sara runs with 600 s; the bench uses a
short one, --visibility-timeout); on RabbitMQ when the dead worker's connection drops.
RabbitMQ runs in a vhost of its own (created and deleted with rabbitmqctl). Bounded: each
round gives up after the visibility timeout + 150 s (kombu looks for
unacknowledged Redis tasks only every ≈ 100 s).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # bench.broker_app, for the workers too

import common

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
RABBITMQ = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
VHOST = f"sara-bench-{os.getpid()}"
STARTED = "bench:broker:started"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def started(record: redis.Redis) -> list[tuple[int, float]]:
    return [(int(n), float(t)) for n, t in (item.decode().split() for item in record.lrange(STARTED, 0, -1))]


def start_worker(
    broker: str, name: str, visibility: int, concurrency: int, queue: str
) -> tuple[subprocess.Popen, float]:
    began = time.time()
    proc = common.start(
        name,
        [str(common.BIN / "celery"), "-A", "bench.broker_app", "worker", "--pool", "threads",
         "--concurrency", str(concurrency), "-l", "info", "-n", f"{name}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        {"BENCH_BROKER": broker, "BENCH_RECORD_REDIS": REDIS_URL, "BENCH_VISIBILITY_TIMEOUT": str(visibility),
         "BENCH_QUEUE": queue},
    )  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        if "ready." in (common.OUT / f"{name}.log").read_text(errors="replace"):
            return proc, time.time() - began
        time.sleep(0.1)
    raise SystemExit(f"{name} not ready after 60 s; see {common.OUT / name}.log")


def round_on(broker: str, kind: str, *, tasks: int, visibility: int, queue: str) -> dict[str, float]:
    os.environ["BENCH_BROKER"] = broker
    os.environ["BENCH_QUEUE"] = queue
    os.environ["BENCH_RECORD_REDIS"] = REDIS_URL
    sys.modules.pop("bench.broker_app", None)
    from bench.broker_app import app, hold

    record = redis.Redis.from_url(REDIS_URL)
    record.delete(STARTED)
    with app.connection_for_write() as conn:
        app.amqp.queues[app.conf.task_default_queue].bind(conn.default_channel).declare()
        conn.default_channel.queue_purge(app.conf.task_default_queue)
    first, _ = start_worker(broker, f"recovery-{kind}-1", visibility, tasks, queue)
    for n in range(tasks):
        hold.delay(n, 3600)  # longer than the round: only a redelivery makes it start twice
    deadline = time.time() + 60
    while len(started(record)) < tasks and time.time() < deadline:
        time.sleep(0.05)
    assert len(started(record)) == tasks, "the first worker never took every task"

    # A standby worker is already up, as the other workers of a deploy are: what is measured is
    # the broker handing the tasks back, not a worker's start-up (slow on a loaded machine).
    second, startup = start_worker(broker, f"recovery-{kind}-2", visibility, tasks, queue)
    killed_at = time.time()
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    deadline = time.time() + visibility + 150  # kombu's restore sweep runs every ≈ 100 s
    while len(started(record)) < 2 * tasks and time.time() < deadline:
        time.sleep(0.05)
    again = [t - killed_at for _, t in started(record)[tasks:]]
    os.killpg(second.pid, signal.SIGKILL)
    second.wait(timeout=10)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(app.conf.task_default_queue)
    record.delete(STARTED)
    return {
        "rerun": len(again),
        "max_s": round(max(again), 2) if again else float("nan"),
        "median_s": round(statistics.median(again), 2) if again else float("nan"),
        "worker_startup_s": round(startup, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--visibility-timeout", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    rabbitmqctl("add_vhost", VHOST)
    try:
        rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
        brokers = {"redis": REDIS_URL, "rabbitmq": f"{RABBITMQ}/{VHOST}"}
        results: dict[str, list[dict[str, float]]] = {kind: [] for kind in brokers}
        for n in range(args.rounds):
            for kind, url in brokers.items():
                queue = f"bench_broker_{os.getpid()}_{n}"
                result = round_on(
                    url, kind, tasks=args.tasks, visibility=args.visibility_timeout, queue=queue
                )
                results[kind].append(result)
                print(kind, result, flush=True)
    finally:
        rabbitmqctl("delete_vhost", VHOST)
    common.save(
        "broker_recovery",
        {"machine": common.machine(), "visibility_timeout_s": args.visibility_timeout, "results": results},
    )


if __name__ == "__main__":
    main()
