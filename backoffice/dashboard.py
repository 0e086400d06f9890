"""The dashboard's charts as plain SVG geometry, drawn by the admin index template (no JS, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.selectors import Dashboard, Day
from core.charts import Bar, Chart, Line, Plot, nice_ceiling
from core.text import brl
from messaging.retry_advice import error_code_words

LEFT = 48  # room for the y-axis labels

# Series of the funnel chart: (Day attribute, label, CSS class giving its colour).
FUNNEL = [
    ("abandonments", gettext_lazy("Abandonments"), "s-abandonments"),
    ("first_contacts", gettext_lazy("First contacts sent"), "s-first-contacts"),
    ("replies", gettext_lazy("Replies"), "s-replies"),
    ("conversions", gettext_lazy("Conversions"), "s-conversions"),
]


def funnel_chart(days: list[Day]) -> Chart:
    """One line per funnel step, a point per day."""
    top = nice_ceiling(max((getattr(d, name) for d in days for name, _, _ in FUNNEL), default=0))
    plot = Plot(days=len(days), low=0, high=top, left=LEFT)
    lines = [
        Line(
            label=str(label),
            css_class=css_class,
            points=plot.points(getattr(d, name) for d in days),
            total=str(sum(getattr(d, name) for d in days)),
        )
        for name, label, css_class in FUNNEL
    ]
    return plot.chart(day_labels=_day_labels(days), y_label=_axis_label, lines=lines)


def revenue_chart(days: list[Day]) -> Chart:
    """Recovered revenue (BRL) as one bar per day."""
    top = nice_ceiling(max((d.revenue for d in days), default=Decimal(0)))
    plot = Plot(days=len(days), low=0, high=top, left=LEFT)
    bars = []
    for i, d in enumerate(days):
        if not d.revenue:
            continue
        y = plot.y(d.revenue)
        bars.append(
            Bar(
                x=LEFT + i * plot.slot + plot.slot * 0.15,
                y=y,
                width=plot.slot * 0.7,
                height=plot.y(0) - y,
                title=f"{d.date:%d/%m}: {brl(d.revenue)}",
            )
        )
    return plot.chart(day_labels=_day_labels(days), y_label=_money_axis_label, bars=bars)


def _day_labels(days: list[Day]) -> list[str]:
    return [f"{d.date:%d/%m}" for d in days]


def _axis_label(value: float) -> str:
    return f"{value:g}"


def _money_axis_label(value: float) -> str:
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


@dataclass(frozen=True)
class Card:
    label: str
    value: str
    note: str = ""


def cards(figures: Dashboard) -> list[Card]:
    """The headline numbers of the period, as the index shows them."""
    t = figures.totals
    conversion = Decimal(t.conversions) / t.abandonments if t.abandonments else None
    return [
        Card(_("Abandonments"), str(t.abandonments)),
        Card(_("First contacts sent"), str(t.first_contacts)),
        Card(_("Replies"), str(t.replies), _("conversations with a customer message, by day")),
        Card(
            _("Conversions"),
            str(t.conversions),
            _("%(percent)s of abandonments") % {"percent": percent(conversion)},
        ),
        Card(_("Recovered revenue"), brl(t.revenue), _("what customers paid")),
        Card(
            _("Opt-out rate"),
            percent(figures.opt_out_rate),
            _("%(opted_out)s of %(contacted)s customers contacted")
            % {"opted_out": figures.contacted_opted_out, "contacted": figures.contacted},
        ),
        Card(
            _("Send failure rate"),
            percent(figures.failure_rate),
            _("%(failed)s of %(finished)s sends")
            % {"failed": figures.sends_failed, "finished": figures.sends_finished},
        ),
    ]


def percent(rate: Decimal | None) -> str:
    if rate is None:
        return "—"
    return f"{rate * 100:.1f} %".replace(".", ",")


@dataclass(frozen=True)
class FailureRow:
    error_code: str
    label: str
    count: int
    share: str


def failure_rows(figures: Dashboard) -> list[FailureRow]:
    return [
        FailureRow(f.error_code, error_code_words(f.error_code), f.count, percent(f.rate))
        for f in figures.failures
    ]
