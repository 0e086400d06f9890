#!/usr/bin/env bash
# Sara's benchmarks with one command, then the table. About 20 minutes.
#   bash bench/run.sh
# Needs PostgreSQL and Redis on 127.0.0.1 (the bench uses database sara_bench, created and
# migrated here, and Redis DB 9, emptied here) and wrk (apt-get install -y wrk). Everything
# listens and connects on 127.0.0.1 only; each step is bounded and stops by itself.
# Results: bench/out/*.json (raw), the table below, bench/RESULTS.md (the write-up).
# The machine's load is printed before each step: the figures mean little on a busy machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python

command -v wrk >/dev/null || { echo "bench: needs wrk (apt-get install -y wrk)" >&2; exit 1; }
mkdir -p bench/out
load() { echo "   (load $(cut -d' ' -f1-3 /proc/loadavg))"; }

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB"
echo "== 1/6 CPU per request of each webhook, in-process"; load
timeout 600 "$PY" bench/percall.py --n 1000 | grep -E '^(bare|inbound|status|batch|abandonment) '
echo "== 2/6 worker CPU per answered message: task code in-process, then through a real worker"; load
timeout 600 "$PY" bench/percall_worker.py --n 300 --worker-n 600 | grep -E '^(per message|through)'
echo "== 3/6 Celery's own CPU per task"; load
timeout 300 "$PY" bench/task_overhead.py --n 2000 | grep 'per task'
echo "== 4/6 webhook ingest (wrk, about 2 minutes)"; load
timeout 900 "$PY" bench/ingest.py | tee bench/out/ingest.log | grep -E '^(bare|single|batch)'
echo "== 5/6 end to end at 80 messages/s for 60 s, then at 30/s (about 7 minutes)"; load
# As compose.yaml deploys the worker on 2 cores: two processes of 100 threads, a lower CPU
# weight; Meta's upgraded tier (WHATSAPP_MPS 1000): 80 replies/s is above the default 80/s.
timeout 700 "$PY" bench/e2e.py --worker-processes 2 --concurrency 100 --worker-nice 10 > bench/out/e2e.log
cp bench/out/e2e.json bench/out/e2e-80.json
timeout 700 "$PY" bench/e2e.py --rate 30 --worker-processes 2 --concurrency 100 --worker-nice 10 > bench/out/e2e-30.log
cp bench/out/e2e.json bench/out/e2e-30.json
cp bench/out/e2e-80.json bench/out/e2e.json
echo "== 6/6 abandonment burst, 5,000 carts in 60 s (about 2.5 minutes)"; load
timeout 600 "$PY" bench/burst.py > bench/out/burst.log
echo
"$PY" bench/report.py
