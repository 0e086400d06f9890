"""Rates, intervals and the comparison of contacted carts with held-out ones, from tallies.

Carts are compared within the holdout share they were drawn under (a stratum) and the strata
are added up: a change of SARA_HOLDOUT_PERCENT mid-range never mixes two populations into one
rate. Per row:
- conversion rate of contacted and of held-out carts, each with its 95 % Wilson interval;
- incremental conversions: Σ over strata of contacted carts × (contacted rate − held-out rate),
  with the Newcombe (hybrid score) interval of the difference scaled the same way; a row whose
  interval holds zero, or with fewer than MIN_GROUP carts on a side, is "too small to conclude";
- incremental revenue: the same at cart value, with Welch's 95 % interval of the difference of
  mean revenue per cart (a cart's value if it paid, else 0);
- net incremental revenue = incremental revenue − Meta cost − model cost − discount given;
  return per R$ spent = net incremental revenue ÷ (Meta + model + discount).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
MIN_GROUP = 30  # fewer carts than this on either side: no conclusion, whatever the interval says
ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of x successes in n trials (good at small n and at 0 or n)."""
    if n == 0:
        return None
    p = x / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float, float] | None:
    """p1 − p2 with its 95 % interval by Newcombe's hybrid score method (his method 10)."""
    if not n1 or not n2:
        return None
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = wilson(x1, n1), wilson(x2, n2)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


@dataclass(frozen=True)
class Tally:
    """Carts of one side of one stratum: how many, how many paid, and the paid carts' value
    (and its sum of squares, for the spread of revenue per cart)."""

    carts: int = 0
    paid: int = 0
    value: Decimal = ZERO
    value_squared: float = 0.0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.carts + other.carts,
            self.paid + other.paid,
            self.value + other.value,
            self.value_squared + other.value_squared,
        )


Strata = dict[Decimal, Tally]  # holdout share → tally


def add_strata(many: Iterable[Strata]) -> Strata:
    total: Strata = {}
    for strata in many:
        for share, tally in strata.items():
            total[share] = total.get(share, Tally()) + tally
    return total


@dataclass(frozen=True)
class Costs:
    meta: Decimal = ZERO
    model: Decimal = ZERO
    discount: Decimal = ZERO

    def __add__(self, other: Costs) -> Costs:
        return Costs(self.meta + other.meta, self.model + other.model, self.discount + other.discount)


@dataclass(frozen=True)
class Rate:
    """x of n carts converted, with the 95 % Wilson score interval of the rate."""

    conversions: int
    carts: int

    @property
    def value(self) -> float | None:
        return self.conversions / self.carts if self.carts else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.conversions, self.carts)


@dataclass(frozen=True)
class Row:
    label: str
    contacted: Rate
    held_out: Rate
    incremental_conversions: float | None
    incremental_interval: tuple[float, float] | None
    incremental_revenue: Decimal | None
    revenue_interval: tuple[Decimal, Decimal] | None  # of incremental revenue, before costs
    meta_cost: Decimal
    model_cost: Decimal
    discount: Decimal
    conclusive: bool
    contacted_revenue: Decimal = ZERO  # what the contacted carts that paid were worth

    @property
    def spent(self) -> Decimal:
        return self.meta_cost + self.model_cost + self.discount

    @property
    def net(self) -> Decimal | None:
        if self.incremental_revenue is None:
            return None
        return self.incremental_revenue - self.spent

    @property
    def net_interval(self) -> tuple[Decimal, Decimal] | None:
        if self.revenue_interval is None:
            return None
        low, high = self.revenue_interval
        return low - self.spent, high - self.spent

    @property
    def net_per_cart(self) -> tuple[Decimal, Decimal, Decimal] | None:
        """Net incremental revenue per contacted cart: value, low, high."""
        if self.net is None or self.net_interval is None or not self.contacted.carts:
            return None
        n = Decimal(self.contacted.carts)
        low, high = self.net_interval
        return tuple((v / n).quantize(CENT) for v in (self.net, low, high))  # type: ignore[return-value]

    @property
    def return_per_real(self) -> Decimal | None:
        if self.net is None or not self.spent:
            return None
        return (self.net / self.spent).quantize(CENT)


def compare(label: str, contacted: Strata, held: Strata, costs: Costs) -> Row:
    """Contacted carts against held-out ones, share by share, less what the contacted cost."""
    conversions = low = high = 0.0
    revenue = ZERO
    revenue_variance = 0.0
    compared = spread = False
    for share, c in contacted.items():
        h = held.get(share, Tally())
        if not c.carts or not h.carts:
            continue  # no comparison in this stratum
        d, d_low, d_high = newcombe(c.paid, c.carts, h.paid, h.carts)
        conversions += c.carts * d
        low += c.carts * d_low
        high += c.carts * d_high
        revenue += c.value - h.value * c.carts / h.carts
        compared = True
        if c.carts >= 2 and h.carts >= 2:
            revenue_variance += c.carts**2 * (_variance(c) / c.carts + _variance(h) / h.carts)
            spread = True
    revenue_interval = None
    if spread:
        half = Decimal(str(Z95 * math.sqrt(revenue_variance)))
        revenue_interval = ((revenue - half).quantize(CENT), (revenue + half).quantize(CENT))
    c_rate = Rate(sum(t.paid for t in contacted.values()), sum(t.carts for t in contacted.values()))
    h_rate = Rate(sum(t.paid for t in held.values()), sum(t.carts for t in held.values()))
    conclusive = (
        compared and c_rate.carts >= MIN_GROUP and h_rate.carts >= MIN_GROUP and (low > 0 or high < 0)
    )
    return Row(
        label=label,
        contacted=c_rate,
        held_out=h_rate,
        incremental_conversions=conversions if compared else None,
        incremental_interval=(low, high) if compared else None,
        incremental_revenue=revenue.quantize(CENT) if compared else None,
        revenue_interval=revenue_interval,
        meta_cost=costs.meta.quantize(CENT),
        model_cost=costs.model.quantize(CENT),
        discount=costs.discount.quantize(CENT),
        conclusive=conclusive,
        contacted_revenue=sum((t.value for t in contacted.values()), ZERO).quantize(CENT),
    )


def _variance(t: Tally) -> float:
    """The sample variance of revenue per cart: each cart's value if it paid, else 0."""
    total = float(t.value)
    return max(t.value_squared - total * total / t.carts, 0.0) / (t.carts - 1)
