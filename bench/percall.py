"""Per-request cost of the Meta webhook, in one process, without HTTP or a load generator.

    .venv/bin/python bench/percall.py [--n 3000] [--pyinstrument inbound|status|bare]

Calls Django's WSGI application directly, one request at a time, and reports CPU ms and wall ms
per request for: the bare view, one inbound message, one status, and a 50-update batch. CPU
time is what limits req/s on a 2-core machine; wall minus CPU is mostly PostgreSQL (a durable
COMMIT waits for the WAL flush). Much less sensitive to other load than the wrk runs, so it is
the tool to compare two versions of the hot path.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import ingest


def environ(method: str, path: str, body: bytes = b"", secret: str = common.APP_SECRET) -> dict:
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(common.WEB_PORT),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }
    if body:
        env["CONTENT_TYPE"] = "application/json"
        env["CONTENT_LENGTH"] = str(len(body))
        env["HTTP_X_HUB_SIGNATURE_256"] = common.sign(secret, body)
    return env


def measure(app, name: str, requests: list[tuple[str, str, bytes]], secret: str = common.APP_SECRET) -> dict:
    """CPU and wall time per request; bodies signed with `secret` (Meta's app secret by default)."""
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info=None) -> None:
        statuses.append(status)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    for method, path, body in requests:
        response = app(environ(method, path, body, secret), start_response)
        b"".join(response)
        response.close()  # request_finished: the connection goes back to the pool
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    bad = [s for s in statuses if not s.startswith("200")]
    n = len(requests)
    result = {
        "n": n,
        "cpu_ms": round(1000 * cpu / n, 3),
        "wall_ms": round(1000 * wall / n, 3),
        "non200": len(bad),
    }
    print(
        f"{name:10s} cpu {result['cpu_ms']:.3f} ms  wall {result['wall_ms']:.3f} ms  per request  ({n}, non200 {len(bad)})"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument(
        "--pyinstrument",
        choices=["bare", "inbound", "status"],
        help="profile that kind of request (bench/out/pyinstrument-<kind>.txt) instead of measuring all",
    )
    args = parser.parse_args()
    common.setup_django()
    common.reset_data()
    ingest.seed_outbound()
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    now = int(time.time())
    run = str(now % 100000)
    single = ingest.make_single(run, 1, args.n * 4, now)
    lines = (common.OUT / f"single-{run}.1.tsv").read_bytes().splitlines()
    bodies = [line.split(b"\t", 2)[2] for line in lines]
    inbound = [b for b in bodies if b'"messages":[' in b]
    statuses = [b for b in bodies if b'"statuses"' in b]
    batch = ingest.make_batches(run, 1, max(50, args.n // 20), now, first_out=ingest.OUTBOUND_ROWS // 2)
    batch_bodies = [
        line.split(b"\t", 2)[2] for line in (common.OUT / f"batch-{run}.1.tsv").read_bytes().splitlines()
    ]
    del single, batch
    # Warm up: imports, URL resolver, the pool's first connection, the Celery producer.
    measure(
        app,
        "warm-up",
        [("GET", "/health", b"")] * 200 + [("POST", "/webhook/messages", b) for b in statuses[-200:]],
    )
    if args.pyinstrument:
        from pyinstrument import Profiler

        requests = {
            "bare": [("GET", "/health", b"")] * args.n,
            "inbound": [("POST", "/webhook/messages", b) for b in inbound[: args.n]],
            "status": [("POST", "/webhook/messages", b) for b in statuses[: args.n]],
        }[args.pyinstrument]
        profiler = Profiler(interval=0.0002)
        profiler.start()
        measure(app, args.pyinstrument, requests)
        profiler.stop()
        out = common.OUT / f"pyinstrument-{args.pyinstrument}.txt"
        out.write_text(profiler.output_text(unicode=True, show_all=True))
        print(f"profile: {out}")
        return
    results = {
        "bare": measure(app, "bare", [("GET", "/health", b"")] * args.n),
        "inbound": measure(app, "inbound", [("POST", "/webhook/messages", b) for b in inbound[: args.n]]),
        "status": measure(app, "status", [("POST", "/webhook/messages", b) for b in statuses[: args.n]]),
        "batch": measure(app, "batch", [("POST", "/webhook/messages", b) for b in batch_bodies]),
    }
    # The checkout's abandonment webhook (recovery app), for comparison: customer, cart,
    # conversation, template row and its send queued, in one transaction.
    import burst

    from recovery.models import Product

    Product.objects.get_or_create(product_id="curso-python", defaults={"name": "Curso de Python"})
    carts = [body for body, _ in burst.bodies(min(args.n, 1000), run)]
    results["abandonment"] = measure(
        app, "abandonment", [("POST", "/webhook/abandonment", body) for body in carts], common.PAYMENT_SECRET
    )
    results["batch"]["updates_per_request"] = round(
        sum(len(json.loads(b)["entry"][0]["changes"][0]["value"].get("messages", []))
            + len(json.loads(b)["entry"][0]["changes"][0]["value"].get("statuses", [])) for b in batch_bodies)
        / len(batch_bodies), 1,
    )  # fmt: skip
    common.save("percall", results)


if __name__ == "__main__":
    main()
