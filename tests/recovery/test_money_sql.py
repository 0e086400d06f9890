"""recovery.sql.money_tallies against the ORM rows it adds up (SPEC §12: one test per statement)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F

from recovery import sql
from recovery.models import Abandonment, Conversation, ConversationMoney
from recovery.money import figures
from recovery.money.tasks import settle_money
from recovery.sequence import sequence_steps
from tests.recovery.test_money_figures import DAY1, DAY2, month, prices  # noqa: F401

pytestmark = pytest.mark.django_db


def by_hand(rows: list[dict], steps: list[int]) -> set[tuple]:
    """The same groupings as the statement, added up in Python over the cart facts."""
    groups: dict[tuple, list] = defaultdict(
        lambda: [0, 0, Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0)]
    )

    def add(key: tuple, carts: int, won: int, row: dict, cost: Decimal = Decimal(0)) -> None:
        g = groups[key]
        value = Decimal(str(row["value"]))
        g[0] += carts
        g[1] += won
        g[2] += won * value
        g[3] += Decimal(str(row["meta"]))
        g[4] += Decimal(str(row["model"]))
        g[5] += Decimal(str(row["given"]))
        g[6] += cost

    for row in rows:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        add((sql.DAY, None, None, day, row["share"], bool(row["held_out"])), 1, row["won"], row)
        if row["held_out"]:
            for order in steps:
                add(
                    (sql.HELD_STEP, order, None, None, row["share"], True),
                    row[f"open_{order}"],
                    row[f"held_won_{order}"],
                    row,
                )
            continue
        add((sql.TEMPLATE, None, row["template"], None, row["share"], False), 1, row["won"], row)
        for order in steps:
            if row[f"sent_{order}"] is None:
                continue
            cost = Decimal(str(row[f"cost_{order}"]))
            if order == steps[0]:
                cost = Decimal(str(row["meta"])) - sum(Decimal(str(row[f"cost_{o}"])) for o in steps[1:])
            add(
                (sql.STEP, order, row[f"variant_{order}"], None, row["share"], False),
                1,
                row[f"won_{order}"],
                row,
                cost,
            )
    return {
        (*key, carts, won, round(value, 2), round(meta, 4), round(model, 4), round(given, 2))
        + ((round(cost, 4),) if key[0] == sql.STEP else (None,))
        for key, (carts, won, value, meta, model, given, cost) in groups.items()
    }


def test_the_tallies_statement_adds_up_what_the_orm_rows_hold(month):  # noqa: F811
    since, until = figures._bounds(DAY1.date(), DAY2.date())
    opened = Abandonment.objects.filter(created_at__gte=since, created_at__lt=until)
    offsets = figures._offsets(sequence_steps(), seen=figures._steps_seen())
    steps = sorted(offsets)
    facts = figures._cart_facts(opened, offsets=offsets, since=since, until=until)

    tallies = sql.money_tallies(facts.query.sql_with_params(), steps=steps)

    got = {
        (
            t.kind,
            t.step,
            t.key,
            t.day if t.day is None or isinstance(t.day, date) else date.fromisoformat(str(t.day)),
            Decimal(str(t.share)),
            bool(t.held_out),
            int(t.carts),
            int(t.paid or 0),
            round(Decimal(str(t.value or 0)), 2),
            round(Decimal(str(t.meta or 0)), 4),
            round(Decimal(str(t.model or 0)), 4),
            round(Decimal(str(t.discount or 0)), 2),
            None if t.cost is None else round(Decimal(str(t.cost)), 4),
        )
        for t in tallies
    }
    assert got == by_hand(list(facts), steps)
    assert steps == [1, 2]
    assert {t.kind for t in tallies} == {sql.DAY, sql.TEMPLATE, sql.STEP, sql.HELD_STEP}
    assert len(tallies) == len(got)  # one row per group


def test_the_cart_facts_hold_each_carts_steps_and_costs(month):  # noqa: F811
    since, until = figures._bounds(DAY1.date(), DAY2.date())
    opened = Abandonment.objects.filter(created_at__gte=since, created_at__lt=until)
    offsets = figures._offsets(sequence_steps(), seen=[1, 2])
    facts = list(figures._cart_facts(opened, offsets=offsets, since=since, until=until))

    followed = [f for f in facts if f["sent_2"] is not None]
    assert len(facts) == 70 and len(followed) == 1
    [cart] = followed
    # Paid 30 h after the cart, after the follow-up (20 h): credited to step 2, not step 1.
    assert (cart["won_1"], cart["won_2"], cart["variant_2"]) == (0, 1, "recovery_followup")
    assert Decimal(str(cart["cost_2"])).quantize(Decimal("0.0001")) == Decimal("0.3375")
    held_late = [f for f in facts if f["held_out"] and f["held_won_2"]]
    assert len(held_late) == 1 and held_late[0]["open_2"] == 1
    assert sum(Decimal(str(f["given"])) for f in facts) == Decimal("20.00")
    assert offsets[2] == timedelta(hours=20)


@pytest.mark.postgres
def test_the_postgresql_cart_facts_are_the_orm_ones(month):  # noqa: F811
    since, until = figures._bounds(DAY1.date(), DAY2.date())
    opened = Abandonment.objects.filter(created_at__gte=since, created_at__lt=until)
    offsets = figures._offsets(sequence_steps(), seen=figures._steps_seen())
    orm = figures._cart_facts(opened, offsets=offsets, since=since, until=until)
    statement, params = sql.money_cart_facts(offsets=offsets, **figures._prices(since, until))
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        names = [column.name for column in cursor.description]
        raw = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def rows(found: list[dict]) -> list[tuple]:
        return sorted(
            tuple(
                round(Decimal(str(v)), 6) if isinstance(v, Decimal | float) else v
                for _, v in sorted(row.items())
            )
            for row in found
        )

    assert sorted(raw[0]) == sorted(orm[0])  # the same columns
    assert rows(raw) == rows(list(orm))
    # And the report built on them holds the hand-computed figures (test_money_figures).
    assert figures.money_report(start=DAY1.date(), end=DAY2.date()).total.net == Decimal("565.05")


@pytest.mark.postgres
def test_a_settled_conversations_money_is_kept_and_worked_out_again_once_it_closes_anew(month, time_machine):  # noqa: F811
    time_machine.move_to(DAY2 + timedelta(days=3), tick=False)
    Conversation.objects.update(status=Conversation.Status.CLOSED, closed_at=DAY2 + timedelta(hours=12))
    live = figures.money_report(start=DAY1.date(), end=DAY2.date())
    assert ConversationMoney.objects.count() == 0  # reading the report writes nothing

    assert settle_money() == 40  # the sweep keeps every contacted cart's conversation's money
    assert ConversationMoney.objects.count() == 40
    assert settle_money() == 0  # and has nothing left to do the next time
    kept = figures.money_report(start=DAY1.date(), end=DAY2.date())
    assert kept == live
    assert kept.total.meta_cost == Decimal("13.87") and kept.total.net == Decimal("565.05")

    # What the report reads is the kept row...
    one = ConversationMoney.objects.order_by("pk").first()
    ConversationMoney.objects.filter(pk=one.pk).update(meta_cost=F("meta_cost") + 100)
    assert figures.money_report(start=DAY1.date(), end=DAY2.date()).total.meta_cost == Decimal("113.87")
    # ...until the conversation is closed again: then it is worked out anew from the messages.
    Conversation.objects.filter(pk=one.pk).update(closed_at=DAY2 + timedelta(hours=13))
    assert figures.money_report(start=DAY1.date(), end=DAY2.date()).total.meta_cost == Decimal("13.87")
    assert settle_money() == 1  # the sweep keeps it again, anew
    assert figures.money_report(start=DAY1.date(), end=DAY2.date()).total.meta_cost == Decimal("13.87")
