"""py-spy profiles for the benchmarks: record a process tree, print where its CPU goes.

    .venv/bin/python bench/profile.py bench/out/profile-e2e-worker.txt [--top 40]

Recorded with `py-spy record --gil --nonblocking --format raw`: only samples of threads holding
the GIL (CPU, not waiting), without pausing the process. The summary gives each function's
share of all samples, inclusive (itself and what it calls) and self.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import common

# Frames every sample has (process, thread start-up, Celery's and gunicorn's loops): noise.
_SKIP = (
    "process ",
    "Thread.",
    "_bootstrap",
    "_worker (thread",
    "_WorkItem.run",
    "<module> (",
    "main (",
    "run (wsgiapp",
    "Application.run",
    "BaseApplication.run",
    "Arbiter.",
    "Worker.init_process",
    "SyncWorker.run",
    "Command.",
    "Context.invoke",
    "Group.invoke",
    "pass_context",
    "handle_preload",
    "worker (worker",
    "WorkController.start",
    "Blueprint.start",
    "StartStopStep.start",
)


def binary() -> str:
    """The venv's own py-spy (`uv sync --frozen --group bench`), else one on the PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy") or "py-spy"


def record(name: str, pid: int, seconds: int, subprocesses: bool = False) -> subprocess.Popen:
    """Start py-spy on pid for `seconds`, in the background; it writes bench/out/profile-<name>.txt."""
    out = common.OUT / f"profile-{name}.txt"
    argv = [
        binary(),
        "record",
        "--gil",
        "--nonblocking",
        "--rate",
        "100",
        "--format",
        "raw",
    ]
    argv += ["--duration", str(seconds), "--pid", str(pid), "--output", str(out)]
    if subprocesses:
        argv.append("--subprocesses")
    return common.start(f"py-spy-{name}", argv)


def _name(frame: str) -> str:
    # "function (path/to/file.py:123)" → "function (file.py)"
    if " (" not in frame:
        return frame
    function, where = frame.split(" (", 1)
    return f"{function} ({where.split(':')[0].split('/')[-1]})"


def summarize(path: Path, top: int = 40) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        n = int(count)
        total += n
        frames = [_name(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    lines = [f"{total} samples (GIL held), share of all samples", "  inclusive:"]
    shown = [(f, n) for f, n in inclusive.most_common() if not f.startswith(_SKIP)][:top]
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in shown]
    lines.append("  self:")
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(15)]
    lines.append("  by layer (innermost frame outside the standard library):")
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in by_layer(path).most_common()]
    return "\n".join(lines)


# Where a sample's CPU is charged: the innermost frame outside the standard library decides
# (a json.dumps called by logging is logging's; a socket read by psycopg is the driver's).
# py-spy names a file from its package: "psycopg/cursor.py", "threading.py".
_OPENAI = "OpenAI SDK, httpx, pydantic"
_CELERY = "Celery, kombu, the broker's client"
_LAYERS = {
    "psycopg": "PostgreSQL driver (psycopg)",
    "psycopg_pool": "PostgreSQL driver (psycopg)",
    "openai": _OPENAI,
    "httpx": _OPENAI,
    "httpx2": _OPENAI,
    "httpcore": _OPENAI,
    "pydantic": _OPENAI,
    "pydantic_core": _OPENAI,
    "h11": _OPENAI,
    "anyio": _OPENAI,
    "requests": "Graph client (requests, urllib3)",
    "urllib3": "Graph client (requests, urllib3)",
    "celery": _CELERY,
    "kombu": _CELERY,
    "amqp": _CELERY,
    "vine": _CELERY,
    "billiard": _CELERY,
    "redis": "Redis client",
    "logging": "logging (JSON lines)",
    "pythonjsonlogger": "logging (JSON lines)",
    "prometheus_client": "metrics",
    "sentry_sdk": "Sentry",
}
_OWN = {"core", "messaging", "recovery", "sara", "compliance", "config", "backoffice"}
_THIRD_PARTY = {"phonenumbers", "environ", "rest_framework", "click", "dateutil", "tzdata"}


def layer_of(stack: list[str]) -> str:
    redis = False
    for frame in reversed(stack):
        if " (" not in frame:
            continue
        path = frame.rsplit(" (", 1)[1].split(":")[0]
        top = path.split("/")[0] if "/" in path else ""
        if top == "redis":
            # Redis serves three masters: charged to whoever called it.
            redis = True
            continue
        if redis and top in _OWN:
            return f"Redis client, called from {path}"
        if redis and top not in _LAYERS:
            continue
        if top == "django":
            return "Django's database layer" if path.startswith("django/db/") else "Django, other"
        if top in _LAYERS:
            return _LAYERS[top]
        if top in _OWN:
            return "Sara's own code"
        if top in _THIRD_PARTY:
            return "other libraries"
        # The standard library (threading.py, json/encoder.py, concurrent/...): its caller decides.
    return _LAYERS["redis"] if redis else "Python runtime (threads, stdlib)"


def by_layer(path: Path) -> Counter[str]:
    """Samples per layer (see _LAYERS), for the 'where does a message's CPU go' tables."""
    layers: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        if line.strip():
            stack, count = line.rsplit(" ", 1)
            layers[layer_of(stack.split(";"))] += int(count)
    return layers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    print(summarize(args.path, args.top))


if __name__ == "__main__":
    main()
