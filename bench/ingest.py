"""Benchmark 1 — webhook ingest: how many signed Meta webhooks Sara stores per second.

    .venv/bin/python bench/ingest.py [--workers 2] [--duration 30] [--connections 32]

One gunicorn (sync workers) serving the real project on PostgreSQL and Redis, and beside it one
with the same settings serving a minimal Django project (bench/minimal_project.py: one view,
Django's default middleware); wrk on loopback. Runs one after the other, alternated by round:
  minimal GET /health of the minimal project: what any Django project costs, the yardstick;
  bare    GET /health — a bare Django view through Sara's middleware;
  single  one update per webhook, 1 inbound message to 3 statuses (sent, delivered, read of
          messages Sara sent), 2 % of the inbound ones delivered twice as Meta does;
  batch   10–100 updates per webhook (same 1:3 mix).
Afterwards it checks that every inbound message sent is stored exactly once (batches above
SARA_INLINE_BATCH_LIMIT are stored raw and fanned out by a task: the benchmark runs that fan-out
itself, timed, before checking) and that each status reached its message.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import pyspy

WAMID_IN = "wamid.BENCHIN{run}{thread}x{n:07d}"
WAMID_OUT = "wamid.BENCHOUT{n:07d}"
OUTBOUND_ROWS = 200_000


def _message(wamid: str, n: int, now: int) -> tuple[dict, dict]:
    wa_id = f"55119{60000000 + n % 9_000_000:08d}"
    message = {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(now),
        "type": "text",
        "text": {"body": "Achei caro, tem desconto no frete?"},
    }
    return message, {"profile": {"name": "Cliente Bench"}, "wa_id": wa_id}


def _status(wamid: str, status: str, now: int) -> dict:
    return {"id": wamid, "status": status, "timestamp": str(now), "recipient_id": "5511960000000"}


class Bodies:
    """Signed bodies written one file per wrk thread; remembers which inbound wamids each line holds."""

    def __init__(self, prefix: Path, threads: int) -> None:
        self.prefix = prefix
        self.threads = threads
        self.inbound: dict[int, list[list[str]]] = {t: [] for t in range(1, threads + 1)}
        self.most_per_line = 0

    def write(self, thread: int, lines: list[tuple[int, list[str], bytes]]) -> None:
        with open(f"{self.prefix}.{thread}.tsv", "wb") as out:
            for updates, wamids, body in lines:
                out.write(f"{updates}\t{common.sign(common.APP_SECRET, body)}\t".encode() + body + b"\n")
                self.inbound[thread].append(wamids)
                self.most_per_line = max(self.most_per_line, len(wamids))

    def sent_wamids(
        self, sent_per_thread: dict[str, int], in_flight_per_thread: int
    ) -> tuple[list[str], set[str]]:
        """Inbound wamids of the bodies wrk sent, and those of its last requests (maybe unanswered)."""
        sent: list[str] = []
        maybe: set[str] = set()
        for thread, lines in self.inbound.items():
            n = min(sent_per_thread.get(str(thread), 0), len(lines))
            # wrk calls request() once in its first thread to check the script, and never sends
            # that request: the first body of thread 1 is built but not delivered.
            first = 1 if thread == 1 else 0
            for k, wamids in enumerate(lines[first:n], start=first):
                sent.extend(wamids)
                if k >= n - in_flight_per_thread:
                    maybe.update(wamids)
        return sent, maybe


def make_single(run: str, threads: int, per_thread: int, now: int) -> Bodies:
    bodies = Bodies(common.OUT / f"single-{run}", threads)
    out = 0
    for t in range(1, threads + 1):
        lines: list[tuple[int, list[str], bytes]] = []
        sent_inbound: list[tuple[list[str], bytes]] = []
        n = 0
        while len(lines) < per_thread:
            if n and n % 50 == 0:
                # Meta delivers at least once: an earlier message, byte for byte, again.
                wamids, body = random.choice(sent_inbound)
                lines.append((1, wamids, body))
            wamid = WAMID_IN.format(run=run, thread=t, n=n)
            message, contact = _message(wamid, n, now)
            body = json.dumps(common.meta_webhook([message], [], [contact]), separators=(",", ":")).encode()
            lines.append((1, [wamid], body))
            sent_inbound.append(([wamid], body))
            target = WAMID_OUT.format(n=out % OUTBOUND_ROWS)
            out += 1
            for status in ("sent", "delivered", "read"):
                body = json.dumps(
                    common.meta_webhook([], [_status(target, status, now)], []), separators=(",", ":")
                ).encode()
                lines.append((1, [], body))
            n += 1
        bodies.write(t, lines[:per_thread])
    return bodies


def make_batches(run: str, threads: int, per_thread: int, now: int, first_out: int) -> Bodies:
    bodies = Bodies(common.OUT / f"batch-{run}", threads)
    out = first_out
    rng = random.Random(6)
    for t in range(1, threads + 1):
        lines: list[tuple[int, list[str], bytes]] = []
        n = 0
        for _ in range(per_thread):
            size = rng.randint(10, 100)
            k_messages = size // 4
            messages, contacts, wamids = [], [], []
            for _ in range(k_messages):
                wamid = WAMID_IN.format(run=run, thread=t, n=n)
                message, contact = _message(wamid, n, now)
                messages.append(message)
                contacts.append(contact)
                wamids.append(wamid)
                n += 1
            statuses = []
            while len(statuses) < size - k_messages:
                target = WAMID_OUT.format(n=out % OUTBOUND_ROWS)
                out += 1
                for status in ("sent", "delivered", "read")[: size - k_messages - len(statuses)]:
                    statuses.append(_status(target, status, now))
            body = json.dumps(
                common.meta_webhook(messages, statuses, contacts), separators=(",", ":")
            ).encode()
            lines.append((size, wamids, body))
        bodies.write(t, lines)
    return bodies


def seed_outbound() -> None:
    """Messages Sara "sent" (status sent, with a wamid): what status webhooks are about."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO messaging_message (direction, kind, purpose, wa_id, text, whatsapp_message_id, status, "
            "error_code, error_detail, attempts, intent, sentiment, tokens_used, metadata, possible_duplicate, "
            "created_at, sent_at) "
            "SELECT 'out', 'text', 'reply', '5511960000000', 'Oi! Seu carrinho está salvo.', "
            "'wamid.BENCHOUT' || lpad(g::text, 7, '0'), 'sent', '', '', 1, '', '', 0, '{}', false, now(), now() "
            "FROM generate_series(0, %s) AS g",
            [OUTBOUND_ROWS - 1],
        )
    common.vacuum_analyze()
    with connection.cursor() as cursor:
        # Start every run with the seeding's WAL flushed, not with a checkpoint in the middle.
        cursor.execute("CHECKPOINT")


