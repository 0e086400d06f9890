#!/usr/bin/env bash
# CPU per call of `process_inbound` and `send_message` for two commits, measured back to back.
#
#   bash bench/percall_compare.sh BEFORE AFTER [ROUNDS] [N]      # e.g. main~5 main 4 300
#
# Each commit is checked out in a worktree of its own (under a temporary directory, removed at
# the end) with its locked dependencies, and measured by its own `bench/percall_worker.py
# --worker-n 0` (the task code in-process, N messages after 50 of warm-up) on a bench database
# of its own (their migrations may differ). Rounds alternate which commit goes first, so the
# machine's load falls on both alike; the medians are what to compare. Environment as for every
# benchmark (bench/common.py): BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_*_PORT.
set -euo pipefail

[[ $# -ge 2 ]] || { sed -n '2,11p' "$0"; exit 2; }
before=$1 after=$2 rounds=${3:-3} n=${4:-300}
repo="$(git rev-parse --show-toplevel)"
database="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/sara_bench}"
tmp="$(mktemp -d)"
results="$tmp/results.tsv"

cleanup() {
    for side in before after; do
        [[ -d "$tmp/$side" ]] && git -C "$repo" worktree remove --force "$tmp/$side" >/dev/null 2>&1
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

for side in before after; do
    commit=${!side}
    git -C "$repo" worktree add --quiet --detach "$tmp/$side" "$commit"
    (cd "$tmp/$side" && uv sync --frozen --quiet)
    printf '%s\t%s\n' "$side" "$(git -C "$repo" rev-parse --short "$commit")" >&2
done

measure() {  # measure <side> <round>
    local side=$1 round=$2 line
    line="$(cd "$tmp/$side" && BENCH_DATABASE_URL="${database}_$side" \
        .venv/bin/python bench/percall_worker.py --n "$n" --worker-n 0 2>>"$tmp/$side.log" | grep '^per message:')" \
        || { echo "percall_worker.py failed on $side:" >&2; tail -20 "$tmp/$side.log" >&2; exit 1; }
    # "per message: process_inbound 12.93 ms CPU (17 queries), send_message 3.92 ms CPU (9 queries)"
    read -r process send < <(sed -E 's/.*process_inbound ([0-9.]+) ms.*send_message ([0-9.]+) ms.*/\1 \2/' <<<"$line")
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$side" "$process" "$send" "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$results"
}

printf 'round\tcommit\tprocess_inbound_ms\tsend_message_ms\tload\n'
for round in $(seq "$rounds"); do
    if ((round % 2)); then order=(before after); else order=(after before); fi
    for side in "${order[@]}"; do
        measure "$side" "$round"
    done
done

python3 - "$results" <<'EOF'
import statistics
import sys

rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
median = {
    (side, task): statistics.median(float(r[column]) for r in rows if r[1] == side)
    for side in ("before", "after")
    for task, column in (("process_inbound", 2), ("send_message", 3))
}
for task in ("process_inbound", "send_message"):
    b, a = median[("before", task)], median[("after", task)]
    print(f"{task}: before {b:.2f} ms, after {a:.2f} ms CPU per call (median): {100 * (a - b) / b:+.1f} %")
EOF
