"""The back-office page of what Sara earns net of her costs, and its CSV export (SPEC §13).

The page's table and the CSV are built from the same cells (`table`), so they always agree.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from core import charts
from messaging.template_labels import template_label
from recovery.money.figures import MoneyReport, SequenceReport, money_report
from recovery.money.revenue import recovered_revenue
from recovery.money.stats import MIN_GROUP, Rate, Row

DEFAULT_DAYS = 30
MAX_DAYS = 366
PERMISSION = "recovery.view_abandonment"
LEVEL = {"level": "95 %"}

LEFT = 92  # room on the left for "R$ 13.794,00"


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


def incremental_numbers(row: Row) -> dict[str, str] | None:
    """The extra sales and their interval, Brazilian style; None without held-out carts."""
    if row.incremental_conversions is None or row.incremental_interval is None:
        return None
    low, high = row.incremental_interval
    return {"value": number(row.incremental_conversions), "low": number(low), "high": number(high)}


def incremental(row: Row) -> str:
    numbers = incremental_numbers(row)
    return "—" if numbers is None else _("%(value)s (%(low)s to %(high)s)") % numbers


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


def step_name(order: int) -> str:
    """Step 1 is the first contact; the others are follow-ups, numbered once there are two."""
    if order == 1:
        return _("First contact")
    if order == 2:
        return _("Follow-up")
    return _("Follow-up %(number)s") % {"number": order - 1}


def table(report: MoneyReport) -> list[list[str]]:
    """Header and rows, exactly as the page shows them and the CSV holds them."""
    total = replace(report.total, label=_("Whole range"))
    rows = [cells(_("Total"), total)]
    rows += [cells(_("Template"), replace(row, label=template_label(row.label))) for row in report.templates]
    rows += [cells(_("Step"), replace(row, label=step_name(int(row.label)))) for row in report.steps]
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
            label = f"{label}: {template_label(line.variant)}"
        named = report.best.get(line.step, "")
        if line.variant:
            best = _("Best of its step") if named == line.variant else ""
        elif line.step in report.compared:
            best = template_label(named) if named else _("Not yet: the intervals overlap")
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
                template_label(line.variant) if line.variant else "—",
                net_interval,
                per_cart,
                best,
            ]
        )
    return rows


# --- The chart ----------------------------------------------------------------------------------


def chart(report: MoneyReport) -> charts.Chart:
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
    plot = charts.Plot(days=len(report.days), low=low, high=high, left=LEFT)
    return plot.chart(
        day_labels=[day.label[:5] for day in report.days],
        y_label=lambda value: brl(Decimal(value).quantize(Decimal(1))),
        lines=[
            charts.Line(
                _("Incremental revenue, running total"),
                "s-conversions",
                plot.points(revenue),
                brl(revenue[-1] if revenue else None),
            ),
            charts.Line(
                _("Meta, model and discount cost, running total"),
                "s-abandonments",
                plot.points(spent),
                brl(spent[-1] if spent else None),
            ),
        ],
    )


# --- In plain words: what Sara earned, what it cost, how sure we are ------------------------------


@dataclass(frozen=True)
class Card:
    label: str
    value: str
    note: str


def summary(report: MoneyReport) -> list[Card]:
    total = report.total
    if total.net is None:
        earned_note = _("No held-out carts in this range: nothing to compare with.")
    elif total.conclusive and total.net_interval is not None:
        low, high = total.net_interval
        earned_note = _("With %(level)s confidence, between %(low)s and %(high)s.") % {
            **LEVEL,
            "low": brl(low),
            "high": brl(high),
        }
    else:
        earned_note = _("Not yet possible to conclude: the difference could still be chance.")
    per_real = total.return_per_real
    return [
        Card(_("What Sara earned (net incremental revenue)"), brl(total.net), earned_note),
        Card(
            _("What it cost"),
            brl(total.spent),
            _("Meta %(meta)s · model %(model)s · discounts %(discount)s")
            % {"meta": brl(total.meta_cost), "model": brl(total.model_cost), "discount": brl(total.discount)},
        ),
        Card(_("How sure we are"), plain_verdict(total), extra_sales(total)),
        Card(
            _("Return per R$ spent"),
            "—" if per_real is None else number(float(per_real), 2),
            _("Net incremental revenue for each real spent on Meta, the model and discounts."),
        ),
    ]


def plain_verdict(row: Row) -> str:
    if row.incremental_conversions is None or row.incremental_interval is None:
        return _("No comparison: no held-out carts")
    if not row.conclusive:
        if row.contacted.carts < MIN_GROUP or row.held_out.carts < MIN_GROUP:
            return _("Not yet possible to conclude: fewer than %(n)s carts in a group") % {"n": MIN_GROUP}
        return _("Not yet possible to conclude")
    if row.incremental_interval is not None and row.incremental_interval[0] > 0:
        return _("With %(level)s confidence, Sara brings extra sales") % LEVEL
    return _("With %(level)s confidence, there are fewer sales than without Sara") % LEVEL


def extra_sales(row: Row) -> str:
    numbers = incremental_numbers(row)
    return "" if numbers is None else _("Extra sales: %(value)s (between %(low)s and %(high)s)") % numbers


@dataclass(frozen=True)
class Line:
    label: str
    amount: str
    total: bool = False


def reconciliation(report: MoneyReport, *, recovered: Decimal) -> list[Line]:
    """From the dashboard's recovered revenue to the net incremental revenue, step by step."""
    total = report.total
    start, end = f"{report.start:%d/%m/%Y}", f"{report.end:%d/%m/%Y}"
    lines = [
        Line(
            _("Recovered revenue on the dashboard: every cart paid from %(start)s to %(end)s, as paid")
            % {"start": start, "end": end},
            brl(recovered),
            total=True,
        ),
        Line(
            _(
                "Payments of carts opened on other days and of carts with no held-out group; discounts "
                "counted at cart value"
            ),
            signed(total.contacted_revenue - recovered),
        ),
        Line(
            _("Value of the contacted carts opened from %(start)s to %(end)s that were paid")
            % {"start": start, "end": end},
            brl(total.contacted_revenue),
            total=True,
        ),
    ]
    if total.incremental_revenue is None:
        return lines
    return [
        *lines,
        Line(
            _("What those customers would have bought without Sara (the held-out carts' rate)"),
            signed(total.incremental_revenue - total.contacted_revenue),
        ),
        Line(_("Incremental revenue: what Sara added"), brl(total.incremental_revenue), total=True),
        Line(_("Meta's messages"), signed(-total.meta_cost)),
        Line(_("The model's tokens"), signed(-total.model_cost)),
        Line(_("Discounts given"), signed(-total.discount)),
        Line(_("Net incremental revenue"), brl(total.net), total=True),
    ]


