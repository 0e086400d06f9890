"""The table of the last run (bench/out/*.json) against the targets: issue 16's for the worker's
CPU, ingest, the end-to-end loop and the brokers; issue 6's for the burst.

.venv/bin/python bench/report.py [--markdown]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import common


def _load(name: str) -> dict[str, Any] | None:
    path = common.OUT / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rows() -> list[tuple[str, str, str, str]]:
    """(measure, target, measured, verdict) for every figure the issues ask for."""
    out: list[tuple[str, str, str, str]] = []

    def add(measure: str, target: str, measured: str, ok: bool | None) -> None:
        out.append((measure, target, measured, "—" if ok is None else ("met" if ok else "NOT met")))

    percall = _load("percall-worker")
    if percall and "worker" in percall:
        w = percall["worker"]
        add(
            f"worker CPU per answered message, through a worker ({w['concurrency']} threads, {w['n']} messages)",
            "≤ 10 ms",
            f"{w['cpu_ms']} ms (task code alone: process_inbound {percall['process_cpu_ms']} ms, "
            f"{percall['queries']['process']} queries; send_message {percall['send_cpu_ms']} ms, "
            f"{percall['queries']['send']} queries)",
            w["cpu_ms"] <= 10,
        )
        for layer, ms in (w.get("layers_ms") or {}).items():
            add(f"    of which {layer}", "", f"{ms} ms", None)
    for broker in ("redis", "rabbitmq"):
        overhead = _load(f"task-overhead-{broker}")
        if overhead:
            add(f"Celery's own CPU per task on {broker}", "—", f"{overhead['cpu_ms_per_task']} ms", None)
    ingest = _load("ingest")
    if ingest:
        s = ingest["summary"]
        bare, single = s["bare"], s["single"]
        add(
            f"ingest: bare Django view ({ingest['gunicorn']}, {ingest['connections']} conn.)",
            "ceiling",
            f"{bare['rps']} req/s (runs {bare['rps_each']}); p50/p95/p99 {bare['p50_ms']}/{bare['p95_ms']}/{bare['p99_ms']} ms",
            None,
        )
        add(
            "ingest: single-update webhooks (1 message : 3 statuses)",
            "≥ 25 % of bare",
            f"{single['rps']} req/s (runs {single['rps_each']}) = {single['pct_of_bare']} %",
            single["pct_of_bare"] >= 25,
        )
        add(
            "ingest: single-update latency at 32 connections",
            "p99 < 100 ms",
            f"p50/p95/p99 {single['p50_ms']}/{single['p95_ms']}/{single['p99_ms']} ms",
            single["p99_ms"] < 100,
        )
        once = all(c["exactly_once"] for c in single["check"]) and (
            "batch" not in s or s["batch"]["check"]["exactly_once"]
        )
        add(
            "ingest: every inbound message stored exactly once",
            "yes",
            f"{sum(c['inbound_unique'] for c in single['check']) + s.get('batch', {}).get('check', {}).get('inbound_unique', 0)}"
            f" wamids, {'all' if once else 'NOT all'} stored once; queued once: {s['queue']['stored_and_queued_once']}",
            once and s["queue"]["stored_and_queued_once"],
        )
        if "batch" in s:
            b = s["batch"]
            add(
                "ingest: batched webhooks (10–100 updates)",
                "≥ 2,000 updates/s",
                f"{b['updates_per_s']} updates/s ({b['rps']} req/s, p99 {b['p99_ms']} ms); "
                f"fan-out of the >50 batches: {b['fan_out']['updates_per_s']} updates/s on {b['fan_out']['threads']} threads",
                b["updates_per_s"] >= 2000,
            )
    for name, label in (("e2e-80", "e2e"), ("e2e-30", "e2e"), ("e2e-rabbitmq", "e2e on RabbitMQ")):
        e2e = _load(name) or (_load("e2e") if name == "e2e-80" else None)
        if e2e:
            _e2e_rows(add, e2e, label)
    recovery = _load("broker_recovery")
    if recovery:
        for broker, rounds in recovery["results"].items():
            add(
                f"a SIGKILLed worker's tasks run again, {broker} (visibility timeout {recovery['visibility_timeout_s']} s)",
                "—",
                "after " + " and ".join(f"{r['median_s']} s" for r in rounds) + " (median of each round)",
                None,
            )
    burst = _load("burst")
    if burst:
        add(
            f"burst: {burst['config']['carts']} carts in {burst['config']['over_seconds']:.0f} s, all templates sent",
            f"≤ {burst['target_s']} s",
            f"{burst['all_sent_s'] if burst['all_sent_s'] is not None else 'not all'} s "
            f"({burst['graph_recipients']} sent, mean {burst['sends_per_second_mean']}/s)",
            burst["all_sent_s"] is not None and burst["all_sent_s"] <= burst["target_s"],
        )
        add(
            "burst: sends in any second",
            "≤ 80",
            f"max {burst['sends_per_second_max']} per second ({burst['sends_in_any_1s_window_max']} in any sliding 1 s)",
            burst["seconds_over_cap"] == 0,
        )
        add(
            "burst: one template per cart",
            "every cart",
            f"{burst['graph_recipients']} recipients, {burst['graph_recipients_sent_twice']} sent twice",
            burst["graph_recipients"] == burst["config"]["carts"]
            and burst["graph_recipients_sent_twice"] == 0,
        )
    limiter = _load("send_only")
    if limiter:
        cap = int(limiter["config"]["worker_env"].get("WHATSAPP_MPS", 80))
        add(
            f"limiter: sends in any sliding second at Graph, WHATSAPP_MPS {cap}, "
            f"{limiter['config']['cpu_hog']} busy process(es) competing",
            f"≤ {cap}",
            f"max {limiter['sends_in_any_1s_window_max']} ({limiter['sent']} sent, "
            f"{limiter['recipients_sent_twice']} twice)",
            limiter["sends_in_any_1s_window_max"] <= cap,
        )
    return out


def _e2e_rows(add: Any, e2e: dict[str, Any], label: str) -> None:
    c = e2e["config"]
    # "2 × celery --pool threads --concurrency 100, nice 10, …" → "2 × 100 threads"
    workers = c["worker"].split(",")[0].replace("celery --pool threads --concurrency ", "")
    at = f"{label}, {c['rate']:.0f} msg/s for {c['duration_s']:.0f} s, {workers} threads"
    add(
        f"{at}: replies/s",
        f"{c['rate']:.0f} replies/s sustained",
        f"{e2e['replies_per_s_mean']} mean, {e2e['replies_per_s_steady_mean']} steady (min "
        f"{e2e['replies_per_s_steady_min']}); cores {e2e.get('cores_by_process')}",
        (e2e["replies_per_s_steady_mean"] or 0) >= 0.98 * c["rate"],
    )
    o = e2e["overhead_ms"]
    add(
        f"{at}: (reply sent − webhook) − 1.1 s of fakes",
        "p95 < 250 ms",
        f"p50/p95/p99 {o['p50']}/{o['p95']}/{o['p99']} ms (over {o['n']} replies)",
        o["p95"] < 250 and o["n"] == c["messages"],
    )
    rss = e2e["worker_rss_mb"]
    add(f"{at}: worker RSS, all processes summed", "< 300 MB", f"{rss['max']} MB max", rss["max"] < 300)
    pss = e2e.get("worker_pss_mb")
    if pss:
        add(
            f"{at}: worker memory, shared pages counted once (PSS)",
            "< 300 MB",
            f"{pss['max']} MB max",
            pss["max"] < 300,
        )
    add(
        f"{at}: exactly one reply per message",
        "every message, once",
        f"reply rows: {e2e['inbound_with_exactly_one_reply']} messages with one, "
        f"{e2e['inbound_with_more_than_one_reply']} with more, {e2e['inbound_without_reply']} none; "
        f"sent to Graph: {e2e['graph_recipients']}, {e2e['graph_recipients_sent_twice']} twice",
        e2e["graph_recipients"] == c["messages"] and e2e["graph_recipients_sent_twice"] == 0,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    table = rows()
    if args.markdown:
        print("| measure | target | measured | |\n|---|---|---|---|")
        for row in table:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for measure, target, measured, verdict in table:
        print(f"{measure:<{widths[0]}}  {target:<{widths[1]}}  {measured:<{widths[2]}}  {verdict}")


if __name__ == "__main__":
    main()
