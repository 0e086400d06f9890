"""What each step of the recovery sequence and each template variant earns against the holdout
(SPEC §13, §15): plain rows for the money page and its CSV.

A step is credited with the payments of the carts that got it, made after it left and before the
next step did; the comparison is the held-out carts still unpaid at that step's hour (the
delays added up from the cart) that paid before the next step's hour. A variant is the same
comparison restricted to the carts that got it: variants of a step split carts at random
(recovery.sequence's keyed draw), so they share the held-out group. Each step and variant is
charged only its own messages' Meta cost; model cost and discounts stay with the whole range.

Net incremental revenue carries an interval: incremental revenue (a cart's value if it paid,
else 0, contacted against held out, share by share) with Welch's 95 % interval, less what it
cost. The best variant of a step is named only once its
net per contacted cart is surely above every other variant's: its interval's low end above
their high ends, with at least MIN_GROUP carts on each side.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import cast

from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from messaging.models import Message
from recovery.models import Abandonment
from recovery.selectors import (
    BILLED_STATUSES,
    CENT,
    MIN_GROUP,
    Z95,
    ZERO,
    Cart,
    Row,
    _carts,
    _free_service_ids,
    _meta_cost,
    _row,
)
from recovery.sequence import Step, sequence_steps

_LEFT = (Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ)


@dataclass(frozen=True)
class SequenceRow:
    step: int
    variant: str  # "" for the step as a whole
    row: Row
    net_interval: tuple[Decimal, Decimal] | None
    net_per_cart: tuple[Decimal, Decimal, Decimal] | None  # value, low, high

    @property
    def carts(self) -> int:
        return self.row.contacted.carts


@dataclass(frozen=True)
class SequenceReport:
    rows: list[SequenceRow]
    best: dict[int, str]  # step → the variant named best, for steps where the interval allows
    compared: set[int]  # steps with two variants or more: a best one may be named


@dataclass
class _Sent:
    step: int
    variant: str
    at: datetime
    cost: Decimal


def sequence_report(*, start: date, end: date) -> SequenceReport:
    """Per step and per variant, for carts opened from local day `start` to `end`."""
    since = timezone.make_aware(datetime.combine(start, time.min))
    until = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    carts = _carts(
        Abandonment.objects.filter(created_at__gte=since, created_at__lt=until, holdout_percent__gt=0)
    )
    contacted = [c for c in carts if not c.held_out]
    held = [c for c in carts if c.held_out]
    sent = _steps_sent(contacted)
    steps = sequence_steps()
    offsets = _offsets(steps, seen=sorted({order for per_cart in sent.values() for order in per_cart}))
    rows: list[SequenceRow] = []
    best: dict[int, str] = {}
    compared: set[int] = set()
    orders = sorted(offsets)
    for index, order in enumerate(orders):
        at = offsets[order]
        until_next = offsets[orders[index + 1]] if index + 1 < len(orders) else None
        got = [c for c in contacted if order in sent.get(c.pk, {})]
        still_open = [c for c in held if c.converted_at is None or c.converted_at >= c.created_at + at]

        def won_held(c: Cart, at: timedelta = at, until_next: timedelta | None = until_next) -> bool:
            if c.converted_at is None or c.converted_at < c.created_at + at:
                return False
            return until_next is None or c.converted_at < c.created_at + until_next

        def won_after(c: Cart, order: int = order) -> bool:
            mine = sent[c.pk][order]
            later = [s.at for o, s in sent[c.pk].items() if o > order]
            return (
                c.converted_at is not None
                and c.converted_at >= mine.at
                and (not later or c.converted_at < min(later))
            )

        def cost(c: Cart, order: int = order) -> tuple[Decimal, Decimal, Decimal]:
            return sent[c.pk][order].cost, ZERO, ZERO

        step_row = _sequence_row(order, "", got, still_open, won_after, won_held, cost)
        rows.append(step_row)
        variants: dict[str, list[Cart]] = defaultdict(list)
        for cart in got:
            variants[sent[cart.pk][order].variant].append(cart)
        variant_rows = [
            _sequence_row(order, name, group, still_open, won_after, won_held, cost)
            for name, group in sorted(variants.items())
        ]
        rows += variant_rows
        if len(variant_rows) > 1:
            compared.add(order)
        named = best_variant(variant_rows)
        if named:
            best[order] = named
    return SequenceReport(rows=rows, best=best, compared=compared)


def _sequence_row(order, variant, contacted, held, won_contacted, won_held, costs) -> SequenceRow:  # noqa: ANN001
    row = _row(
        f"{order}" if not variant else f"{order}: {variant}",
        contacted,
        held,
        won_contacted=won_contacted,
        won_held=won_held,
        costs=costs,
    )
    revenue = _revenue_interval(contacted, held, won_contacted, won_held)
    if revenue is None:
        return SequenceRow(order, variant, row, None, None)
    low, high = revenue
    net_low = (Decimal(str(low)) - row.spent).quantize(CENT)
    net_high = (Decimal(str(high)) - row.spent).quantize(CENT)
    n = Decimal(len(contacted))
    per_cart = ((row.net or ZERO) / n, net_low / n, net_high / n)
    value, low_per_cart, high_per_cart = (v.quantize(CENT) for v in per_cart)
    return SequenceRow(order, variant, row, (net_low, net_high), (value, low_per_cart, high_per_cart))


def _revenue_interval(contacted, held, won_contacted, won_held) -> tuple[float, float] | None:  # noqa: ANN001
    """95 % interval of incremental revenue: per share, contacted carts × the difference of mean
    revenue per cart (a cart's value if it paid, else 0), Welch's standard error, added up."""
    strata: dict[Decimal, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for cart in contacted:
        strata[cart.percent][0].append(float(cart.value) if won_contacted(cart) else 0.0)
    for cart in held:
        strata[cart.percent][1].append(float(cart.value) if won_held(cart) else 0.0)
    point = variance = 0.0
    compared = False
    for group_c, group_h in strata.values():
        if len(group_c) < 2 or len(group_h) < 2:
            continue
        mean_c, mean_h = statistics.fmean(group_c), statistics.fmean(group_h)
        se2 = statistics.variance(group_c) / len(group_c) + statistics.variance(group_h) / len(group_h)
        point += len(group_c) * (mean_c - mean_h)
        variance += len(group_c) ** 2 * se2
        compared = True
    if not compared:
        return None
    half = Z95 * math.sqrt(variance)
    return point - half, point + half


def best_variant(rows: list[SequenceRow]) -> str:
    """The variant whose net per cart is surely above every other's, or "" while none is."""
    if len(rows) < 2 or any(r.carts < MIN_GROUP or r.row.held_out.carts < MIN_GROUP for r in rows):
        return ""
    scored = [(r, r.net_per_cart) for r in rows if r.net_per_cart is not None]
    if len(scored) < len(rows):
        return ""
    leader, (_, leader_low, _) = max(scored, key=lambda scored_row: scored_row[1][0])
    if all(leader_low > high for other, (_, _, high) in scored if other is not leader):
        return leader.variant
    return ""


def _offsets(steps: list[Step], *, seen: list[int]) -> dict[int, timedelta]:
    """Each step's hour after the cart: its delay and the delays before it added up. A step seen
    in the messages but no longer configured is placed after the last known one."""
    offsets: dict[int, timedelta] = {}
    total = timedelta(0)
    for step in steps:
        total += step.delay
        offsets[step.order] = total
    for order in seen:
        offsets.setdefault(order, total)
    return offsets


def _steps_sent(carts: list[Cart]) -> dict[int, dict[int, _Sent]]:
    """cart → step → the step's message that left (its variant, when, its Meta cost)."""
    by_pk = {c.pk: c for c in carts}
    if not by_pk:
        return {}
    messages = list(
        Message.objects.filter(
            conversation__abandonment_id__in=list(by_pk), purpose__in=Message.PROACTIVE_PURPOSES
        )
        .filter(status__in=_LEFT, sent_at__isnull=False)
        .annotate(
            abandonment_id=F("conversation__abandonment_id"), billed_at=Coalesce("delivered_at", "read_at")
        )
        .values(
            "pk",
            "abandonment_id",
            "kind",
            "purpose",
            "status",
            "sent_at",
            "billed_at",
            "pricing_billable",
            "pricing_category",
            "pricing_type",
            "metadata",
        )
        .order_by("sent_at", "pk")
    )
    free = _free_service_ids(m["billed_at"] for m in messages if m["billed_at"])
    sent: dict[int, dict[int, _Sent]] = defaultdict(dict)
    for m in messages:
        metadata = m["metadata"] or {}
        sequence = metadata.get("sequence") or {}
        template = metadata.get("template") or {}
        # Messages from before the sequence: the first contact was step 1, the follow-up step 2.
        order = int(sequence.get("step") or (1 if m["purpose"] == Message.Purpose.FIRST_CONTACT else 2))
        variant = str(sequence.get("variant") or template.get("name") or "—")
        cost = ZERO
        if m["status"] in BILLED_STATUSES:
            cost = _meta_cost(
                pk=m["pk"],
                kind=m["kind"],
                billable=m["pricing_billable"],
                category=m["pricing_category"] or str(template.get("category") or ""),
                pricing_type=m["pricing_type"],
                free_ids=free,
            )
        at = cast(datetime, m["sent_at"])  # the query keeps only rows with a sent_at
        sent[m["abandonment_id"]].setdefault(order, _Sent(order, variant, at, cost))
    return sent
