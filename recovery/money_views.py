"""The back-office page of what Sara earns net of her costs, and its CSV export (SPEC §13).

The page's table and the CSV are built from the same cells (`table`), so they always agree.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from recovery.selectors import MoneyReport, Rate, Row, money_report
from recovery.sequence_money import SequenceReport, sequence_report

DEFAULT_DAYS = 30
MAX_DAYS = 366
PERMISSION = "recovery.view_abandonment"
LEVEL = {"level": "95 %"}

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 92, 12, 12, 28  # room on the left for "R$ 13.794,00"


# --- Formatting, Brazilian style --------------------------------------------------------------


def brl(amount: Decimal | None) -> str:
    """R$ 1.299,00; a loss reads −R$ 12,50."""
    if amount is None:
        return "—"
    whole, cents = f"{abs(amount):,.2f}".split(".")
    sign = "−" if amount < 0 else ""
    return f"{sign}R$ {whole.replace(',', '.')},{cents}"


def number(value: float, digits: int = 1) -> str:
    text = f"{abs(value):,.{digits}f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"−{text}" if value < 0 and round(value, digits) != 0 else text


def rate(r: Rate) -> str:
    interval = r.interval
    if r.value is None or interval is None:
        return "—"
    low, high = interval
    return f"{number(r.value * 100)} % ({number(low * 100)}–{number(high * 100)} %)"


def incremental(row: Row) -> str:
    if row.incremental_conversions is None or row.incremental_interval is None:
        return "—"
    low, high = row.incremental_interval
    return _("%(value)s (%(low)s to %(high)s)") % {
        "value": number(row.incremental_conversions),
        "low": number(low),
        "high": number(high),
    }


def verdict(row: Row) -> str:
    if row.incremental_conversions is None:
        return _("No held-out carts to compare with")
    if not row.conclusive:
        return _("Sample too small to conclude")
    if row.incremental_interval is not None and row.incremental_interval[0] > 0:
        return _("Sara adds sales")
    return _("Fewer sales than without Sara")


# --- The table ----------------------------------------------------------------------------------


def header() -> list[str]:
    return [
        _("Section"),
        _("Row"),
        _("Contacted: paid / carts"),
        _("Contacted conversion (%(level)s interval)") % LEVEL,
        _("Held out: paid / carts"),
        _("Held-out conversion (%(level)s interval)") % LEVEL,
        _("Incremental conversions (%(level)s interval)") % LEVEL,
        _("Incremental revenue"),
        _("Meta cost"),
        _("Model cost"),
        _("Discount given"),
        _("Net incremental revenue"),
        _("Return per R$ spent"),
        _("Conclusion"),
    ]


def cells(section: str, row: Row) -> list[str]:
    per_real = row.return_per_real
    return [
        section,
        row.label,
        f"{row.contacted.conversions}/{row.contacted.carts}",
        rate(row.contacted),
        f"{row.held_out.conversions}/{row.held_out.carts}",
        rate(row.held_out),
        incremental(row),
        brl(row.incremental_revenue),
        brl(row.meta_cost),
        brl(row.model_cost),
        brl(row.discount),
        brl(row.net),
        "—" if per_real is None else number(float(per_real), 2),
        verdict(row),
    ]


def table(report: MoneyReport) -> list[list[str]]:
    """Header and rows, exactly as the page shows them and the CSV holds them."""
    steps = {"first_contact": _("First contact"), "followup": _("Follow-up")}
    total = replace(report.total, label=_("Whole range"))
    rows = [cells(_("Total"), total)]
    rows += [cells(_("Template"), row) for row in report.templates]
    rows += [cells(_("Step"), replace(row, label=steps[row.label])) for row in report.steps]
    rows += [cells(_("Day"), row) for row in report.days]
    return [header(), *rows]


# --- The sequence: each step and each variant against the holdout (SPEC §15) ------------------


def sequence_header() -> list[str]:
    """The main table's columns, then the sequence's own: added, never in place of others."""
    return [
        *header(),
        _("Step"),
        _("Variant"),
        _("Net incremental revenue (%(level)s interval)") % LEVEL,
        _("Net per contacted cart (%(level)s interval)") % LEVEL,
        _("Best variant"),
    ]


def sequence_table(report: SequenceReport) -> list[list[str]]:
    """Header and one row per step and per variant, as the page shows them and the CSV holds them."""
    rows = [sequence_header()]
    for line in report.rows:
        section = _("Sequence step") if not line.variant else _("Template variant")
        label = _("Step %(order)s") % {"order": line.step}
        if line.variant:
            label = f"{label}: {line.variant}"
        named = report.best.get(line.step, "")
        if line.variant:
            best = _("Best of its step") if named == line.variant else ""
        elif line.step in report.compared:
            best = named or _("Not yet: the intervals overlap")
        else:
            best = "—"
        net_interval = "—"
        if line.net_interval is not None:
            net_interval = _("%(value)s (%(low)s to %(high)s)") % {
                "value": brl(line.row.net),
                "low": brl(line.net_interval[0]),
                "high": brl(line.net_interval[1]),
            }
        per_cart = "—"
        if line.net_per_cart is not None:
            value, low, high = line.net_per_cart
            per_cart = _("%(value)s (%(low)s to %(high)s)") % {
                "value": brl(value),
                "low": brl(low),
                "high": brl(high),
            }
        rows.append(
            [
                *cells(section, replace(line.row, label=label)),
                str(line.step),
                line.variant or "—",
                net_interval,
                per_cart,
                best,
            ]
        )
    return rows


# --- The chart ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    label: str
    css_class: str
    points: str
    last: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right_edge: int
    zero: float
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    series: list[Series]


def chart(report: MoneyReport) -> Chart:
    """Running totals over the range: incremental revenue against what Sara cost."""
    revenue, spent = [], []
    running_revenue = running_spent = Decimal(0)
    for day in report.days:
        running_revenue += day.incremental_revenue or 0
        running_spent += day.spent
        revenue.append(running_revenue)
        spent.append(running_spent)
    values = [*revenue, *spent, Decimal(0)]
    low, high = float(min(values)), float(max(values))
    if high == low:
        high = low + 1
    count = max(len(report.days), 1)
    slot = (WIDTH - LEFT - RIGHT) / count

    def x(i: int) -> float:
        return LEFT + slot * (i + 0.5)

    def y(v: float | Decimal) -> float:
        return round(HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * (float(v) - low) / (high - low), 1)

    def points(series: list[Decimal]) -> str:
        return " ".join(f"{x(i):.1f},{y(v)}" for i, v in enumerate(series))

    y_ticks = [
        (y(low + (high - low) * k / 4), brl(Decimal(low + (high - low) * k / 4).quantize(Decimal(1))))
        for k in range(5)
    ]
    x_ticks = [(x(i), report.days[i].label[:5]) for i in sorted(range(len(report.days) - 1, -1, -7))]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right_edge=WIDTH - RIGHT,
        zero=y(0),
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        series=[
            Series(
                _("Incremental revenue, running total"),
                "s-conversions",
                points(revenue),
                brl(revenue[-1] if revenue else None),
            ),
            Series(
                _("Meta, model and discount cost, running total"),
                "s-abandonments",
                points(spent),
                brl(spent[-1] if spent else None),
            ),
        ],
    )


# --- Views ----------------------------------------------------------------------------------------


def _range(request: HttpRequest) -> tuple[date, date, str]:
    """The chosen range (local days, both included), or the last 30 days with why."""
    today = timezone.localdate()
    default = (today - timedelta(days=DEFAULT_DAYS - 1), today)
    raw_start, raw_end = request.GET.get("start", ""), request.GET.get("end", "")
    if not raw_start and not raw_end:
        return *default, ""
    try:
        start, end = date.fromisoformat(raw_start), date.fromisoformat(raw_end)
    except ValueError:
        return *default, _("Dates must be written as YYYY-MM-DD; showing the last 30 days.")
    if end < start:
        return *default, _("The range ends before it starts; showing the last 30 days.")
    if (end - start).days >= MAX_DAYS:
        return *default, _("Choose at most 366 days; showing the last 30 days.")
    return start, end, ""


@staff_member_required
@permission_required(PERMISSION, raise_exception=True)
def money_page(request: HttpRequest) -> TemplateResponse:
    from django.contrib import admin

    start, end, problem = _range(request)
    report = money_report(start=start, end=end)
    rows = table(report)
    context = {
        **admin.site.each_context(request),
        "title": _("What Sara earns, net of her costs"),
        "report": report,
        "header": rows[0],
        "rows": rows[1:],
        "chart": chart(report),
        "problem": problem,
        "shares": ", ".join(f"{number(float(s), 0)} %" for s in report.shares),
        "sequence": sequence_context(start=start, end=end),
    }
    return TemplateResponse(request, "admin/recovery/money.html", context)


@staff_member_required
@permission_required(PERMISSION, raise_exception=True)
def money_csv(request: HttpRequest) -> HttpResponse:
    start, end, _problem = _range(request)
    rows = table(money_report(start=start, end=end))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sara-resultado-{start}-{end}.csv"'
    # A BOM and semicolons: how a spreadsheet set to Portuguese (Brazil) opens a CSV untouched,
    # decimal commas included.
    response.write("\ufeff")
    writer = csv.writer(response, delimiter=";")
    writer.writerows(rows)
    # The sequence's rows after the main table, with their added columns (step, variant...).
    writer.writerow([])
    writer.writerows(sequence_table(sequence_report(start=start, end=end)))
    return response


def sequence_context(*, start: date, end: date) -> dict[str, object]:
    """What the page's sequence section shows: its table and the variants named best."""
    report = sequence_report(start=start, end=end)
    rows = sequence_table(report)
    return {"header": rows[0], "rows": rows[1:], "best": sorted(report.best.items())}
