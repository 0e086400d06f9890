"""Worker CPU per customer message: the task code in-process, then through a real Celery worker.

    .venv/bin/python bench/percall_worker.py [--n 600] [--worker-n 600] [--profile]

Seeds customers with an open conversation, stores one inbound text each through the real Meta
webhook (in-process WSGI), then, one message at a time, runs what the worker runs for it:
`process_inbound` (interpretation by the OpenAI fake, answering at once) and `send_message` of
the reply (Graph fake, answering at once). Reports CPU ms per message for each and the queries
each runs. The first 50 messages warm up (imports, pools, the SDK client).

Then the same through a real worker process (`celery worker`, threads pool, as deployed),
Celery's consumer, acknowledgements and log lines included: `--worker-n` more messages are
queued at once and the worker's own CPU (from /proc) is divided by the messages answered. This
is the figure that decides replies/s: on 2 cores, 80 messages/s leaves the worker about 10 ms
per message.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import e2e
import percall
import pyspy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--profile", action="store_true", help="cProfile the measured loop (slower)")
    parser.add_argument("--worker-n", type=int, default=600, help="messages through a real worker (0: skip)")
    parser.add_argument("--worker-concurrency", type=int, default=50)
    parser.add_argument("--worker-profile", action="store_true", help="py-spy on the worker's measured run")
    parser.add_argument("--show-queries", action="store_true", help="print one message's SQL statements")
    args = parser.parse_args()
    common.setup_django()
    common.reset_data()
    warm = 50
    worker_warm = 50 if args.worker_n else 0
    n = args.n + warm
    e2e.seed(n + worker_warm + args.worker_n)
    for name, argv in (
        ("fake-openai", ["openai", "--port", str(common.OPENAI_PORT), "--latency", "0"]),
        ("fake-graph", ["graph", "--port", str(common.GRAPH_PORT), "--latency", "0"]),
    ):
        proc = common.start(name, [common.PYTHON, str(common.BENCH / "fakes.py"), *argv])
        common.wait_http(f"http://127.0.0.1:{argv[2]}/stats", proc)

    import redis
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from messaging import tasks
    from messaging.models import Message

    app = get_wsgi_application()
    run = str(int(time.time()) % 100000)
    total = n + worker_warm + args.worker_n
    percall.measure(app, "store", [("POST", "/webhook/messages", body) for body, _ in e2e.bodies(total, run)])
    redis.Redis.from_url(common.ENV["REDIS_URL"]).flushdb()  # the tasks run here, not in a worker
    tasks.process_inbound.app.control.purge()  # the same on RabbitMQ (BENCH_BROKER_URL)
    inbound = list(
        Message.objects.filter(direction=Message.Direction.IN).order_by("pk").values_list("pk", flat=True)
    )
    for_worker = inbound[n:]
    inbound = inbound[:n]

    def reply_of(message_id: int) -> int:
        return (
            Message.objects.filter(direction=Message.Direction.OUT, metadata__in_reply_to=message_id)
            .values_list("pk", flat=True)
            .get()
        )

    def one(message_id: int, cpu: dict[str, float]) -> None:
        t0 = time.process_time()
        outcome = tasks.process_inbound.run(message_id)
        t1 = time.process_time()
        assert outcome == "replied", outcome
        reply = reply_of(message_id)
        t2 = time.process_time()
        sent = tasks.send_message.run(reply)
        t3 = time.process_time()
        assert sent == "sent", sent
        cpu["process"] += t1 - t0
        cpu["send"] += t3 - t2

    cpu = {"process": 0.0, "send": 0.0}
    for message_id in inbound[: warm - 2]:
        one(message_id, cpu)
    queries = {}
    for message_id in inbound[warm - 2 : warm]:
        with CaptureQueriesContext(connection) as captured:
            tasks.process_inbound.run(message_id)
        queries["process"] = len(captured)
        shown = {"process": [q["sql"] for q in captured]}
        reply = reply_of(message_id)
        with CaptureQueriesContext(connection) as captured:
            tasks.send_message.run(reply)
        queries["send"] = len(captured)
        shown["send"] = [q["sql"] for q in captured]
    if args.show_queries:
        for task, statements in shown.items():
            print(f"{task}:")
            for sql in statements:
                print(f"  {sql[:300]}")
    cpu = {"process": 0.0, "send": 0.0}
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU, not waiting
        profiler.enable()
    for message_id in inbound[warm:]:
        one(message_id, cpu)
    if profiler is not None:
        import pstats

        profiler.disable()
        profiler.dump_stats(common.OUT / "percall-worker.prof")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
    redis.Redis.from_url(common.ENV["REDIS_URL"]).flushdb()
    result = {
        "n": args.n,
        "process_cpu_ms": round(1000 * cpu["process"] / args.n, 2),
        "send_cpu_ms": round(1000 * cpu["send"] / args.n, 2),
        "queries": queries,
        "load": common.machine()["load"],
    }
    print(
        f"per message: process_inbound {result['process_cpu_ms']} ms CPU ({queries['process']} queries), "
        f"send_message {result['send_cpu_ms']} ms CPU ({queries['send']} queries)"
    )
    if args.worker_n:
        result["worker"] = through_worker(
            for_worker, worker_warm, args.worker_concurrency, profile=args.worker_profile
        )
        print(
            f"through a worker: {result['worker']['cpu_ms']} ms CPU per answered message "
            f"({result['worker']['n']} messages, {result['worker']['seconds']} s)"
        )
    common.save("percall-worker", result)


def process_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its children."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid, *common._descendants(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def through_worker(message_ids: list[int], warm: int, concurrency: int, *, profile: bool = False) -> dict:
    """Queue the messages for a real worker, wait until every reply is sent; its CPU per message."""
    from messaging.models import Message
    from messaging.tasks import process_inbound

    # Meta's upgraded tier: the limiter's pacing would only make the run longer, not cheaper.
    worker = common.start_worker(
        concurrency=concurrency, name="percall-worker", extra_env={"WHATSAPP_MPS": "1000"}
    )

    def answer(ids: list[int], deadline: float) -> float:
        for message_id in ids:
            process_inbound.delay(message_id)
        while time.time() < deadline:
            sent = Message.objects.filter(
                direction=Message.Direction.OUT, status=Message.Status.SENT, metadata__in_reply_to__in=ids
            ).count()
            if sent == len(ids):
                return time.time()
            time.sleep(0.2)
        raise SystemExit(f"the worker did not answer {len(ids)} messages in time; see bench/out/")

    answer(message_ids[:warm], time.time() + 120)
    spy = pyspy.record("percall-worker", worker.pid, 600) if profile else None
    cpu0, started = process_cpu(worker.pid), time.time()
    measured = message_ids[warm:]
    finished = answer(measured, time.time() + 600)
    cpu = process_cpu(worker.pid) - cpu0
    rss = common.rss_mb(worker.pid)
    threads = int(Path(f"/proc/{worker.pid}/status").read_text().split("Threads:")[1].split()[0])
    cpu_ms = 1000 * cpu / len(measured)
    layers_ms = {}
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has recorded and exits
        spy.wait(timeout=30)
        print(pyspy.summarize(common.OUT / "profile-percall-worker.txt", 45))
        # The message's CPU shared out by the profile's layers.
        layers = pyspy.by_layer(common.OUT / "profile-percall-worker.txt")
        samples = sum(layers.values())
        layers_ms = {layer: round(cpu_ms * n / samples, 2) for layer, n in layers.most_common()}
    common.stop(worker)
    return {
        "n": len(measured),
        "concurrency": concurrency,
        "cpu_ms": round(cpu_ms, 2),
        "seconds": round(finished - started, 1),
        "rss_mb": round(rss, 1),
        "threads": threads,
        "layers_ms": layers_ms,
    }


if __name__ == "__main__":
    main()
