"""Reads of recovery's rows with logic: the shop's knowledge as plain values for the agent, and
what Sara earns, net of what she costs: contacted carts against the holdout group (SPEC §13).

Carts are taken by the local day they were opened, and only those drawn under a holdout share
above zero (a share of zero has no comparison group). Each cart keeps the share it was drawn
under, so carts are compared within their share (a stratum) and the strata are added up:
a change of SARA_HOLDOUT_PERCENT mid-range never mixes two populations into one rate.

Figures, per row (a day, a template, a follow-up step, the whole range):
- conversion rate of contacted and of held-out carts, each with its 95 % Wilson interval;
- incremental conversions: Σ over strata of contacted carts × (contacted rate − held-out rate),
  with the Newcombe (hybrid score) interval of the difference scaled the same way; a range
  whose interval holds zero, or with fewer than MIN_GROUP carts on a side, is "too small to
  conclude";
- incremental revenue: the same at cart value (what the carts were worth);
- Meta cost (messages of the contacted carts, by messaging.pricing), model cost (tokens of
  their conversations), discount given (cart value − amount paid, on discounted conversions);
- net incremental revenue = incremental revenue − Meta cost − model cost − discount given;
  return per R$ spent = net incremental revenue ÷ (Meta + model + discount).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import cast

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import sql as core_sql
from messaging import pricing
from messaging.models import Message
from recovery.models import Abandonment, Product, Shop
from sara.knowledge import ShopKnowledge

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
MIN_GROUP = 30  # fewer carts than this on either side: no conclusion, whatever the interval says
ZERO = Decimal("0.00")
CENT = Decimal("0.01")
BILLED_STATUSES = (Message.Status.DELIVERED, Message.Status.READ)  # Meta charges on delivery


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
    interval1, interval2 = wilson(x1, n1), wilson(x2, n2)
    if interval1 is None or interval2 is None:  # a side without carts
        return None
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = interval1, interval2
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


@dataclass
class Cart:
    """One abandonment of the experiment, with what Sara spent on it."""

    pk: int
    day: date
    created_at: datetime
    held_out: bool
    percent: Decimal
    value: Decimal
    paid_amount: Decimal | None
    converted_at: datetime | None
    discounted: bool
    template: str = ""
    followup_at: datetime | None = None
    meta_cost: Decimal = ZERO
    followup_meta_cost: Decimal = ZERO
    model_cost: Decimal = ZERO

    @property
    def discount(self) -> Decimal:
        if self.converted_at is None or not self.discounted or self.paid_amount is None:
            return ZERO
        return max(self.value - self.paid_amount, ZERO)


@dataclass(frozen=True)
class Row:
    label: str
    contacted: Rate
    held_out: Rate
    incremental_conversions: float | None
    incremental_interval: tuple[float, float] | None
    incremental_revenue: Decimal | None
    meta_cost: Decimal
    model_cost: Decimal
    discount: Decimal
    conclusive: bool

    @property
    def spent(self) -> Decimal:
        return self.meta_cost + self.model_cost + self.discount

    @property
    def net(self) -> Decimal | None:
        if self.incremental_revenue is None:
            return None
        return self.incremental_revenue - self.spent

    @property
    def return_per_real(self) -> Decimal | None:
        if self.net is None or not self.spent:
            return None
        return (self.net / self.spent).quantize(CENT)


@dataclass(frozen=True)
class MoneyReport:
    start: date
    end: date  # inclusive
    total: Row
    days: list[Row]
    templates: list[Row]
    steps: list[Row]
    carts_outside: int  # carts of the range drawn under a share of zero (no comparison group)
    shares: list[Decimal] = field(default_factory=list)  # the holdout shares met in the range


def money_report(*, start: date, end: date) -> MoneyReport:
    """The figures for carts opened from local day `start` to `end`, both included."""
    since = timezone.make_aware(datetime.combine(start, time.min))
    until = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    opened = Abandonment.objects.filter(created_at__gte=since, created_at__lt=until)
    carts = _carts(opened.filter(holdout_percent__gt=0))
    outside = opened.filter(Q(holdout_percent__isnull=True) | Q(holdout_percent=0)).exclude(
        status=Abandonment.Status.SKIPPED
    )
    _add_costs(carts)

    contacted = [c for c in carts if not c.held_out]
    held = [c for c in carts if c.held_out]
    by_day: dict[date, list[Cart]] = defaultdict(list)
    for cart in carts:
        by_day[cart.day].append(cart)
    days = [
        _row(
            f"{day:%d/%m/%Y}",
            [c for c in by_day[day] if not c.held_out],
            [c for c in by_day[day] if c.held_out],
        )
        for day in (start + timedelta(days=n) for n in range((end - start).days + 1))
    ]
    by_template: dict[str, list[Cart]] = defaultdict(list)
    for cart in contacted:
        by_template[cart.template or "—"].append(cart)
    templates = [_row(name, group, held) for name, group in sorted(by_template.items())]
    return MoneyReport(
        start=start,
        end=end,
        total=_row("Total", contacted, held),
        days=days,
        templates=templates,
        steps=_steps(contacted, held),
        carts_outside=outside.count(),
        shares=sorted({c.percent for c in carts}),
    )


def _carts(queryset: QuerySet[Abandonment]) -> list[Cart]:
    rows = queryset.values_list(
        "pk",
        "created_at",
        "held_out",
        "holdout_percent",
        "value",
        "paid_amount",
        "converted_at",
        "conversion_link",
    )
    return [
        Cart(
            pk=pk,
            day=timezone.localdate(created_at),
            created_at=created_at,
            held_out=held_out,
            percent=cast(Decimal, percent),  # the callers keep shares above 0
            value=value,
            paid_amount=paid,
            converted_at=converted_at,
            discounted=link == Abandonment.ConversionLink.DISCOUNTED,
        )
        for pk, created_at, held_out, percent, value, paid, converted_at, link in rows
    ]


def _add_costs(carts: list[Cart]) -> None:
    """Meta and model cost of each contacted cart's messages; its template and follow-up time."""
    by_pk = {c.pk: c for c in carts if not c.held_out}
    if not by_pk:
        return
    messages = list(
        Message.objects.filter(conversation__abandonment_id__in=list(by_pk))
        .annotate(
            abandonment_id=F("conversation__abandonment_id"), billed_at=Coalesce("delivered_at", "read_at")
        )
        .values(
            "pk",
            "abandonment_id",
            "direction",
            "kind",
            "purpose",
            "status",
            "sent_at",
            "billed_at",
            "pricing_billable",
            "pricing_category",
            "pricing_type",
            "tokens_used",
            "ai_model",
            "metadata",
        )
    )
    free = _free_service_ids(m["billed_at"] for m in messages if m["billed_at"])
    for m in messages:
        cart = by_pk[m["abandonment_id"]]
        if m["direction"] == Message.Direction.IN:
            if m["tokens_used"]:
                cart.model_cost += pricing.model_cost_brl(model=m["ai_model"], tokens=m["tokens_used"])
            continue
        if m["purpose"] == Message.Purpose.FIRST_CONTACT:
            cart.template = ((m["metadata"] or {}).get("template") or {}).get("name", "")
        if m["purpose"] == Message.Purpose.FOLLOWUP and m["sent_at"]:
            cart.followup_at = m["sent_at"]
        if m["status"] not in BILLED_STATUSES:
            continue
        cost = _meta_cost(
            pk=m["pk"],
            kind=m["kind"],
            billable=m["pricing_billable"],
            category=m["pricing_category"],
            pricing_type=m["pricing_type"],
            free_ids=free,
        )
        cart.meta_cost += cost
        if m["purpose"] == Message.Purpose.FOLLOWUP:
            cart.followup_meta_cost += cost


