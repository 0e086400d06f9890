"""Money per step and per template variant against the holdout (SPEC §13, §15), from a simulated month."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command

from messaging.models import Template
from recovery.models import SequenceStep, StepVariant
from recovery.money.figures import sequence_report

pytestmark = pytest.mark.django_db

END = date(2026, 11, 29)
START = date(2026, 10, 31)


def three_steps_two_invitations() -> None:
    """What the README's walk-through sets up in the admin."""
    first = SequenceStep.objects.get(order=1)
    first.delay_hours = Decimal(1)
    first.save()
    second_invitation, _ = Template.objects.get_or_create(name="recovery_invitation_b", language="pt_BR")
    StepVariant.objects.create(step=first, template=second_invitation, weight=1)
    SequenceStep.objects.filter(order=2).update(delay_hours=Decimal(23))
    last = SequenceStep.objects.create(order=3, delay_hours=Decimal(24))
    last_call, _ = Template.objects.get_or_create(name="recovery_last_call", language="pt_BR")
    StepVariant.objects.create(step=last, template=last_call, weight=1)


def simulate(lift: str) -> str:
    out = io.StringIO()
    call_command(
        "sara_simulate_month",
        "--carts=1500",
        "--percent=25",
        f"--variant-lift={lift}",
        "--end=2026-11-29",
        "--replace",
        "--force",
        stdout=out,
    )
    return out.getvalue()


def test_a_clearly_better_variant_is_named_and_shown_per_step_on_the_page_and_in_the_csv(admin_client):
    three_steps_two_invitations()
    printed = simulate("1.5")

    report = sequence_report(start=START, end=END)
    assert report.best == {1: "recovery_invitation_b"}
    labels = [(r.step, r.variant) for r in report.rows]
    assert labels == [
        (1, ""),
        (1, "recovery_invitation"),
        (1, "recovery_invitation_b"),
        (2, ""),
        (2, "recovery_followup"),
        (3, ""),
        (3, "recovery_last_call"),
    ]
    # The variants of a step split its carts and share its held-out group.
    step, a, b = report.rows[:3]
    assert a.carts + b.carts == step.carts
    assert a.row.held_out == b.row.held_out == step.row.held_out
    assert "Best variant of step 1: recovery_invitation_b" in printed

    page = admin_client.get("/admin/money/?start=2026-10-31&end=2026-11-29").content.decode()
    assert 'id="money-sequence-table"' in page
    assert "<strong>recovery_invitation_b</strong>" in page

    body = admin_client.get("/admin/money.csv?start=2026-10-31&end=2026-11-29").content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))
    main_width = len(rows[0])
    sequence_header = rows[rows.index([]) + 1]
    assert len(sequence_header) == main_width + 5  # the main columns, then step, variant...
    variant_rows = [
        r for r in rows if len(r) == main_width + 5 and r[main_width + 1] == "recovery_invitation_b"
    ]
    assert len(variant_rows) == 1


def test_no_variant_is_named_while_the_intervals_overlap(admin_client):
    three_steps_two_invitations()
    simulate("0")

    report = sequence_report(start=START, end=END)
    assert report.best == {}
    first, second = (r for r in report.rows if r.step == 1 and r.variant)
    # Each has an interval; they overlap, so neither is named.
    assert first.net_per_cart[1] <= second.net_per_cart[2]
    assert second.net_per_cart[1] <= first.net_per_cart[2]
    page = admin_client.get("/admin/money/?start=2026-10-31&end=2026-11-29").content.decode()
    assert 'id="best-variants-none"' in page
