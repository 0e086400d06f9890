"""The money report's figures: tallies the database adds up, turned into rows (SPEC §13, §15).

Carts are taken by the local day they were opened, and only those drawn under a holdout share
above zero (a share of zero has no comparison group). One query (recovery.sql.money_tallies)
gives every tally the page needs, whatever the number of days, carts or templates:
- per day, share and side (contacted or held out): carts, paid carts, their value, costs;
- per first template and share, of the contacted carts;
- per sequence step, variant and share, of the contacted carts that got the step: paid after it
  left and before the next step did, and that step's own Meta cost;
- per step and share, of the held-out carts still unpaid at the step's hour (its delay and the
  delays before it added up): paid before the next step's hour.

Variants of a step split carts at random (recovery.sequence's keyed draw), so they share the
step's held-out group. Step 1 also carries the Meta cost of the carts' other messages (replies,
hand-off notes...); model cost and discounts stay with the whole range, the days and templates.
The best variant of a step is named only once its net per contacted cart is surely above every
other variant's: its interval's low end above their high ends, with at least MIN_GROUP carts on
each side.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import (
    Case,
    DecimalField,
    F,
    IntegerField,
    Min,
    Q,
    QuerySet,
    Sum,
    TextField,
    Value,
    When,
    Window,
)
from django.db.models.expressions import CombinedExpression
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce, NullIf, RowNumber, TruncDate, TruncMonth
from django.db.models.lookups import Exact
from django.utils import timezone

from messaging import pricing
from messaging.models import Message
from recovery import sql
from recovery.models import Abandonment, Conversation, SequenceStep
from recovery.money.stats import MIN_GROUP, ZERO, Costs, Row, Strata, Tally, add_strata, compare
from recovery.sequence import Step, sequence_steps

BILLED_STATUSES = (Message.Status.DELIVERED, Message.Status.READ)  # Meta charges on delivery
LEFT_STATUSES = (Message.Status.SENT, Message.Status.DELIVERED, Message.Status.READ)
NO_TEMPLATE = "—"
SETTLED_AFTER = timedelta(days=1)  # a closed conversation's last statuses have come in by then
MONEY = DecimalField(max_digits=20, decimal_places=6)


@dataclass(frozen=True)
class SequenceRow:
    step: int
    variant: str  # "" for the step as a whole
    row: Row

    @property
    def carts(self) -> int:
        return self.row.contacted.carts

    @property
    def net_interval(self) -> tuple[Decimal, Decimal] | None:
        return self.row.net_interval

    @property
    def net_per_cart(self) -> tuple[Decimal, Decimal, Decimal] | None:
        return self.row.net_per_cart


@dataclass(frozen=True)
class SequenceReport:
    rows: list[SequenceRow]
    best: dict[int, str]  # step → the variant named best, for steps where the interval allows
    compared: set[int]  # steps with two variants or more: a best one may be named


@dataclass(frozen=True)
class MoneyReport:
    start: date
    end: date  # inclusive
    total: Row
    days: list[Row]
    templates: list[Row]
    steps: list[Row]  # one per sequence step, label = its order
    sequence: SequenceReport
    carts_outside: int  # carts of the range drawn under a share of zero (no comparison group)
    shares: list[Decimal] = field(default_factory=list)  # the holdout shares met in the range


def money_report(*, start: date, end: date) -> MoneyReport:
    """The figures for carts opened from local day `start` to `end`, both included."""
    since, until = _bounds(start, end)
    opened = Abandonment.objects.filter(created_at__gte=since, created_at__lt=until)
    offsets = _offsets(sequence_steps(), seen=_steps_seen())
    tallies = _tallies(opened, offsets=offsets, since=since, until=until)

    days = []
    for day in (start + timedelta(days=n) for n in range((end - start).days + 1)):
        contacted, held = tallies.days.get((day, False), {}), tallies.days.get((day, True), {})
        days.append(compare(f"{day:%d/%m/%Y}", contacted, held, tallies.day_costs.get(day, Costs())))
    all_contacted = add_strata(s for (_, held), s in tallies.days.items() if not held)
    all_held = add_strata(s for (_, held), s in tallies.days.items() if held)
    total_costs = sum(tallies.day_costs.values(), Costs())
    templates = [
        compare(name, strata, all_held, tallies.template_costs[name])
        for name, strata in sorted(tallies.templates.items())
    ]
    sequence = _sequence(tallies, orders=sorted(offsets))
    outside = opened.filter(Q(holdout_percent__isnull=True) | Q(holdout_percent=0)).exclude(
        status=Abandonment.Status.SKIPPED
    )
    return MoneyReport(
        start=start,
        end=end,
        total=compare("Total", all_contacted, all_held, total_costs),
        days=days,
        templates=templates,
        steps=[line.row for line in sequence.rows if not line.variant],
        sequence=sequence,
        carts_outside=outside.count(),
        shares=sorted({share for strata in tallies.days.values() for share in strata}),
    )


def money_settle(*, now: datetime) -> int:
    """Keep the money of every conversation closed a day before `now` and more that has no
    up-to-date ConversationMoney row yet (recovery.tasks.settle_money, every 5 minutes): the
    money page then only reads. Returns how many conversations' money it kept."""
    if connection.vendor != "postgresql":
        return 0  # the ORM's report works everything out from the messages
    settled = now - SETTLED_AFTER
    stale = Conversation.objects.filter(
        status=Conversation.Status.CLOSED,
        closed_at__lt=settled,
        abandonment__holdout_percent__gt=0,
        abandonment__held_out=False,
    ).filter(Q(money__isnull=True) | ~Q(money__closed_at=F("closed_at")))
    oldest = stale.aggregate(first=Min("abandonment__created_at"))["first"]
    if oldest is None:
        return 0
    prices = _prices(oldest, now + timedelta(days=1))
    prices["settled"] = settled
    return sql.money_settle(**prices)