def _meta_cost(
    *, pk: int, kind: str, billable: bool | None, category: str, pricing_type: str, free_ids: set[int]
) -> Decimal:
    category = pricing.meta_category(pricing_category=category, is_template=kind == Message.Kind.TEMPLATE)
    charged = pricing.meta_charged(pricing_billable=billable, pricing_type=pricing_type)
    if charged is None:
        # No pricing block from Meta: a service message within the month's free tier costs nothing.
        charged = not (category == pricing.SERVICE and pk in free_ids)
    return pricing.meta_price_brl(category) if charged else ZERO


def _free_service_ids(billed: Iterable[datetime]) -> set[int]:
    """Service messages without Meta's pricing that fall in their month's free tier (UTC months)."""
    months = {(at.astimezone(UTC).year, at.astimezone(UTC).month) for at in billed}
    free: set[int] = set()
    for year, month in months:
        first = datetime(year, month, 1, tzinfo=UTC)
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        service = (
            Message.objects.filter(direction=Message.Direction.OUT, status__in=BILLED_STATUSES)
            .exclude(kind=Message.Kind.TEMPLATE)
            .annotate(billed_at=Coalesce("delivered_at", "read_at"))
            .filter(billed_at__gte=first, billed_at__lt=following)
            .filter(Q(pricing_category="") | Q(pricing_category=pricing.SERVICE))
        )
        # Meta's tier counts every service message of the number, priced or not.
        first_ones = service.order_by("billed_at", "pk").values_list("pk", "pricing_category")
        first_ones = first_ones[: settings.SARA_META_FREE_SERVICE_PER_MONTH]
        free.update(pk for pk, category in first_ones if not category)
    return free


