"""Day-by-day charts as plain SVG geometry, drawn by the admin's templates (no JS, no CDN).

`templates/admin/sara/chart_axes.html` draws a chart's grid and axis labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

WIDTH = 720
HEIGHT = 220
RIGHT = 12
TOP = 12
BOTTOM = 28  # room for the x-axis labels


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Line:
    label: str
    css_class: str
    points: str  # "x,y x,y ..." for <polyline>
    total: str  # what the legend shows beside the label


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right_edge: int
    baseline: float  # where zero sits
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    lines: list[Line] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)


@dataclass(frozen=True)
class Plot:
    """Where a value lands: `days` slots across, `low` to `high` up, `left` pixels kept for the
    y-axis labels."""

    days: int
    low: float
    high: float
    left: int

    @property
    def slot(self) -> float:
        return (WIDTH - self.left - RIGHT) / max(self.days, 1)

    def x(self, index: int) -> float:
        # Points sit in the middle of their day's slot, so lines and bars line up.
        return self.left + self.slot * (index + 0.5)

    def y(self, value: float | Decimal) -> float:
        plot = HEIGHT - TOP - BOTTOM
        return HEIGHT - BOTTOM - plot * (float(value) - self.low) / (self.high - self.low)

    def points(self, values: Iterable[float | Decimal]) -> str:
        return " ".join(f"{self.x(i):.1f},{self.y(v):.1f}" for i, v in enumerate(values))

    def chart(
        self,
        *,
        day_labels: list[str],
        y_label: Callable[[float], str],
        lines: list[Line] | None = None,
        bars: list[Bar] | None = None,
    ) -> Chart:
        """The chart with five y ticks from low to high and a day label every 7 days, counted
        back from the last day: 30 dates stay readable and today is labelled."""
        values = [self.low + (self.high - self.low) * k / 4 for k in range(5)]
        labelled = sorted(range(len(day_labels) - 1, -1, -7))
        return Chart(
            width=WIDTH,
            height=HEIGHT,
            left=self.left,
            right_edge=WIDTH - RIGHT,
            baseline=self.y(0),
            y_ticks=[Tick(position=self.y(value), label=y_label(value)) for value in values],
            x_ticks=[Tick(position=self.x(i), label=day_labels[i]) for i in labelled],
            lines=lines or [],
            bars=bars or [],
        )


def nice_ceiling(value: float | Decimal) -> int:
    """The smallest 1, 2 or 5 × 10ⁿ at or above value (at least 1): round numbers on the axis."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10