def sequence_report(*, start: date, end: date) -> SequenceReport:
    """Per step and per variant, for carts opened from local day `start` to `end`."""
    return money_report(start=start, end=end).sequence


def _sequence(tallies: _Tallies, *, orders: list[int]) -> SequenceReport:
    rows: list[SequenceRow] = []
    best: dict[int, str] = {}
    compared: set[int] = set()
    for order in orders:
        variants = tallies.steps.get(order, {})
        held = tallies.held_steps.get(order, {})
        step_cost = sum(tallies.step_costs.get(order, {}).values(), ZERO)
        rows.append(
            SequenceRow(
                order, "", compare(str(order), add_strata(variants.values()), held, Costs(meta=step_cost))
            )
        )
        variant_rows = [
            SequenceRow(
                order,
                name,
                compare(f"{order}: {name}", strata, held, Costs(meta=tallies.step_costs[order][name])),
            )
            for name, strata in sorted(variants.items())
        ]
        rows += variant_rows
        if len(variant_rows) > 1:
            compared.add(order)
        named = best_variant(variant_rows)
        if named:
            best[order] = named
    return SequenceReport(rows=rows, best=best, compared=compared)


def best_variant(rows: list[SequenceRow]) -> str:
    """The variant whose net per cart is surely above every other's, or "" while none is."""
    per_cart = [(r.variant, r.net_per_cart) for r in rows if r.carts >= MIN_GROUP]
    if len(rows) < 2 or len(per_cart) < len(rows) or any(r.row.held_out.carts < MIN_GROUP for r in rows):
        return ""
    known = [(variant, figures) for variant, figures in per_cart if figures is not None]
    if len(known) < len(rows):
        return ""
    leader, (_, low, _) = max(known, key=lambda item: item[1][0])
    if all(low > high for variant, (_, _, high) in known if variant != leader):
        return leader
    return ""


# --- The tallies ---------------------------------------------------------------------------------


@dataclass
class _Tallies:
    days: dict[tuple[date, bool], Strata] = field(default_factory=lambda: defaultdict(dict))
    day_costs: dict[date, Costs] = field(default_factory=lambda: defaultdict(Costs))
    templates: dict[str, Strata] = field(default_factory=lambda: defaultdict(dict))
    template_costs: dict[str, Costs] = field(default_factory=lambda: defaultdict(Costs))
    steps: dict[int, dict[str, Strata]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict))
    )
    step_costs: dict[int, dict[str, Decimal]] = field(default_factory=lambda: defaultdict(dict))
    held_steps: dict[int, Strata] = field(default_factory=lambda: defaultdict(dict))


def _tallies(
    opened: QuerySet[Abandonment], *, offsets: dict[int, timedelta], since: datetime, until: datetime
) -> _Tallies:
    if connection.vendor == "postgresql":
        # Conversations closed a day ago and more no longer change (their last statuses came in):
        # their money is kept (ConversationMoney, by money_settle's sweep) and read as it is; the
        # rest is worked out from their messages. Reading the page writes nothing.
        carts = sql.money_cart_facts(offsets=offsets, **_prices(since, until))
    else:
        statement, params = _cart_facts(
            opened, offsets=offsets, since=since, until=until
        ).query.sql_with_params()
        carts = (statement, list(params))
    found = _Tallies()
    for row in sql.money_tallies(carts, steps=sorted(offsets)):
        share = _decimal(row.share)
        tally = Tally(int(row.carts), int(row.paid or 0), _decimal(row.value), float(row.value_squared or 0))
        costs = Costs(_decimal(row.meta), _decimal(row.model), _decimal(row.discount))
        if row.kind == sql.DAY:
            day = row.day if isinstance(row.day, date) else date.fromisoformat(str(row.day))
            found.days[(day, bool(row.held_out))][share] = tally
            if not row.held_out:
                found.day_costs[day] += costs
        elif row.kind == sql.TEMPLATE:
            name = row.key or NO_TEMPLATE
            found.templates[name][share] = tally
            found.template_costs[name] += costs
        elif row.kind == sql.STEP and row.step is not None:
            name = row.key or NO_TEMPLATE
            found.steps[row.step][name][share] = tally
            found.step_costs[row.step][name] = found.step_costs[row.step].get(name, ZERO) + _decimal(row.cost)
        elif row.kind == sql.HELD_STEP and row.step is not None:
            found.held_steps[row.step][share] = tally
    return found


