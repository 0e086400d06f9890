"""A benchmark stopped with SIGTERM stops the web server, the workers and the fakes it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.worker]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _tree(pid: int) -> dict[int, str]:
    """Every live descendant of pid with its command line."""
    tree: dict[int, str] = {}
    pending = _children(pid)
    while pending:
        child = pending.pop()
        try:
            tree[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        pending += _children(child)
    return tree


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _bench_env() -> dict[str, str]:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    # A database and a Redis DB of its own: the benchmark empties both when it starts.
    redis_base, redis_db = settings.REDIS_URL.rsplit("/", 1)
    return {
        **os.environ,
        "BENCH_DATABASE_URL": f"postgres://{user}@{host}:{port}/{db['NAME']}_bench_stop",
        "BENCH_REDIS_URL": f"{redis_base}/{(int(redis_db or 0) + 10) % 16}",
        "BENCH_WEB_PORT": str(_free_port()),
        "BENCH_OPENAI_PORT": str(_free_port()),
        "BENCH_GRAPH_PORT": str(_free_port()),
    }


def test_e2e_stopped_with_sigterm_leaves_no_web_server_worker_or_fake_running():
    tiny = ["--rate", "1", "--duration", "120", "--web-workers", "1", "--concurrency", "2", "--drain", "1"]
    e2e = subprocess.Popen(  # noqa: S603 - our own interpreter and benchmark, fixed arguments
        [sys.executable, str(ROOT / "bench" / "e2e.py"), *tiny],
        cwd=ROOT,
        env=_bench_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # The Celery worker starts last, after the fakes and gunicorn.
        deadline = time.monotonic() + 180
        started: dict[int, str] = {}
        while time.monotonic() < deadline and e2e.poll() is None:
            started = _tree(e2e.pid)
            if any("celery" in command for command in started.values()):
                break
            time.sleep(0.5)
        assert any("celery" in command for command in started.values()), (
            "the benchmark never started its worker"
        )
        assert any("gunicorn" in command for command in started.values())
        assert any("fakes.py" in command for command in started.values())

        e2e.send_signal(signal.SIGTERM)
        e2e.wait(timeout=60)

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_running(pid) for pid in started):
            time.sleep(0.2)
        left = {pid: command for pid, command in started.items() if _running(pid)}
        assert left == {}
    finally:
        if e2e.poll() is None:
            e2e.kill()
            e2e.wait()
