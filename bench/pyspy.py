"""py-spy profiles for the benchmarks: record a process tree, print where its CPU goes.

    .venv/bin/python bench/profile.py bench/out/profile-e2e-worker.txt [--top 40]

Recorded with `py-spy record --gil --nonblocking --format raw`: only samples of threads holding
the GIL (CPU, not waiting), without pausing the process. The summary gives each function's
share of all samples, inclusive (itself and what it calls) and self.
"""

from __future__ import annotations

import argparse
import subprocess
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


def record(name: str, pid: int, seconds: int, subprocesses: bool = False) -> subprocess.Popen:
    """Start py-spy on pid for `seconds`, in the background; it writes bench/out/profile-<name>.txt."""
    out = common.OUT / f"profile-{name}.txt"
    argv = ["py-spy", "record", "--gil", "--nonblocking", "--rate", "100", "--format", "raw"]
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
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    print(summarize(args.path, args.top))


if __name__ == "__main__":
    main()
