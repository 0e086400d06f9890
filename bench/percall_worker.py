"""Worker CPU per customer message, in one process, without Celery's consumer or a load generator.

    .venv/bin/python bench/percall_worker.py [--n 600]

Seeds customers with an open conversation, stores one inbound text each through the real Meta
webhook (in-process WSGI), then, one message at a time, runs what the worker runs for it:
`process_inbound` (interpretation by the OpenAI fake, answering at once) and `send_message` of
the reply (Graph fake, answering at once). Reports CPU ms per message for each and the queries
each runs. CPU is what limits replies/s: on 2 cores, 80 messages/s leaves the worker well under
10 ms per message. The first 50 messages warm up (imports, pools, the SDK client).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import e2e
import percall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--profile", action="store_true", help="cProfile the measured loop (slower)")
    args = parser.parse_args()
    common.setup_django()
    common.reset_data()
    warm = 50
    n = args.n + warm
    e2e.seed(n)
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
    percall.measure(app, "store", [("POST", "/webhook/messages", body) for body, _ in e2e.bodies(n, run)])
    redis.Redis.from_url(common.ENV["REDIS_URL"]).flushdb()  # the tasks run here, not in a worker
    inbound = list(
        Message.objects.filter(direction=Message.Direction.IN).order_by("pk").values_list("pk", flat=True)
    )

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
        reply = reply_of(message_id)
        with CaptureQueriesContext(connection) as captured:
            tasks.send_message.run(reply)
        queries["send"] = len(captured)
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
    }
    print(
        f"per message: process_inbound {result['process_cpu_ms']} ms CPU ({queries['process']} queries), "
        f"send_message {result['send_cpu_ms']} ms CPU ({queries['send']} queries)"
    )
    common.save("percall-worker", result)


if __name__ == "__main__":
    main()
