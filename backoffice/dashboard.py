"""The dashboard's charts as plain SVG geometry, drawn by the admin index template (no JS, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.selectors import Dashboard, Day
from core.text import brl
from messaging.retry_advice import error_code_words

WIDTH = 720
HEIGHT = 220
LEFT = 48  # room for the y-axis labels
RIGHT = 12
TOP = 12
BOTTOM = 28  # room for the x-axis labels

# Series of the funnel chart: (Day attribute, label, CSS class giving its colour).
FUNNEL = [
    ("abandonments", gettext_lazy("Abandonments"), "s-abandonments"),
    ("first_contacts", gettext_lazy("First contacts sent"), "s-first-contacts"),
    ("replies", gettext_lazy("Replies"), "s-replies"),
    ("conversions", gettext_lazy("Conversions"), "s-conversions"),
]


@dataclass(frozen=True)
class Line:
    label: str
    css_class: str
    points: str  # "x,y x,y ..." for <polyline>
    total: int


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right_edge: int
    baseline: int
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    lines: list[Line]
    bars: list[Bar]


def funnel_chart(days: list[Day]) -> Chart:
    """One line per funnel step, a point per day."""
    top = nice_ceiling(max((getattr(d, name) for d in days for name, _, _ in FUNNEL), default=0))
    lines = [
        Line(
            label=str(label),
            css_class=css_class,
            points=" ".join(
                f"{_x(i, len(days)):.1f},{_y(getattr(d, name), top):.1f}" for i, d in enumerate(days)
            ),
            total=sum(getattr(d, name) for d in days),
        )
        for name, label, css_class in FUNNEL
    ]
    return _chart(days, top, lines=lines, bars=[], money=False)


def revenue_chart(days: list[Day]) -> Chart:
    """Recovered revenue (BRL) as one bar per day."""
    top = nice_ceiling(max((d.revenue for d in days), default=Decimal(0)))
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    bars = []
    for i, d in enumerate(days):
        if not d.revenue:
            continue
        y = _y(d.revenue, top)
        bars.append(
            Bar(
                x=LEFT + i * slot + slot * 0.15,
                y=y,
                width=slot * 0.7,
                height=HEIGHT - BOTTOM - y,
                title=f"{d.date:%d/%m}: {brl(d.revenue)}",
            )
        )
    return _chart(days, top, lines=[], bars=bars, money=True)


def nice_ceiling(value: float | Decimal) -> int:
    """The smallest 1, 2 or 5 × 10ⁿ at or above value (at least 1): round numbers on the axis."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def _chart(days: list[Day], top: int, *, lines: list[Line], bars: list[Bar], money: bool) -> Chart:
    y_ticks = [
        Tick(position=_y(top * k / 4, top), label=_axis_label(top * k / 4, money=money)) for k in range(5)
    ]
    # A label every 7 days, counted back from today, keeps 30 dates readable and today labelled.
    labelled = sorted(range(len(days) - 1, -1, -7))
    x_ticks = [Tick(position=_x(i, len(days)), label=f"{days[i].date:%d/%m}") for i in labelled]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right_edge=WIDTH - RIGHT,
        baseline=HEIGHT - BOTTOM,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        lines=lines,
        bars=bars,
    )


def _x(index: int, count: int) -> float:
    # Points sit in the middle of their day's slot, so lines and bars line up.
    slot = (WIDTH - LEFT - RIGHT) / max(count, 1)
    return LEFT + slot * (index + 0.5)


def _y(value: float | Decimal, top: int) -> float:
    plot = HEIGHT - TOP - BOTTOM
    return HEIGHT - BOTTOM - plot * float(value) / top


def _axis_label(value: float, *, money: bool) -> str:
    if money and value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


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