def signed(amount: Decimal) -> str:
    """+R$ 10,00 or −R$ 10,00: a step of the reconciliation."""
    return brl(amount) if amount < 0 else f"+{brl(amount)}"


def no_holdout_advice(report: MoneyReport) -> str:
    """What to do when nothing was held out: which share to set and how long to wait."""
    days = (report.end - report.start).days + 1
    per_day = report.carts_outside / days if days else 0
    # A few hundred held-out carts tell a lift of a few points from chance.
    wait = "—" if not per_day else number(300 / (per_day * 0.10), 0)
    return _(
        "Sara compares contacted carts with a held-out group that gets no message. Set "
        "SARA_HOLDOUT_PERCENT=10 (10 %% of new carts are held out; the rest are contacted as "
        "today), then wait until about 300 carts are held out: at this range's %(per_day)s carts "
        "a day, about %(wait)s days. The figures appear here as soon as there are 30 carts on "
        "each side."
    ) % {"per_day": number(per_day, 0), "wait": wait}


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


def money_view(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """For staff who may see the abandonments, like the admin pages of the figures."""
    return staff_member_required(permission_required(PERMISSION, raise_exception=True)(view))


@money_view
def money_page(request: HttpRequest) -> TemplateResponse:
    from django.contrib import admin

    start, end, problem = _range(request)
    report = money_report(start=start, end=end)
    rows = table(report)
    since = timezone.make_aware(datetime.combine(start, time.min))
    until = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    compared = report.total.incremental_revenue is not None
    context = {
        **admin.site.each_context(request),
        "title": _("What Sara earns, net of her costs"),
        "report": report,
        "header": rows[0],
        "rows": rows[1:],
        "chart": chart(report) if compared else None,
        "cards": summary(report),
        "reconciliation": reconciliation(report, recovered=recovered_revenue(since=since, until=until)),
        "advice": "" if compared else no_holdout_advice(report),
        "method": _(
            "Extra sales: contacted carts × (their payment rate − the held-out carts' rate), share by "
            "share. Each range in brackets holds the true figure with %(level)s confidence; while it "
            "includes zero, or a group has fewer than 30 carts, it is not yet possible to conclude. "
            "Costs are those of the contacted carts: Meta's rate per delivered message (its monthly "
            "free service messages counted), the model's tokens, and the discount given (cart value − "
            "amount paid). Return per R$ spent = net incremental revenue ÷ (Meta + model + discount)."
        )
        % LEVEL,
        "problem": problem,
        "shares": ", ".join(f"{number(float(s), 0)} %" for s in report.shares),
        "sequence": sequence_context(report.sequence),
    }
    return TemplateResponse(request, "admin/recovery/money.html", context)


@money_view
def money_csv(request: HttpRequest) -> HttpResponse:
    start, end, _problem = _range(request)
    report = money_report(start=start, end=end)
    rows = table(report)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sara-resultado-{start}-{end}.csv"'
    # A BOM and semicolons: how a spreadsheet set to Portuguese (Brazil) opens a CSV untouched,
    # decimal commas included.
    response.write("\ufeff")
    writer = csv.writer(response, delimiter=";")
    writer.writerows(rows)
    # The sequence's rows after the main table, with their added columns (step, variant...).
    writer.writerow([])
    writer.writerows(sequence_table(report.sequence))
    return response


def sequence_context(report: SequenceReport) -> dict[str, object]:
    """What the page's sequence section shows: its table and the variants named best."""
    rows = sequence_table(report)
    return {
        "header": rows[0],
        "rows": rows[1:],
        "best": [(step, template_label(name)) for step, name in sorted(report.best.items())],
    }
