"""Real Celery worker processes against the test database, Redis and a Graph fake server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from messaging import whatsapp
from tests.faults.graph_fake import GraphFake

ROOT = Path(__file__).resolve().parents[2]
PHONE_NUMBER_ID = "106540352242922"


def wait_until(condition: Callable[[], bool], *, timeout: float, every: float = 0.2, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


@pytest.fixture
def graph_server(settings: Any) -> Iterator[GraphFake]:
    """The Graph fake, with this process's own sends (admin retries, sweeps) pointed at it too."""
    fake = GraphFake().start()
    settings.WHATSAPP_BACKEND = "messaging.whatsapp.cloud.CloudAPIBackend"
    settings.WHATSAPP_ACCESS_TOKEN = "test-token"
    settings.WHATSAPP_API_BASE_URL = fake.base_url
    settings.WHATSAPP_PHONE_NUMBER_ID = PHONE_NUMBER_ID
    whatsapp._backend.cache_clear()
    yield fake
    fake.stop()
    whatsapp._backend.cache_clear()


@pytest.fixture
def broker(settings: Any) -> Iterator[redis.Redis]:
    """Tasks published to the real Redis broker (not run in-process), emptied before and after."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    celery_app.conf.task_always_eager = False
    settings.SARA_STUCK_AFTER_SECONDS = 1
    settings.SARA_CLAIM_LEASE_SECONDS = 3
    yield client
    celery_app.conf.task_always_eager = True
    client.flushdb()


class Workers:
    """Starts and kills `celery -A config worker` processes sharing the test database."""

    def __init__(self, graph: GraphFake, extra_env: dict[str, str], log_path: Path) -> None:
        self.graph = graph
        self.extra_env = extra_env
        self.log_path = log_path
        self.processes: list[subprocess.Popen[bytes]] = []

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []

    def env(self) -> dict[str, str]:
        db = connection.settings_dict
        database_url = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "WHATSAPP_BACKEND": "messaging.whatsapp.cloud.CloudAPIBackend",
            "WHATSAPP_ACCESS_TOKEN": "test-token",
            "WHATSAPP_API_BASE_URL": self.graph.base_url,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "SARA_INTERPRETER": "rules",
            "SARA_QUIET_HOURS": "",
            "SARA_STUCK_AFTER_SECONDS": "1",
            "SARA_CLAIM_LEASE_SECONDS": "3",
            "CELERY_VISIBILITY_TIMEOUT": "20",
            "LOG_LEVEL": "WARNING",
            **self.extra_env,
        }

    def start(self, concurrency: int = 8) -> subprocess.Popen[bytes]:
        name = f"fault{len(self.processes)}-{os.getpid()}@%h"
        process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "threads",
             "--concurrency", str(concurrency), "-n", name, "-l", self.extra_env.get("LOG_LEVEL", "warning"),
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=self.log_path.open("ab"),
        )  # fmt: skip
        self.processes.append(process)
        wait_until(lambda: bool(celery_app.control.ping(destination=[name.replace("%h", os.uname().nodename)], timeout=0.5)),
                   timeout=30, what="the worker to answer ping")  # fmt: skip
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no warm shutdown, unacknowledged tasks stay in Redis, open transactions roll back."""
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def workers(graph_server: GraphFake, broker: redis.Redis, tmp_path: Path) -> Iterator[Callable[..., Workers]]:
    made: list[Workers] = []

    def make(**extra_env: str) -> Workers:
        pool = Workers(graph_server, extra_env, tmp_path / f"worker-{len(made)}.log")
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.stop_all()
    # Worker connections must be gone before the test database is flushed.
    connection.close()
