"""A bar chart drawn on the server as SVG (`admin/_bar_chart.html` draws what `bar_chart`
measures): no script to load, readable without JavaScript, printable, and it scales
with the page from a phone to a wide screen through its viewBox."""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 14, 36


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int
    tick: bool  # its label is written under the axis


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    baseline: float
    bars: list[Bar]
    ticks: list[tuple[float, int]]  # (y, value) of the horizontal grid lines
    total: int


def nice_ceiling(value: int) -> int:
    """A round number at least `value` (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10ⁿ)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8):
        if step * power >= value:
            return math.ceil(step * power)
    return 10 * power


def bar_chart(points: list[tuple[str, int]], *, label_every: int = 5) -> Chart:
    """`points`: (label, value) oldest first; the last one's label is always written."""
    top = nice_ceiling(max((value for _, value in points), default=0))
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = inner_w / max(1, len(points))
    gap = min(4.0, slot * 0.2)
    baseline = TOP + inner_h
    bars = []
    last = len(points) - 1
    for i, (label, value) in enumerate(points):
        height = inner_h * value / top
        bars.append(Bar(x=round(LEFT + i * slot + gap / 2, 2), y=round(baseline - height, 2),
                        width=round(slot - gap, 2), height=round(height, 2), label=label,
                        value=value, tick=(last - i) % label_every == 0))
    parts = next(n for n in (4, 2, 1) if top % n == 0)
    ticks = [(round(baseline - inner_h * k / parts, 2), top * k // parts) for k in range(parts + 1)]
    return Chart(width=WIDTH, height=HEIGHT, left=LEFT, baseline=baseline, bars=bars, ticks=ticks,
                 total=sum(value for _, value in points))
