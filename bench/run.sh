#!/usr/bin/env bash
# Sara's three benchmarks (issue 6) with one command, then the table. About 8 minutes.
#   bash bench/run.sh
# Needs PostgreSQL and Redis on 127.0.0.1 (the bench uses database sara_bench, created and
# migrated here, and Redis DB 9, emptied here) and wrk (apt-get install -y wrk). Everything
# listens and connects on 127.0.0.1 only; each step is bounded and stops by itself.
# Results: bench/out/*.json (raw), the table below, bench/RESULTS.md (the write-up).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python

command -v wrk >/dev/null || { echo "bench: needs wrk (apt-get install -y wrk)" >&2; exit 1; }
mkdir -p bench/out

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1/3 webhook ingest (wrk, about 2 minutes)"
timeout 600 "$PY" bench/ingest.py | tee bench/out/ingest.log | grep -E '^(bare|single|batch)'
echo "== 2/3 end to end at 80 messages/s for 60 s (about 3 minutes)"
# As compose.yaml deploys the worker on 2 cores: two processes of 50 threads, a lower CPU weight.
timeout 600 "$PY" bench/e2e.py --worker-processes 2 --concurrency 50 --worker-nice 10 > bench/out/e2e.log
echo "== 3/3 abandonment burst, 5,000 carts in 60 s (about 2.5 minutes)"
timeout 600 "$PY" bench/burst.py > bench/out/burst.log
echo
"$PY" bench/report.py