def _row(
    label: str,
    contacted: list[Cart],
    held: list[Cart],
    *,
    won_contacted: Callable[[Cart], bool] = lambda c: c.converted_at is not None,
    won_held: Callable[[Cart], bool] = lambda c: c.converted_at is not None,
    costs: Callable[[Cart], tuple[Decimal, Decimal, Decimal]] = lambda c: (
        c.meta_cost,
        c.model_cost,
        c.discount,
    ),
) -> Row:
    strata: dict[Decimal, tuple[list[Cart], list[Cart]]] = defaultdict(lambda: ([], []))
    for cart in contacted:
        strata[cart.percent][0].append(cart)
    for cart in held:
        strata[cart.percent][1].append(cart)
    conversions = low = high = 0.0
    compared = False
    revenue_dec = ZERO
    for group_c, group_h in strata.values():
        n_c, n_h = len(group_c), len(group_h)
        if not n_c or not n_h:
            continue  # no comparison in this stratum
        x_c = sum(1 for c in group_c if won_contacted(c))
        x_h = sum(1 for c in group_h if won_held(c))
        difference = newcombe(x_c, n_c, x_h, n_h)
        if difference is None:
            continue
        d, d_low, d_high = difference
        conversions += n_c * d
        low += n_c * d_low
        high += n_c * d_high
        value_c = sum((c.value for c in group_c if won_contacted(c)), ZERO)
        value_h = sum((c.value for c in group_h if won_held(c)), ZERO)
        revenue_dec += value_c - value_h * n_c / n_h
        compared = True
    meta = model = discount = ZERO
    for cart in contacted:
        m, t, given = costs(cart)
        meta, model, discount = meta + m, model + t, discount + given
    c_rate = Rate(sum(1 for c in contacted if won_contacted(c)), len(contacted))
    h_rate = Rate(sum(1 for c in held if won_held(c)), len(held))
    conclusive = (
        compared and c_rate.carts >= MIN_GROUP and h_rate.carts >= MIN_GROUP and (low > 0 or high < 0)
    )
    return Row(
        label=label,
        contacted=c_rate,
        held_out=h_rate,
        incremental_conversions=conversions if compared else None,
        incremental_interval=(low, high) if compared else None,
        incremental_revenue=revenue_dec.quantize(CENT) if compared else None,
        meta_cost=meta.quantize(CENT),
        model_cost=model.quantize(CENT),
        discount=discount.quantize(CENT),
        conclusive=conclusive,
    )


def _steps(contacted: list[Cart], held: list[Cart]) -> list[Row]:
    """Each template step against the held-out carts over the same stretch of time.

    First contact: conversions before any follow-up went out, against held-out carts paid within
    FOLLOWUP_AFTER_HOURS of opening. Follow-up: carts that got one (the customer was silent),
    paid after it, against held-out carts still unpaid at that hour and paid later. Each step
    is charged its own template; model cost and discounts stay with the whole range.
    """
    wait = timedelta(hours=settings.FOLLOWUP_AFTER_HOURS)

    def before_followup(c: Cart) -> bool:
        return c.converted_at is not None and (c.followup_at is None or c.converted_at < c.followup_at)

    def held_early(c: Cart) -> bool:
        return c.converted_at is not None and c.converted_at < c.created_at + wait

    def after_followup(c: Cart) -> bool:
        return c.converted_at is not None and c.followup_at is not None and c.converted_at >= c.followup_at

    def held_late(c: Cart) -> bool:
        return c.converted_at is not None and c.converted_at >= c.created_at + wait

    first = _row(
        "first_contact",
        contacted,
        held,
        won_contacted=before_followup,
        won_held=held_early,
        costs=lambda c: (c.meta_cost - c.followup_meta_cost, ZERO, ZERO),
    )
    followed = [c for c in contacted if c.followup_at is not None]
    still_open = [c for c in held if not held_early(c)]
    second = _row(
        "followup",
        followed,
        still_open,
        won_contacted=after_followup,
        won_held=held_late,
        costs=lambda c: (c.followup_meta_cost, ZERO, ZERO),
    )
    return [first, second]


def shop_knowledge(*, product: Product | None) -> ShopKnowledge:
    """The shop's row (or its defaults, should the row be missing) and the cart's product."""
    # Read for every customer message: plain SQL, as core.sql explains.
    found = core_sql.fetch_instance(
        f"SELECT {core_sql.columns(Shop, 's')} FROM {Shop._meta.db_table} s ORDER BY s.id LIMIT 1",  # noqa: S608
        [],
        Shop,
    )
    shop = found or Shop()
    return ShopKnowledge(
        name=shop.name,
        about=shop.about,
        shipping=shop.shipping,
        payment_methods=shop.payment_methods,
        installments=shop.installments,
        returns=shop.returns,
        support_hours=shop.support_hours,
        product_price=product.price if product else None,
        product_faq=product.faq if product else "",
    )
