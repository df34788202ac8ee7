"""Listeners over time as an inline SVG: a step line over a time axis, readable on a phone.

Drawn on the server, so the page needs no script and the image is the data: the SVG carries
the time span (`data-start`, `data-end`, Unix seconds), the top of the listener axis
(`data-max`) and the plot area (`data-area`: x, y, width, height), from which every vertex of
the line maps back to a sample.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

from onair.royalties.analytics import Point

WIDTH, HEIGHT = 400, 236
LEFT, RIGHT, TOP, BOTTOM = 40, 28, 28, 44
AREA_W, AREA_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
_TIME_STEPS = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MAX_TICKS = 5


@dataclass(frozen=True)
class Plot:
    svg: Markup
    vertices: list[tuple[float, float]]


def nice_max(peak: int) -> tuple[int, int]:
    """The top of the listener axis and its tick step: 1, 2 or 5 times a power of ten."""
    peak = max(peak, 1)
    magnitude = 10 ** max(0, int(math.log10(peak)) - 1)
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if math.ceil(peak / step) <= MAX_TICKS:
                return math.ceil(peak / step) * step, step
        magnitude *= 10


def time_step(seconds: float) -> int:
    for step in _TIME_STEPS:
        if seconds / step <= MAX_TICKS:
            return step
    return 86400 * math.ceil(seconds / 86400 / MAX_TICKS)


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def listeners_plot(points: Sequence[Point], end: datetime | None) -> Plot | None:
    """The plot of `points` (each holding until the next, the last until `end`), or None."""
    if not points or end is None:
        return None
    t0 = points[0].at.timestamp()
    t1 = max(end.timestamp(), t0 + 60.0)  # a show of a few seconds still gets a readable axis
    top, y_step = nice_max(max(p.listeners for p in points))

    def x(t: float) -> float:
        return round(LEFT + (t - t0) / (t1 - t0) * AREA_W, 2)

    def y(v: float) -> float:
        return round(TOP + AREA_H - v / top * AREA_H, 2)

    vertices = [(x(t0), y(points[0].listeners))]
    for before, point in itertools.pairwise(points):
        at = point.at.timestamp()
        vertices += [(x(at), y(before.listeners)), (x(at), y(point.listeners))]
    vertices.append((x(t1), y(points[-1].listeners)))
    line = " ".join(f"{_num(a)},{_num(b)}" for a, b in vertices)
    area = f"{_num(LEFT)},{_num(TOP + AREA_H)} {line} {_num(x(t1))},{_num(TOP + AREA_H)}"

    parts: list[str] = []
    for value in range(0, top + 1, y_step):
        parts.append(
            f'<line class="plot-grid" x1="{LEFT}" x2="{LEFT + AREA_W}" '
            f'y1="{_num(y(value))}" y2="{_num(y(value))}"/>'
            f'<text class="plot-tick" x="{LEFT - 6}" y="{_num(y(value) + 4)}" '
            f'text-anchor="end">{value}</text>'
        )
    step = time_step(t1 - t0)
    tick = math.ceil(t0 / step) * step
    pattern = "%H:%M:%S" if step < 60 else "%H:%M"
    while tick <= t1:
        label = datetime.fromtimestamp(tick, UTC).strftime(pattern)
        parts.append(
            f'<line class="plot-axis" x1="{_num(x(tick))}" x2="{_num(x(tick))}" '
            f'y1="{TOP + AREA_H}" y2="{TOP + AREA_H + 5}"/>'
            f'<text class="plot-tick" x="{_num(x(tick))}" y="{TOP + AREA_H + 19}" '
            f'text-anchor="middle">{label}</text>'
        )
        tick += step
    peak = max(p.listeners for p in points)
    start_text = points[0].at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    description = (
        f"From {start_text} UTC for {round((t1 - t0) / 60)} minutes; "
        f"peak {peak} listener{'s' if peak != 1 else ''}."
    )
    svg = (
        f'<svg class="listener-plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="plot-title plot-desc" data-start="{_num(t0)}" data-end="{_num(t1)}" '
        f'data-max="{top}" data-area="{LEFT} {TOP} {AREA_W} {AREA_H}" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<title id="plot-title">Listeners over time</title>'
        f'<desc id="plot-desc">{escape(description)}</desc>'
        + "".join(parts)
        + f'<line class="plot-axis" x1="{LEFT}" x2="{LEFT + AREA_W}" '
        f'y1="{TOP + AREA_H}" y2="{TOP + AREA_H}"/>'
        f'<line class="plot-axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + AREA_H}"/>'
        f'<polygon class="plot-fill" points="{area}"/>'
        f'<polyline class="plot-line" points="{line}"/>'
        f'<text class="plot-label" x="{LEFT + AREA_W / 2}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">Time (UTC)</text>'
        f'<text class="plot-label" x="4" y="14">Listeners</text>'
        "</svg>"
    )
    return Plot(svg=Markup(svg), vertices=vertices)
