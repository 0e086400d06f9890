"""The money page and its CSV on 90 days of 30,000 carts: median time over several runs.

BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/sara_money_bench \\
    .venv/bin/python bench/money.py [--carts 30000] [--days 90] [--runs 7] [--rebuild | --keep-data]

The carts are built once (sara_simulate_month over 90 days: a 10 % holdout, three sequence
steps with two first-template variants, payments before and after each step, discounts,
replies with model tokens, Meta's pricing blocks, and a share of replies without one so the
free service tier is counted) and kept for the next run. The pages are asked for through
Django's test client, logged in as a staff member, with DEBUG off: the view, the report's
queries and the template, without a web server's overhead. Writes bench/out/money.json.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from datetime import date, timedelta
from decimal import Decimal

import common


def build(*, carts: int, days: int, rebuild: bool) -> None:
    from django.core.management import call_command

    from messaging.models import Message, Template
    from recovery.models import Abandonment, SequenceStep, StepVariant

    if Abandonment.objects.count() == carts and not rebuild:
        return
    first = SequenceStep.objects.get(order=1)
    first.delay_hours = Decimal(1)
    first.save()
    invitation_b, _ = Template.objects.get_or_create(name="recovery_invitation_b", language="pt_BR")
    StepVariant.objects.get_or_create(step=first, template=invitation_b, defaults={"weight": 1})
    SequenceStep.objects.filter(order=2).update(delay_hours=Decimal(23))
    last, _ = SequenceStep.objects.get_or_create(order=3, defaults={"delay_hours": Decimal(24)})
    last_call, _ = Template.objects.get_or_create(name="recovery_last_call", language="pt_BR")
    StepVariant.objects.get_or_create(step=last, template=last_call, defaults={"weight": 1})
    end = today() - timedelta(days=1)
    call_command(
        "sara_simulate_month",
        f"--carts={carts}",
        f"--days={days}",
        "--percent=10",
        f"--end={end.isoformat()}",
        "--replace",
        "--force",
        stdout=io.StringIO(),
    )
    # A third of the replies without Meta's pricing block: priced by Sara, the free tier counted.
    replies = Message.objects.filter(purpose=Message.Purpose.REPLY).order_by("pk")
    ids = list(replies.values_list("pk", flat=True))[::3]
    Message.objects.filter(pk__in=ids).update(
        pricing_billable=None, pricing_category="", pricing_type="", pricing_model=""
    )


def today() -> date:
    from django.utils import timezone

    return timezone.localdate()


def measure(*, days: int, runs: int) -> dict[str, object]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from recovery.models import Abandonment, ConversationMoney

    user, _ = get_user_model().objects.get_or_create(
        username="bench-money", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    end = today() - timedelta(days=1)
    results: dict[str, object] = {"carts": Abandonment.objects.count()}
    # Once: the sweep (recovery.tasks.settle_money) keeps the closed conversations' money; the
    # page only reads it.
    from recovery.money.figures import money_settle

    ConversationMoney.objects.all().delete()
    began = time.perf_counter()
    kept = money_settle(now=timezone.now())
    results["settle_sweep_from_empty_ms"] = round((time.perf_counter() - began) * 1000)
    print(
        f"sweep from empty, keeping {kept} conversations' money: {results['settle_sweep_from_empty_ms']} ms"
    )
    began = time.perf_counter()
    money_settle(now=timezone.now())
    results["settle_sweep_nothing_to_do_ms"] = round((time.perf_counter() - began) * 1000)
    print(f"sweep with nothing to do: {results['settle_sweep_nothing_to_do_ms']} ms")
    for name, path, span in (
        ("page_90_days", "/admin/money/", days),
        ("page_30_days", "/admin/money/", 30),
        ("csv_90_days", "/admin/money.csv", days),
    ):
        query = f"?start={(end - timedelta(days=span - 1)).isoformat()}&end={end.isoformat()}"
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path + query)  # warm-up, and the query count
        assert response.status_code == 200, response.status_code
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            response = client.get(path + query)
            times.append((time.perf_counter() - began) * 1000)
        results[name] = {
            "median_ms": round(statistics.median(times)),
            "runs_ms": [round(t) for t in times],
            "queries": len(queries),
            "bytes": len(response.content),
        }
        print(f"{name}: median {statistics.median(times):.0f} ms over {runs} runs, {len(queries)} queries")
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--carts", type=int, default=30_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--keep-data", action="store_true", help="use the carts already there, as they are")
    args = parser.parse_args()
    common.ENV["DATABASE_URL"] = common.os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sara_money_bench"
    )
    common.setup_django()
    began = time.perf_counter()
    if not args.keep_data:
        build(carts=args.carts, days=args.days, rebuild=args.rebuild)
    print(f"data ready in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    results = measure(days=args.days, runs=args.runs)
    results["load_average"] = common.os.getloadavg()
    common.OUT.mkdir(exist_ok=True)
    (common.OUT / "money.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
