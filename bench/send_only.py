"""Supplement to benchmark 3 — the send path alone: 3,000 first templates already queued.

    .venv/bin/python bench/send_only.py [--carts 3000] [--concurrency 100] [--worker-env K=V]

The abandonment webhooks are replayed in this process first (no HTTP, no worker running), so
3,000 `send_message` tasks wait in Redis; then one worker starts and sends them through the
shared limiter to the Graph fake (300 ms, no status webhooks). Nothing else competes for the
CPU, so this shows what the worker alone can send, whether Graph ever receives more than 80
in one second, and — from a py-spy dump taken 12 s in — what the worker's threads are doing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import burst
import common
import percall
import pyspy


def thread_states(pid: int) -> dict[str, int]:
    """What each thread of the worker is doing now: the innermost frame that tells."""
    dump = subprocess.run(
        [pyspy.binary(), "dump", "--pid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    telling = (
        ("_getconn", "waiting for a pooled database connection"),
        ("ratelimit.py", "waiting for a send slot (limiter)"),
        ("Session.post", "in the Graph call"),
        ("Cursor.execute", "running SQL"),
        ("Redis", "talking to Redis"),
    )
    states: Counter[str] = Counter()
    for block in dump.split("\nThread ")[1:]:
        frames = [line.strip() for line in block.splitlines()[1:] if line.strip()]
        if not any("send_message" in f for f in frames):
            continue  # idle pool threads, the consumer loop, the pools' own threads
        state = next((label for key, label in telling if any(key in f for f in frames)), "other")
        states[state] += 1
    return dict(states.most_common())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--carts", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--max-seconds", type=float, default=180)
    parser.add_argument(
        "--cpu-hog",
        type=int,
        default=0,
        metavar="N",
        help="N busy processes competing for the CPU while the worker sends (a loaded machine)",
    )
    parser.add_argument(
        "--fake-priority",
        action="store_true",
        help="run the Graph fake ahead of everything else, so its arrival stamps are not delayed by the load",
    )
    args = parser.parse_args()

    common.setup_django()
    common.reset_data()
    from django.core.wsgi import get_wsgi_application

    common.python_course(description="")
    carts = [body for body, _ in burst.bodies(args.carts, str(int(time.time()) % 100000))]
    percall.measure(
        get_wsgi_application(),
        "queued",
        [("POST", "/webhook/abandonment", body) for body in carts],
        common.PAYMENT_SECRET,
    )

    common.start_fakes(status_webhook=False, fake_priority=args.fake_priority)
    worker_env = dict(item.split("=", 1) for item in args.worker_env)
    # Started like the other processes, so that they are stopped whatever happens to this run.
    hogs = [
        common.start(f"cpu-hog-{i}", [sys.executable, "-c", "while True: pass"]) for i in range(args.cpu_hog)
    ]
    started = time.time()
    worker = common.start_worker(args.concurrency, extra_env=worker_env)
    time.sleep(12)
    dump_started = time.time()
    states = thread_states(worker.pid)
    dump_seconds = time.time() - dump_started
    deadline = started + args.max_seconds
    while (
        time.time() < deadline
        and common.get_json(f"http://127.0.0.1:{common.GRAPH_PORT}/stats")["sends"] < args.carts
    ):
        time.sleep(1)
    sends = common.get_json(f"http://127.0.0.1:{common.GRAPH_PORT}/sends")
    common.stop(worker)
    for hog in hogs:
        hog.kill()

    arrivals = sorted(s["arrived"] for s in sends)
    per_second = Counter(int(a) for a in arrivals)
    counts = [per_second.get(sec, 0) for sec in range(int(arrivals[0]), int(arrivals[-1]) + 1)]
    window_max, j, worst = 0, 0, (0, 0)
    for i, t in enumerate(arrivals):
        while arrivals[j] <= t - 1.0:
            j += 1
        if i - j + 1 > window_max:
            window_max, worst = i - j + 1, (j, i)
    result = {
        "config": {
            "carts": args.carts,
            "concurrency": args.concurrency,
            "worker_env": worker_env,
            "cpu_hog": args.cpu_hog,
            "fake_priority": args.fake_priority,
        },
        "sent": len(sends),
        "recipients_sent_twice": sum(1 for c in Counter(s["to"] for s in sends).values() if c > 1),
        "seconds": round(arrivals[-1] - arrivals[0], 1),
        "sends_per_second_mean": round(len(arrivals) / (arrivals[-1] - arrivals[0]), 1),
        "sends_per_second_max": max(counts),
        "sends_in_any_1s_window_max": window_max,
        "seconds_over_80": sum(1 for c in counts if c > burst.MPS),
        "sending_threads_12s_in": states,
        # The worst window's arrivals, ms after its first: where the sends bunched up.
        "worst_window_ms": [
            round((a - arrivals[worst[0]]) * 1000) for a in arrivals[worst[0] : worst[1] + 1]
        ],
        "py_spy_dump_seconds": round(dump_seconds, 1),
        "sends_per_second": counts,
    }
    common.save("send_only", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