def _prices(since: datetime, until: datetime) -> dict[str, object]:
    """messaging.pricing's tables, for the statement to price each message with."""
    usd = pricing.usd_to_brl() / pricing.MILLION
    default_rate = settings.SARA_MODEL_PRICES_USD.get(settings.OPENAI_MODEL, Decimal(0))
    return {
        "since": since,
        "until": until,
        "settled": timezone.now() - SETTLED_AFTER,
        "free_ids": _free_service_ids(since=since, until=until + timedelta(days=31)),
        "meta_prices": {name: pricing.meta_price_brl(name) for name in settings.SARA_META_PRICES},
        "default_meta_price": pricing.meta_price_brl(pricing.MARKETING),
        "model_rates": {name: rate * usd for name, rate in settings.SARA_MODEL_PRICES_USD.items() if rate},
        "default_model_rate": default_rate * usd,
    }


def _decimal(value: object) -> Decimal:
    """Sums come back as Decimal from PostgreSQL and as int or float from SQLite."""
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _key(outer: str, inner: str) -> KeyTextTransform:
    """metadata[outer][inner] of the cart's messages, as text."""
    return KeyTextTransform(inner, KeyTransform(outer, "conversation__messages__metadata"))


def _m(**lookups: object) -> Q:
    """A condition on the cart's messages."""
    return Q(**{f"conversation__messages__{key}": value for key, value in lookups.items()})


