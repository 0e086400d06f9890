"""Benchmark 3 — abandonment burst: 5,000 abandoned carts in a minute, every first template sent.

    .venv/bin/python bench/burst.py [--carts 5000] [--seconds 60] [--web-workers 4] [--concurrency 100]

The checkout posts 5,000 signed abandonment webhooks at an even pace over a minute (83/s, just
above Meta's default 80 messages/s). Each opens a recovery and queues its first template; the
worker sends them through the shared Redis rate limiter (WHATSAPP_MPS = 80) to the Graph fake
(300 ms), which posts the status webhooks back. Reported: the time from the first webhook to the
last template reaching Graph (target: 5,000 / 80 s + 10 % = 68.75 s), the sends Graph received
in each second (never more than 80), and that every cart got exactly one template.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import load
import pyspy

MPS = 80


def phone(i: int) -> str:
    return f"+5521{960000000 + i}"


def bodies(n: int, run: str) -> list[tuple[bytes, dict[str, str]]]:
    out = []
    for i in range(n):
        payload = {
            "userId": f"u-{i}",
            "name": f"Cliente {i}",
            "phone": phone(i),
            "productId": "curso-python",
            "paymentLink": f"https://pay.example.com/cart/{run}-{i}",
            "abandonmentId": f"burst-{run}-{i}",
            "value": "297.00",
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        out.append((body, {"X-Hub-Signature-256": common.sign(common.PAYMENT_SECRET, body)}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--carts", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=60.0, help="spread the webhooks over this long")
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=100, help="Celery threads per worker process")
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument(
        "--drain", type=float, default=60.0, help="max seconds to wait after the last webhook"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the (first) worker and the web")
    parser.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    from decimal import ROUND_CEILING

    target_s = float((Decimal(args.carts) / MPS * Decimal("1.1")).quantize(Decimal("0.01"), ROUND_CEILING))

    common.setup_django()
    common.reset_data()
    common.python_course()
    run = str(int(time.time()) % 100000)
    prepared = bodies(args.carts, run)

    common.start_fakes(status_webhook=True)
    web = common.start_web(args.web_workers)
    worker_env = dict(item.split("=", 1) for item in args.worker_env)
    workers = [
        common.start_worker(args.concurrency, name=f"worker{k}", extra_env=worker_env)
        for k in range(args.worker_processes)
    ]
    # Warm-up: the processes import and connect on their first requests, not during the burst.
    for _ in range(3):
        common.get_json(f"{common.WEB}/health")
    rss: list[float] = []
    stop = threading.Event()
    threading.Thread(
        target=common.sample_rss, args=([w.pid for w in workers], rss, stop), daemon=True
    ).start()
    if args.profile:
        pyspy.record("burst-worker", workers[0].pid, int(args.seconds))
        pyspy.record("burst-web", web.pid, int(args.seconds), subprocesses=True)
    snap0, started = common.cpu_snapshot(), time.time()
    try:
        # Threads enough to hold the pace even when answers take over a second, as a checkout would.
        rate = args.carts / args.seconds
        sent = load.post_paced(common.WEB_PORT, "/webhook/abandonment", prepared, rate=rate, threads=128)
        posted = time.time()
        deadline = posted + args.drain
        while time.time() < deadline and common.sent_count("first_contact") < args.carts:
            time.sleep(0.5)
        cores = common.cpu_by_kind(snap0, common.cpu_snapshot(), time.time() - started)
        graph_sends = common.get_json(f"http://127.0.0.1:{common.GRAPH_PORT}/sends")
    finally:
        stop.set()
        for worker in workers:
            common.stop(worker)
        common.stop(web)

    result = collect(args, sent, graph_sends, target_s)
    result.update(
        {
            "machine": common.machine(),
            "config": {
                "carts": args.carts,
                "over_seconds": args.seconds,
                "web": f"gunicorn sync, {args.web_workers} workers",
                "worker": f"{args.worker_processes} × celery --pool threads --concurrency {args.concurrency}",
                "WHATSAPP_MPS": MPS,
                "worker_env": worker_env,
            },
            "webhook_seconds": round(posted - started, 1),
            "worker_rss_mb_max": round(max(rss), 1) if rss else None,
            "cores_by_process": cores,
        }
    )
    common.save("burst", result)
    print(json.dumps(result, indent=1, default=str))


def collect(
    args: argparse.Namespace, sent: list[load.Sent], graph_sends: list[dict], target_s: float
) -> dict[str, Any]:
    from messaging.models import Message

    first_post = min(s.started for s in sent)
    to_counts = Counter(s["to"] for s in graph_sends)
    arrivals = sorted(s["arrived"] for s in graph_sends)
    per_second = Counter(int(a) for a in arrivals)
    seconds = range(int(arrivals[0]), int(arrivals[-1]) + 1) if arrivals else range(0)
    counts = [per_second.get(sec, 0) for sec in seconds]
    # A sliding window shows what a per-second count hides at the edges of calendar seconds.
    window_max, j = 0, 0
    for i, t in enumerate(arrivals):
        while arrivals[j] <= t - 1.0:
            j += 1
        window_max = max(window_max, i - j + 1)
    latencies = [s.latency * 1000 for s in sent if s.status == 200]
    templates = Message.objects.filter(direction="out", purpose="first_contact")
    all_sent = len(to_counts) == args.carts and arrivals
    return {
        "webhook_non200": sum(1 for s in sent if s.status != 200),
        "webhook_latency_ms": {
            "p50": round(common.percentile(latencies, 50), 1),
            "p99": round(common.percentile(latencies, 99), 1),
            "over_1s": sum(1 for x in latencies if x > 1000),
        },
        "templates_stored": templates.count(),
        "templates_sent": templates.filter(status__in=["sent", "delivered", "read"]).count(),
        "templates_by_status": dict(Counter(templates.values_list("status", flat=True))),
        "graph_sends": len(graph_sends),
        "graph_recipients": len(to_counts),
        "graph_recipients_sent_twice": sum(1 for c in to_counts.values() if c > 1),
        "all_sent_s": round(arrivals[-1] - first_post, 1) if all_sent else None,
        "last_send_s": round(arrivals[-1] - first_post, 1) if arrivals else None,
        "target_s": target_s,
        "sends_per_second_max": max(counts) if counts else 0,
        "sends_in_any_1s_window_max": window_max,
        "seconds_over_cap": sum(1 for c in counts if c > MPS),
        "sends_per_second_mean": round(len(arrivals) / max(1.0, arrivals[-1] - arrivals[0]), 1)
        if arrivals
        else 0,
        "sends_per_second": counts,
    }


if __name__ == "__main__":
    main()
