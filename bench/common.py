"""What the three benchmarks share: the environment, the processes they start, the database.

Every process runs on 127.0.0.1 against a dedicated PostgreSQL database (sara_bench) and Redis
DB 9, so a benchmark never touches what the test suite uses. Processes are started in their own
session and stopped by their own pid when the benchmark ends, whatever way it ends: normally,
on an error, on Ctrl-C, or stopped with SIGTERM or SIGHUP.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
BIN = ROOT / ".venv" / "bin"

WEB_PORT = int(os.environ.get("BENCH_WEB_PORT", "18700"))
OPENAI_PORT = int(os.environ.get("BENCH_OPENAI_PORT", "18701"))
GRAPH_PORT = int(os.environ.get("BENCH_GRAPH_PORT", "18702"))
# bench/minimal_project.py, the yardstick bench/ingest.py runs beside Sara's web.
MINIMAL_PORT = int(os.environ.get("BENCH_MINIMAL_PORT", "18703"))
WEB = f"http://127.0.0.1:{WEB_PORT}"

APP_SECRET = "bench-app-secret"
PAYMENT_SECRET = "bench-payment-secret"
PHONE_NUMBER_ID = "106540352242922"

# Production-like: DEBUG off (Django would otherwise keep every query in memory), real
# secrets, PostgreSQL with the psycopg pool (settings' default), Redis as broker and cache.
ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sara_bench"),
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
    # Celery's broker when it is not Redis (bench/broker_recovery.py, e2e on RabbitMQ).
    "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", ""),
    "WHATSAPP_APP_SECRET": APP_SECRET,
    "WHATSAPP_VERIFY_TOKEN": "bench-verify-token",
    "PAYMENT_WEBHOOK_SECRET": PAYMENT_SECRET,
    "WHATSAPP_ACCESS_TOKEN": "bench-graph-token",
    "WHATSAPP_API_BASE_URL": f"http://127.0.0.1:{GRAPH_PORT}",
    "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
    "OPENAI_API_KEY": "bench-openai-key",
    "OPENAI_BASE_URL": f"http://127.0.0.1:{OPENAI_PORT}/v1",
    # Templates are proactive: at night quiet hours would (correctly) hold the burst back.
    "SARA_QUIET_HOURS": "",
    "DJANGO_SETTINGS_MODULE": "config.settings",
}

for _url in (ENV["DATABASE_URL"], ENV["REDIS_URL"], ENV["CELERY_BROKER_URL"]):
    if _url and "127.0.0.1" not in _url:
        raise SystemExit(f"benchmarks only run against 127.0.0.1: {_url}")


def env(**extra: str) -> dict[str, str]:
    merged = {**os.environ, **ENV, **extra}
    merged.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # Each process it starts says what it is (config/wsgi.py) and gets its database settings.
    merged.pop("SARA_PROCESS", None)
    return merged


def setup_django() -> None:
    """Django for this script, on the bench database (created and migrated if need be)."""
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    _create_database()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def _create_database() -> None:
    import psycopg

    url = ENV["DATABASE_URL"]
    name = url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def meta_webhook(
    messages: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    contacts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Meta "messages" webhook body for the bench's phone number, as Meta nests it."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001234", "phone_number_id": PHONE_NUMBER_ID},
    }
    if contacts:
        value["contacts"] = contacts
    if messages:
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    }


def customer_text(wa_id: str, name: str, wamid: str, text: str) -> dict[str, Any]:
    """Meta's webhook for one text a customer writes now."""
    return meta_webhook(
        messages=[
            {
                "from": wa_id,
                "id": wamid,
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": text},
            }
        ],
        contacts=[{"profile": {"name": name}, "wa_id": wa_id}],
    )


# --- processes ------------------------------------------------------------------------------
_started: list[subprocess.Popen] = []


def start(name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    OUT.mkdir(exist_ok=True)
    log = open(OUT / f"{name}.log", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env(**(extra_env or {})),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped with all its children
    )
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


@atexit.register
def _stop_all() -> None:
    for proc in reversed(_started):
        stop(proc)


def _exit_on_signal(signum: int, frame: object) -> None:
    # Python's default for SIGTERM ends the process at once, skipping `finally` and atexit:
    # the web server, workers and fakes started in their own sessions would outlive the
    # benchmark. As an exception, the benchmark stops what it started on its way out.
    raise SystemExit(128 + signum)


for _signal in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_signal, _exit_on_signal)


