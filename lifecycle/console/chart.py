"""The overview's chart of operations per day by outcome, drawn on the server as SVG.

:func:`day_chart` turns the counts of :meth:`LifecycleClient.operations_by_day` into the
geometry the template draws (stacked bars, one per UTC day, in SVG user units); colours come
from the stylesheet (classes ``out-<outcome>``), as the console's CSP admits no inline style.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

#: Outcomes in stacking order (bottom first); an unknown status is drawn as ``other``.
OUTCOMES = ("completed", "failed", "cancelled", "running", "other")
WIDTH, HEIGHT = 720, 240
LEFT, BOTTOM, TOP = 36, 28, 12


@dataclass(frozen=True)
class Segment:
    """One outcome's part of a day's bar: its rectangle and count."""

    outcome: str
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Day:
    """One day's column: its date, label position, total and segments."""

    day: date
    label_x: float
    total: int
    counts: dict[str, int]
    segments: list[Segment]


@dataclass(frozen=True)
class DayChart:
    """A stacked bar chart of ``days`` (oldest first); ``ticks`` are (count, y) of the
    horizontal grid lines; ``peak`` the largest day's total (the y axis' top)."""

    days: list[Day]
    ticks: list[tuple[int, float]]
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: int = HEIGHT - BOTTOM


def _outcome(status: str) -> str:
    return status if status in OUTCOMES else "other"


def day_chart(counts: dict[date, dict[str, int]], last: date, days: int) -> DayChart:
    """The chart of the ``days`` days ending with ``last`` from ``counts`` (per day, per
    status); a day without runs is an empty column."""
    columns = [last - timedelta(days=days - 1 - i) for i in range(days)]
    merged: list[dict[str, int]] = []
    for day in columns:
        by_outcome: dict[str, int] = {}
        for status, n in counts.get(day, {}).items():
            by_outcome[_outcome(status)] = by_outcome.get(_outcome(status), 0) + n
        merged.append(by_outcome)
    peak = max([sum(m.values()) for m in merged] + [1])
    step = max(1, -(-peak // 4))  # four grid lines at most, in whole runs
    top = step * -(-peak // step)
    plot = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / days
    bar = slot * 0.7

    def y_of(n: float) -> float:
        return round(HEIGHT - BOTTOM - plot * n / top, 1)

    out = []
    for i, (day, by_outcome) in enumerate(zip(columns, merged, strict=True)):
        x = round(LEFT + i * slot + (slot - bar) / 2, 1)
        segments, below = [], 0
        for outcome in OUTCOMES:
            n = by_outcome.get(outcome, 0)
            if n:
                y = y_of(below + n)
                segments.append(Segment(outcome, n, x, y, round(bar, 1), y_of(below) - y))
                below += n
        out.append(Day(day, round(x + bar / 2, 1), below, by_outcome, segments))
    ticks = [(n, y_of(n)) for n in range(0, top + 1, step)]
    return DayChart(out, ticks, top)
