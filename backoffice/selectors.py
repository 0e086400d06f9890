"""Dashboard figures: the recovery funnel of the last 30 days, by local day (SPEC §8)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from messaging import selectors as messaging_selectors
from messaging.models import Message
from recovery import handoff_selectors
from recovery.models import Abandonment, Customer
from recovery.money.revenue import recovered_revenue_per_day

PERIOD_DAYS = 30


@dataclass(frozen=True)
class Day:
    date: date
    abandonments: int = 0
    first_contacts: int = 0
    replies: int = 0
    conversions: int = 0
    opt_outs: int = 0
    revenue: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class Failure:
    error_code: str
    count: int
    rate: Decimal  # share of the period's finished sends


@dataclass(frozen=True)
class Dashboard:
    start: datetime
    days: list[Day]
    totals: Day
    contacted: int  # customers who got a first contact in the period
    contacted_opted_out: int  # ...of whom have opted out since
    opt_out_rate: Decimal | None
    sends_finished: int  # outbound messages of the period that left "pending"
    sends_failed: int
    failure_rate: Decimal | None
    failures: list[Failure]
    failed_sends: int  # every failed send in the ops view, whatever its age
    stuck_inbound: int
    stuck_outbound: int
    # Carts whose "paid" payment was refused (404/422): the chase stopped until a person looks.
    payment_mismatches: int = 0
    waiting_for_person: int = 0  # conversations in the hand-off inbox
    oldest_wait_since: datetime | None = None
    # Sequence steps held because Meta accepts none of their templates now (SPEC §15), and why.
    waiting_for_template: int = 0
    templates_blocked: list[str] = field(default_factory=list)


def period_start(*, now: datetime, days: int = PERIOD_DAYS) -> datetime:
    """Local midnight `days - 1` days before today: the period is today and the 29 days before."""
    first_day = timezone.localdate(now) - timedelta(days=days - 1)
    return timezone.make_aware(datetime.combine(first_day, time.min))


def dashboard(*, now: datetime) -> Dashboard:
    start = period_start(now=now)
    by_day: dict[str, dict[date, int]] = {
        "abandonments": _per_day(Abandonment.objects.all(), "created_at", start),
        # A first contact counts when Meta accepted it, not when it was queued.
        "first_contacts": _per_day(
            Message.objects.filter(direction=Message.Direction.OUT, purpose=Message.Purpose.FIRST_CONTACT),
            "sent_at",
            start,
        ),
        # Conversations in which the customer wrote that day (a chatty customer counts once).
        "replies": _per_day(
            Message.objects.filter(direction=Message.Direction.IN, conversation__isnull=False),
            "created_at",
            start,
            count="conversation",
        ),
        "conversions": _per_day(
            Abandonment.objects.filter(status=Abandonment.Status.CONVERTED), "converted_at", start
        ),
        "opt_outs": _per_day(Customer.objects.filter(opted_out=True), "opted_out_at", start),
    }
    revenue = recovered_revenue_per_day(since=start)
    first_day = timezone.localdate(start)
    days = [
        Day(
            date=day,
            **{name: counts.get(day, 0) for name, counts in by_day.items()},
            revenue=revenue.get(day, Decimal("0.00")),
        )
        for day in (first_day + timedelta(days=n) for n in range(PERIOD_DAYS))
    ]
    totals = Day(
        date=timezone.localdate(now),
        abandonments=sum(d.abandonments for d in days),
        first_contacts=sum(d.first_contacts for d in days),
        replies=sum(d.replies for d in days),
        conversions=sum(d.conversions for d in days),
        opt_outs=sum(d.opt_outs for d in days),
        revenue=sum((d.revenue for d in days), Decimal("0.00")),
    )
    contacted, contacted_opted_out = opt_out_cohort(start=start)
    finished, failures = send_failures(start=start)
    failed = sum(f.count for f in failures)
    waiting, oldest_wait_since = handoff_selectors.handoff_waiting()
    waiting_for_template, templates_blocked = messaging_selectors.sends_waiting_for_template()
    return Dashboard(
        start=start,
        days=days,
        totals=totals,
        contacted=contacted,
        contacted_opted_out=contacted_opted_out,
        opt_out_rate=_ratio(contacted_opted_out, contacted),
        sends_finished=finished,
        sends_failed=failed,
        failure_rate=_ratio(failed, finished),
        failures=failures,
        failed_sends=messaging_selectors.failed_sends().count(),
        stuck_inbound=messaging_selectors.inbound_unprocessed(now=now).count(),
        stuck_outbound=messaging_selectors.outbound_due(now=now).count(),
        payment_mismatches=handoff_selectors.payment_mismatches().count(),
        waiting_for_person=waiting,
        oldest_wait_since=oldest_wait_since,
        waiting_for_template=waiting_for_template,
        templates_blocked=templates_blocked,
    )


def opt_out_cohort(*, start: datetime) -> tuple[int, int]:
    """Customers Sara first contacted in the period, and how many of them have opted out since."""
    contacted = Customer.objects.filter(
        conversations__messages__direction=Message.Direction.OUT,
        conversations__messages__purpose=Message.Purpose.FIRST_CONTACT,
        conversations__messages__sent_at__gte=start,
    ).distinct()
    return contacted.count(), contacted.filter(opted_out=True).count()


def send_failures(*, start: datetime) -> tuple[int, list[Failure]]:
    """Outbound messages of the period that are no longer pending, and the failed ones by error code."""
    finished = Message.objects.filter(direction=Message.Direction.OUT, created_at__gte=start).exclude(
        status=Message.Status.PENDING
    )
    total = finished.count()
    rows = (
        finished.filter(status=Message.Status.FAILED)
        .values("error_code")
        .annotate(n=Count("pk"))
        .order_by("-n", "error_code")
    )
    return total, [
        Failure(error_code=row["error_code"] or "unknown", count=row["n"], rate=_ratio(row["n"], total))
        for row in rows
    ]


def _per_day(queryset: QuerySet, field: str, start: datetime, *, count: str = "pk") -> dict[date, int]:
    # TruncDate uses the current time zone (TIME_ZONE): a day is a day in Brazil, not in UTC.
    # order_by() drops the model's default ordering, which would otherwise split the groups.
    rows = (
        queryset.filter(**{f"{field}__gte": start})
        .annotate(day=TruncDate(field))
        .values("day")
        .annotate(n=Count(count, distinct=count != "pk"))
        .order_by()
    )
    return {row["day"]: row["n"] for row in rows}


def _ratio(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")) if whole else None