def start_web(
    workers: int,
    name: str = "web",
    worker_class: str = "sync",
    threads: int = 1,
    extra_env: dict[str, str] | None = None,
    app: str = "config.wsgi",
    port: int = WEB_PORT,
) -> subprocess.Popen:
    argv = [
        str(BIN / "gunicorn"),
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--backlog",
        "2048",
        "--timeout",
        "30",
        "--graceful-timeout",
        "5",
    ]
    if worker_class == "gthread":
        argv += ["--threads", str(threads)]
    # config.wsgi gives each sync worker one persistent connection, no pool (settings.py).
    proc = start(name, argv, extra_env)
    wait_http(f"http://127.0.0.1:{port}/health", proc)
    return proc


def start_worker(
    concurrency: int = 100, name: str = "worker", extra_env: dict[str, str] | None = None, nice: int = 0
) -> subprocess.Popen:
    proc = start(
        name,
        [
            *(["nice", "-n", str(nice)] if nice else []),
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "-l",
            "info",
            "-n",
            f"bench-{name}@%h",
        ],
        extra_env,
    )
    if nice:
        # Each process started here leads its own session, and with the kernel's autogroups
        # (sched_autogroup_enabled) a session shares the CPU as a whole: its niceness is set
        # there, as a deploy would give the worker's container fewer CPU shares than the web's.
        with contextlib.suppress(OSError):
            Path(f"/proc/{proc.pid}/autogroup").write_text(str(nice))
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited; see {OUT / name}.log")
        if "ready." in (OUT / f"{name}.log").read_text(errors="replace"):
            return proc
        time.sleep(0.3)
    raise SystemExit(f"{name} not ready after 60 s; see {OUT / name}.log")


def start_fakes(
    status_webhook: bool = True, fake_priority: bool = False
) -> tuple[subprocess.Popen, subprocess.Popen]:
    openai = start(
        "fake-openai",
        [PYTHON, str(BENCH / "fakes.py"), "openai", "--port", str(OPENAI_PORT), "--latency", "0.8"],
    )
    graph_argv = [PYTHON, str(BENCH / "fakes.py"), "graph", "--port", str(GRAPH_PORT), "--latency", "0.3"]
    if fake_priority:
        # The fake stands for Meta, whose clock no load on this machine slows: ahead of the
        # worker and any CPU hog, it stamps arrivals when they happen, not when it gets the CPU.
        graph_argv = ["nice", "-n", "-10", *graph_argv]
    if status_webhook:
        graph_argv += ["--status-webhook", f"{WEB}/webhook/messages", "--app-secret", APP_SECRET]
    graph = start("fake-graph", graph_argv)
    wait_http(f"http://127.0.0.1:{OPENAI_PORT}/stats", openai)
    wait_http(f"http://127.0.0.1:{GRAPH_PORT}/stats", graph)
    return openai, graph