def wrk(
    name: str,
    prefix: str,
    path: str,
    duration: int,
    connections: int,
    threads: int,
    web_pid: int,
    profile: bool = False,
    url: str = common.WEB,
) -> dict[str, Any]:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(common.BENCH / "wrk" / "signed.lua"),
        url,
        "--",
        prefix,
        path,
    ]
    spy = pyspy.record(name, web_pid, duration, subprocesses=True) if profile else None
    snap0, children0 = common.cpu_snapshot(), common.children_cpu()
    started = time.time()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    if spy is not None:
        spy.wait(timeout=60)
    elapsed = time.time() - started
    cores = common.cpu_by_kind(snap0, common.cpu_snapshot(), elapsed, wrk=common.children_cpu() - children0)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk failed ({name}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = result["duration_us"] / 1e6
    result["name"] = name
    result["command"] = " ".join(argv)
    result["rps"] = result["requests"] / seconds
    result["updates_per_s"] = result["updates_sent"] / seconds
    result["cores_by_process"] = cores
    # CPU the web workers spent per request: less sensitive to other load than req/s.
    result["web_cpu_ms_per_request"] = round(
        1000 * cores.get("web", 0) * elapsed / max(1, result["requests"]), 3
    )
    (common.OUT / f"wrk-{name}.txt").write_text(done.stdout + done.stderr)
    return result


def warm_up(web_pid: int, prefix: str, threads: int) -> None:
    wrk("warm-up-bare", "GET", "/health", 3, 32, threads, web_pid)
    wrk("warm-up-webhook", prefix, "/webhook/messages", 3, 32, threads, web_pid)


def fan_out_pending(threads: int = 8) -> dict[str, Any]:
    """What the fan_out_event task does for every raw batch, on 8 threads as a worker would."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from messaging.models import WebhookEvent
    from messaging.services.inbound import fan_out_event

    ids = list(WebhookEvent.objects.filter(processed=False).values_list("pk", flat=True))
    updates = 0
    for payload in WebhookEvent.objects.filter(pk__in=ids).values_list("payload", flat=True):
        value = payload["entry"][0]["changes"][0]["value"]
        updates += len(value.get("messages", [])) + len(value.get("statuses", []))

    def fan_out(event_id: int) -> None:
        try:
            fan_out_event(event_id=event_id)
        finally:
            connection.close()

    started = time.time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fan_out, ids))
    seconds = time.time() - started
    return {
        "events": len(ids),
        "updates": updates,
        "seconds": round(seconds, 1),
        "updates_per_s": round(updates / seconds) if ids else None,
        "threads": threads,
    }


def verify(bodies: Bodies, result: dict[str, Any], connections: int, threads: int) -> dict[str, Any]:
    """Every inbound message wrk delivered is stored, once; only its very last requests may be unanswered."""
    from django.db.models import Count

    from messaging.models import Message

    # wrk stops mid-request: each connection's last request may or may not have been served.
    sent, maybe_unanswered = bodies.sent_wamids(result["sent_per_thread"], connections // threads)
    unique = set(sent)
    stored = set(
        Message.objects.filter(direction="in", whatsapp_message_id__in=unique).values_list(
            "whatsapp_message_id", flat=True
        )
    )
    duplicates = (
        Message.objects.filter(whatsapp_message_id__in=unique)
        .values("whatsapp_message_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    missing = unique - stored
    return {
        "inbound_deliveries": len(sent),
        "inbound_unique": len(unique),
        "stored": len(stored),
        "stored_twice": duplicates,
        "missing": len(missing),
        "missing_outside_last_requests": len(missing - maybe_unanswered),
        "exactly_once": duplicates == 0 and not (missing - maybe_unanswered),
    }


def queued_check() -> dict[str, Any]:
    """Every inbound message stored was queued for processing exactly once (no worker ran)."""
    import redis

    from messaging.models import Message

    client = redis.Redis.from_url(common.ENV["REDIS_URL"])
    queued: dict[str, int] = {}
    ids: list[int] = []
    length = client.llen("celery")
    for start in range(0, length, 5000):
        for raw in client.lrange("celery", start, start + 4999):
            message = json.loads(raw)
            task = message["headers"]["task"]
            queued[task] = queued.get(task, 0) + 1
            if task == "messaging.tasks.process_inbound":
                ids.append(json.loads(__import__("base64").b64decode(message["body"]))[0][0])
    stored = set(Message.objects.filter(direction="in").values_list("pk", flat=True))
    return {
        "tasks_queued": queued,
        "inbound_stored": len(stored),
        "stored_and_queued_once": sorted(ids) == sorted(stored),
    }


def status_check() -> dict[str, Any]:
    from messaging.models import Message, StatusUpdate

    read = Message.objects.filter(direction="out", status="read").count()
    delivered = Message.objects.filter(direction="out", status="delivered").count()
    return {
        "outbound_read": read,
        "outbound_delivered_only": delivered,
        "orphan_statuses": StatusUpdate.objects.count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="bare/single pairs, alternated")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--no-batch", action="store_true")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--gthreads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument(
        "--web-env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for gunicorn"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the web workers (slows them down)")
    parser.add_argument(
        "--app", default="config.wsgi", help="WSGI app (bench.wsgi_whatif:no_publish for a what-if)"
    )
    args = parser.parse_args()

    common.setup_django()
    common.OUT.mkdir(exist_ok=True)
    common.reset_data()
    seed_outbound()
    run_id = str(int(time.time()) % 100000)
    now = int(time.time())

    # Fresh wamids for every round (a repeat would only measure the dedup path), enough that
    # no file runs out at 3,000 req/s (single) or 600 req/s (batch).
    per_thread = 3000 * args.duration // args.threads
    singles = [make_single(f"{run_id}r{k}", args.threads, per_thread, now) for k in range(args.rounds)]
    batch = None
    if not args.no_batch:
        batch = make_batches(
            run_id, args.threads, 600 * args.duration // args.threads, now, OUTBOUND_ROWS // 2
        )
    warm = make_single(f"{run_id}w", args.threads, 2000, now)

    web_env = dict(item.split("=", 1) for item in args.web_env)
    web = common.start_web(
        args.workers, worker_class=args.worker_class, threads=args.gthreads, extra_env=web_env, app=args.app
    )
    minimal = common.start_web(
        args.workers,
        name="web-minimal",
        worker_class=args.worker_class,
        threads=args.gthreads,
        app="bench.minimal_project:application",
        port=common.MINIMAL_PORT,
    )
    minimal_url = f"http://127.0.0.1:{common.MINIMAL_PORT}"
    results: dict[str, Any] = {
        "machine": common.machine(),
        "gunicorn": f"{args.worker_class}, {args.workers} workers"
        + (f" × {args.gthreads} threads" if args.worker_class == "gthread" else ""),
        "web_env": web_env,
        "app": args.app,
        "connections": args.connections,
        "duration_s": args.duration,
        "runs": {},
    }

    def run(name: str, prefix: str, path: str, url: str = common.WEB, pid: int = web.pid) -> dict[str, Any]:
        time.sleep(1)
        r = wrk(name, prefix, path, args.duration, args.connections, args.threads, pid, args.profile, url)
        results["runs"][name] = r
        print(
            f"{name:8s} {r['rps']:7.0f} req/s {r['updates_per_s']:7.0f} upd/s  p50 {r['latency_ms']['p50']:6.1f} "
            f"p95 {r['latency_ms']['p95']:6.1f} p99 {r['latency_ms']['p99']:6.1f} ms  non200 {r['non200']} "
            f"errors {sum(r['errors'].values())} wrapped {r['wrapped']}  web {r['web_cpu_ms_per_request']} ms/req  "
            f"cores {r['cores_by_process']}",
            flush=True,
        )
        return r

    try:
        # Every worker imports the URLconf and Celery's Redis transport and opens its pool on
        # its first requests: start-up, not throughput (warm-up bodies have their own wamids).
        wrk("warm-up-bare", "GET", "/health", 3, args.connections, args.threads, web.pid)
        wrk(
            "warm-up-minimal",
            "GET",
            "/health",
            3,
            args.connections,
            args.threads,
            minimal.pid,
            url=minimal_url,
        )
        wrk(
            "warm-up-webhook",
            str(warm.prefix),
            "/webhook/messages",
            3,
            args.connections,
            args.threads,
            web.pid,
        )
        for k, single in enumerate(singles, start=1):
            run(f"minimal#{k}", "GET", "/health", url=minimal_url, pid=minimal.pid)
            run(f"bare#{k}", "GET", "/health")
            run(f"single#{k}", str(single.prefix), "/webhook/messages")
        if batch is not None:
            run("batch", str(batch.prefix), "/webhook/messages")
    finally:
        common.stop(minimal)
        common.stop(web)

    summary: dict[str, Any] = {}
    for kind in ("minimal", "bare", "single"):
        rounds = [r for name, r in results["runs"].items() if name.split("#")[0] == kind]
        summary[kind] = {
            "rps": round(sum(r["rps"] for r in rounds) / len(rounds)),
            "rps_each": [round(r["rps"]) for r in rounds],
            "p50_ms": max(r["latency_ms"]["p50"] for r in rounds),
            "p95_ms": max(r["latency_ms"]["p95"] for r in rounds),
            "p99_ms": max(r["latency_ms"]["p99"] for r in rounds),
            "web_cpu_ms_per_request": round(
                sum(r["web_cpu_ms_per_request"] for r in rounds) / len(rounds), 3
            ),
            "other_load_cores_max": max(r["cores_by_process"].get("other", 0) for r in rounds),
        }
    summary["single"]["pct_of_bare"] = round(100 * summary["single"]["rps"] / summary["bare"]["rps"], 1)
    # The single-update webhook against what any Django project answers on the same machine.
    summary["single"]["pct_of_minimal"] = round(100 * summary["single"]["rps"] / summary["minimal"]["rps"], 1)
    summary["bare"]["pct_of_minimal"] = round(100 * summary["bare"]["rps"] / summary["minimal"]["rps"], 1)
    summary["single"]["check"] = [
        verify(single, results["runs"][f"single#{k}"], args.connections, args.threads)
        for k, single in enumerate(singles, start=1)
    ]
    if batch is not None:
        r = results["runs"]["batch"]
        summary["batch"] = {
            "rps": round(r["rps"]),
            "updates_per_s": round(r["updates_per_s"]),
            "p50_ms": r["latency_ms"]["p50"],
            "p95_ms": r["latency_ms"]["p95"],
            "p99_ms": r["latency_ms"]["p99"],
            "fan_out": fan_out_pending(),
        }
        summary["batch"]["check"] = verify(batch, r, args.connections, args.threads)
    summary["statuses"] = status_check()
    summary["queue"] = queued_check()
    results["summary"] = summary
    common.save("ingest", results)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