def _cart_facts(
    opened: QuerySet[Abandonment], *, offsets: dict[int, timedelta], since: datetime, until: datetime
) -> QuerySet[Abandonment]:
    """One row per cart of the comparison with what the tallies add up: the database joins each
    cart's messages and sums their cost; nothing per cart comes back to Python."""
    paid = Q(converted_at__isnull=False)
    cost = _meta_cost(free_ids=_free_service_ids(since=since, until=until + timedelta(days=31)))
    left = _m(
        direction=Message.Direction.OUT, purpose__in=Message.PROACTIVE_PURPOSES, status__in=LEFT_STATUSES
    )
    left &= _m(sent_at__isnull=False)
    step = Coalesce(
        Cast(_key("sequence", "step"), IntegerField()),
        # Messages from before the sequence: the first contact was step 1, the follow-up step 2.
        Case(
            When(_m(purpose=Message.Purpose.FIRST_CONTACT), then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        ),
    )
    variant = Coalesce(
        NullIf(_key("sequence", "variant"), Value("")),
        NullIf(_key("template", "name"), Value("")),
        Value(NO_TEMPLATE),
        output_field=TextField(),
    )
    facts = opened.filter(holdout_percent__gt=0).annotate(
        day=TruncDate("created_at"),
        share=F("holdout_percent"),
        won=Case(When(paid, then=Value(1)), default=Value(0)),
        given=Case(
            When(
                paid & Q(conversion_link=Abandonment.ConversionLink.DISCOUNTED, paid_amount__lt=F("value")),
                then=F("value") - F("paid_amount"),
            ),
            default=Value(ZERO),
            output_field=MONEY,
        ),
        meta=Sum(cost, default=Value(ZERO), output_field=MONEY),
        model=Sum(
            _model_cost(), filter=_m(direction=Message.Direction.IN, tokens_used__gt=0), default=Value(ZERO)
        ),
        template=Min(
            _key("template", "name"),
            filter=_m(direction=Message.Direction.OUT, purpose=Message.Purpose.FIRST_CONTACT),
        ),
    )
    orders = sorted(offsets)
    columns = ["day", "share", "held_out", "value", "won", "given", "meta", "model", "template"]
    for order in orders:
        mine = left & Q(Exact(step, order))
        facts = facts.annotate(
            **{
                f"sent_{order}": Min("conversation__messages__sent_at", filter=mine),
                f"variant_{order}": Min(variant, filter=mine),
                f"cost_{order}": Sum(cost, filter=mine, default=Value(ZERO), output_field=MONEY),
            }
        )
        columns += [f"sent_{order}", f"variant_{order}", f"cost_{order}"]
    for index, order in enumerate(orders):
        # Credited to this step: paid after it left and before any later step did.
        after = paid & Q(converted_at__gte=F(f"sent_{order}"))
        for later in orders[index + 1 :]:
            after &= Q(**{f"sent_{later}__isnull": True}) | Q(converted_at__lt=F(f"sent_{later}"))
        at = offsets[order]
        following = offsets[orders[index + 1]] if index + 1 < len(orders) else None
        held_won = paid & Q(converted_at__gte=F("created_at") + at)
        if following is not None:
            held_won &= Q(converted_at__lt=F("created_at") + following)
        facts = facts.annotate(
            **{
                f"won_{order}": Case(When(after, then=Value(1)), default=Value(0)),
                f"open_{order}": Case(
                    When(~paid | Q(converted_at__gte=F("created_at") + at), then=Value(1)), default=Value(0)
                ),
                f"held_won_{order}": Case(When(held_won, then=Value(1)), default=Value(0)),
            }
        )
        columns += [f"won_{order}", f"open_{order}", f"held_won_{order}"]
    return facts.values(*columns).order_by()


def _meta_cost(*, free_ids: list[int]) -> Case:
    """What Meta charges for one of the cart's messages, in BRL (messaging.pricing in SQL):
    Meta's verdict when a status carried its pricing block; without one, every delivered
    message but the month's free service tier."""
    template = _m(kind=Message.Kind.TEMPLATE)

    def category(name: str) -> Q:
        inferred = (
            template if name == pricing.MARKETING else ~template if name == pricing.SERVICE else Q(pk=None)
        )
        return _m(pricing_category=name) | (_m(pricing_category="") & inferred)

    no_block = _m(pricing_billable__isnull=True, pricing_type="")
    charged = _m(status__in=BILLED_STATUSES) & ~_m(pricing_type__in=pricing.FREE_TYPES)
    charged &= (
        _m(pricing_billable=True)
        | _m(pricing_billable__isnull=True) & ~_m(pricing_type="")
        | (no_block & ~(category(pricing.SERVICE) & _m(pk__in=free_ids)))
    )
    prices = settings.SARA_META_PRICES
    return Case(
        *(When(charged & category(name), then=Value(pricing.meta_price_brl(name))) for name in prices),
        # An unknown category is priced as marketing (messaging.pricing says why).
        When(charged, then=Value(pricing.meta_price_brl(pricing.MARKETING))),
        default=Value(ZERO),
        output_field=MONEY,
    )


def _model_cost() -> CombinedExpression:
    prices = settings.SARA_MODEL_PRICES_USD
    default = prices.get(settings.OPENAI_MODEL, Decimal(0))
    per_token = Case(
        *(
            When(_m(ai_model=model), then=Value(rate * pricing.usd_to_brl() / pricing.MILLION))
            for model, rate in prices.items()
            if rate
        ),
        default=Value(default * pricing.usd_to_brl() / pricing.MILLION),
        output_field=DecimalField(max_digits=30, decimal_places=12),
    )
    return F("conversation__messages__tokens_used") * per_token


def _free_service_ids(*, since: datetime, until: datetime) -> list[int]:
    """Service messages without Meta's pricing that fall in their month's free tier (UTC months)."""
    first = datetime(since.astimezone(UTC).year, since.astimezone(UTC).month, 1, tzinfo=UTC)
    ranked = (
        Message.objects.filter(direction=Message.Direction.OUT, status__in=BILLED_STATUSES)
        .exclude(kind=Message.Kind.TEMPLATE)
        .filter(Q(pricing_category="") | Q(pricing_category=pricing.SERVICE))
        .annotate(billed_at=Coalesce("delivered_at", "read_at"))
        .filter(billed_at__gte=first, billed_at__lt=until)
        # Meta's tier counts every service message of the number, priced or not.
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[TruncMonth("billed_at", tzinfo=UTC)],
                order_by=[F("billed_at").asc(), F("pk").asc()],
            )
        )
        .filter(rank__lte=settings.SARA_META_FREE_SERVICE_PER_MONTH, pricing_category="")
    )
    return list(ranked.values_list("pk", flat=True))


def _steps_seen() -> list[int]:
    """Every configured step, paused ones included: their messages of the range still count."""
    return list(SequenceStep.objects.order_by("order").values_list("order", flat=True))


def _offsets(steps: list[Step], *, seen: list[int]) -> dict[int, timedelta]:
    """Each step's hour after the cart: its delay and the delays before it added up. A paused
    step (its messages of the range still count) is placed after the last active one."""
    offsets: dict[int, timedelta] = {}
    total = timedelta(0)
    for step in steps:
        total += step.delay
        offsets[step.order] = total
    for order in seen:
        offsets.setdefault(order, total)
    return offsets


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    since = timezone.make_aware(datetime.combine(start, time.min))
    until = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    return since, until