def wait_http(url: str, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process for {url} exited (code {proc.returncode}); see bench/out/")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not answering after {seconds} s")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _memory_mb(pid: int, proc_file: str, field: str) -> float:
    """A memory field of /proc/<pid>/<proc_file> summed over the process and its descendants, in MB."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/{proc_file}").read_text().splitlines():
                if line.startswith(field):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    return _memory_mb(pid, "status", "VmRSS:")


def pss_mb(pid: int) -> float:
    """Proportional memory of a process and its descendants, in MB: a page shared by n processes
    counts 1/n in each (summed RSS counts the shared libraries' pages once per process)."""
    return _memory_mb(pid, "smaps_rollup", "Pss:")


def sample_rss(
    pids: list[int], samples: list[float], stop: threading.Event, pss: list[float] | None = None
) -> None:
    """Every second until `stop`: the processes' resident memory together, in MB (and their
    proportional memory together, into `pss`)."""
    while not stop.is_set():
        samples.append(sum(rss_mb(pid) for pid in pids))
        if pss is not None:
            pss.append(sum(pss_mb(pid) for pid in pids))
        stop.wait(1.0)


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = [int(c) for c in children]
    for c in list(out):
        out += _descendants(c)
    return out


# --- database -------------------------------------------------------------------------------
def python_course(**fields: Any) -> Any:
    """The product the benchmarks' carts hold: the Python course, with a 10 % discount link."""
    from recovery.models import Product

    return Product.objects.create(
        **{
            "product_id": "curso-python",
            "name": "Curso de Python",
            "description": "Curso online de Python com 40 horas de vídeo e certificado.",
            "payment_link": "https://pay.example.com/curso-python",
            "discount_link": "https://pay.example.com/curso-python?cupom=VOLTA10",
            "discount_percent": Decimal("10"),
            **fields,
        }
    )


def sent_count(purpose: str) -> int:
    """Outgoing messages of one purpose that reached the fake Graph API (sent or beyond)."""
    from messaging.models import Message

    return Message.objects.filter(
        direction="out", purpose=purpose, status__in=["sent", "delivered", "read"]
    ).count()


def reset_data() -> None:
    """Empty the bench database's business tables, Redis DB 9 and the broker's queues (nothing else)."""
    import redis
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE messaging_message, messaging_statusupdate, messaging_webhookevent, "
            "messaging_conversation, recovery_abandonment, recovery_customer, recovery_product "
            "RESTART IDENTITY CASCADE"
        )
    redis.Redis.from_url(ENV["REDIS_URL"]).flushdb()
    if ENV["CELERY_BROKER_URL"]:
        # RabbitMQ keeps its queues: an earlier run's tasks would be worked off in this one.
        from config.celery import app

        app.control.purge()


def vacuum_analyze() -> None:
    from django.db import connection

    connection.close()
    with connection.cursor() as cursor:
        for table in (
            "messaging_message",
            "messaging_conversation",
            "recovery_customer",
            "recovery_abandonment",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


# --- figures --------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0–100) of unsorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def machine() -> dict[str, Any]:
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "?",
    )
    return {
        "nproc": os.cpu_count(),
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "load": os.getloadavg(),
    }


def cpu_snapshot() -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by every process on the machine, each with the part it plays."""
    ticks = os.sysconf("SC_CLK_TCK")
    ours = {os.getpid(): "loadgen"}  # this script: seeding, the Python load generator, checks
    for proc in _started:
        if proc.poll() is None:
            argv = proc.args if isinstance(proc.args, list) else ["?"]
            if Path(argv[0]).name == "nice":
                argv = argv[3:]  # nice -n N <command>
            name = Path(argv[0]).name
            kind = {"gunicorn": "web", "celery": "worker", "py-spy": "profiler"}.get(name, "fakes")
            for pid in [proc.pid, *_descendants(proc.pid)]:
                ours[pid] = kind
    snapshot: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        kind = ours.get(int(entry.name)) or _kind(cmdline)
        snapshot[int(entry.name)] = (kind, (int(fields[11]) + int(fields[12])) / ticks)
    return snapshot


def _kind(cmdline: str) -> str:
    database = ENV["DATABASE_URL"].rsplit("/", 1)[1]
    words = cmdline.split()
    if cmdline.startswith("postgres: "):
        # "postgres: 15/main: postgres <database> <client> <state>": a backend; else a helper.
        if len(words) > 4 and words[2] == "postgres" and words[3] != database:
            return "other"  # another database's backend: someone else's tests
        return "postgres"
    if "bin/postgres" in cmdline or "redis-server" in cmdline:
        return "postgres" if "postgres" in cmdline else "redis"
    if "beam.smp" in cmdline and "rabbit" in cmdline:
        return "rabbitmq"  # idle unless it is the broker (BENCH_BROKER_URL)
    return "other"


def cpu_by_kind(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], seconds: float, **extra: float
) -> dict[str, float]:
    """Cores used per part between two snapshots; "other" is whatever else runs on the machine."""
    used: dict[str, float] = dict(extra)
    for pid, (kind, cpu) in after.items():
        start = before.get(pid, (kind, 0.0))[1]
        used[kind] = used.get(kind, 0.0) + max(0.0, cpu - start)
    return {kind: round(total / seconds, 2) for kind, total in sorted(used.items())}


def children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk, load generators run to the end)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def save(name: str, result: dict[str, Any]) -> None:
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
