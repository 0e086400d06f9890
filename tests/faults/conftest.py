"""Real Celery worker processes against the test database, Redis (or RabbitMQ) and a Graph fake."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from kombu import Connection
from kombu.exceptions import OperationalError

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


RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
_RABBITMQ_QUEUES = ("celery", "send")


def _rabbitmq_reachable() -> bool:
    with Connection(f"{RABBITMQ_URL}//", connect_timeout=2) as conn:
        try:
            conn.ensure_connection(max_retries=1, timeout=2)
        except (OperationalError, OSError):
            return False
    return True


def _rabbitmqctl(*args: str) -> bool:
    if not shutil.which("rabbitmqctl"):
        return False
    result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, timeout=60)  # noqa: S603, S607
    return result.returncode == 0


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """A vhost of this run's own, so parallel runs on one RabbitMQ never share a queue.

    Without rabbitmqctl (a remote RabbitMQ) the default vhost is used and its queues are
    purged around each test instead.
    """
    if not _rabbitmq_reachable():
        pytest.skip(f"needs RabbitMQ at {RABBITMQ_URL} (start it with `rabbitmq-server -detached`)")
    vhost = f"sara-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    if _rabbitmqctl("add_vhost", vhost) and _rabbitmqctl(
        "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"
    ):
        yield f"{RABBITMQ_URL}/{vhost}"
        _rabbitmqctl("delete_vhost", vhost)
    else:
        yield f"{RABBITMQ_URL}//"


class BrokerUnderTest:
    """The broker the test process publishes to and the workers consume from."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url

    def depth(self, queue: str) -> int:
        """Tasks waiting in a queue (not those a worker holds unacknowledged)."""
        with Connection(self.url) as conn:
            channel = conn.channel()
            try:
                return channel.queue_declare(queue=queue, passive=True).message_count
            except conn.channel_errors:
                return 0  # never declared, or (Redis) emptied

    def lose_everything(self) -> None:
        """Everything the broker carried is gone, as after a crash without persistence."""
        if self.kind == "redis":
            redis.Redis.from_url(self.url).flushdb()
            return
        with Connection(self.url) as conn:
            for queue in _RABBITMQ_QUEUES:
                with contextlib.suppress(*conn.channel_errors):  # not declared yet: nothing to lose
                    conn.channel().queue_purge(queue)


def _point_celery_at(url: str, transport_options: dict[str, Any]) -> None:
    """This process's Celery app publishes to `url` from now on (its pools are rebuilt)."""
    celery_app.conf.broker_url = url
    celery_app.conf.broker_transport_options = transport_options
    # kombu keeps one pool per broker URL; dropping the app's reference is enough to switch.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def _tasks_to_real_workers(settings: Any) -> None:
    """Tasks go to the broker for worker processes; stuck work and claims time out in seconds."""
    celery_app.conf.task_always_eager = False
    settings.SARA_STUCK_AFTER_SECONDS = 1
    settings.SARA_CLAIM_LEASE_SECONDS = 3
    # A customer's quick messages answered one by one, unless a test is about bursts.
    settings.SARA_BURST_SECONDS = 0


@pytest.fixture(params=["redis", "rabbitmq"])
def any_broker(request: pytest.FixtureRequest, settings: Any) -> Iterator[BrokerUnderTest]:
    """The same test on Redis and on RabbitMQ as Celery's broker (Redis keeps the limiter)."""
    if request.param == "rabbitmq":
        url = request.getfixturevalue("rabbitmq_url")
        options: dict[str, Any] = {"confirm_publish": True}
    else:
        url = settings.REDIS_URL
        options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    under_test = BrokerUnderTest(request.param, url)
    saved = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)
    settings.CELERY_BROKER_URL = url
    _point_celery_at(url, options)
    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # the limiter's keys, and Redis's queues
    under_test.lose_everything()
    _tasks_to_real_workers(settings)
    yield under_test
    celery_app.conf.task_always_eager = True
    under_test.lose_everything()
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    _point_celery_at(*saved)


@pytest.fixture
def broker(settings: Any) -> Iterator[redis.Redis]:
    """Tasks published to the real Redis broker (not run in-process), emptied before and after."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    _tasks_to_real_workers(settings)
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
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "WHATSAPP_BACKEND": "messaging.whatsapp.cloud.CloudAPIBackend",
            "WHATSAPP_ACCESS_TOKEN": "test-token",
            "WHATSAPP_API_BASE_URL": self.graph.base_url,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "SARA_INTERPRETER": "rules",
            "SARA_QUIET_HOURS": "",
            "SARA_STUCK_AFTER_SECONDS": "1",
            "SARA_CLAIM_LEASE_SECONDS": "3",
            "SARA_BURST_SECONDS": str(settings.SARA_BURST_SECONDS),
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
                   timeout=60, what="the worker to answer ping")  # fmt: skip
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
def workers(
    request: pytest.FixtureRequest, graph_server: GraphFake, tmp_path: Path
) -> Iterator[Callable[..., Workers]]:
    # Set up the test's broker first, so the workers are stopped before it is emptied.
    request.getfixturevalue("any_broker" if "any_broker" in request.fixturenames else "broker")
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
