"""Server-rendered SVG charts: data in, an SVG string out (no JavaScript, no external service).

:func:`month_chart` draws a year of events per month against the pace a target needs: for each
of the 12 months a bar of the events held and, stacked on it in a lighter colour, those
scheduled; the cumulative line of held plus scheduled; and the straight pace line from nothing
on 1 January to the target on 31 December. The picture has a ``viewBox`` and no fixed size, so it
scales to its container's width (a 375-pixel phone screen too).

Pure: it reads no request, database or locale; every text it is given (title, description,
month names, tooltips) is escaped, and every number is formatted here.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: The drawing's coordinate system (the viewBox), in user units.
WIDTH = 400
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 12, 26
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
BASELINE = TOP + PLOT_HEIGHT
BAND = PLOT_WIDTH / 12
BAR_WIDTH = BAND * 0.6
FONT_SIZE = 11

HELD_COLOUR = "#0b5cad"
SCHEDULED_COLOUR = "#9cc3ea"
CUMULATIVE_COLOUR = "#1a1a1a"
PACE_COLOUR = "#a30000"


@dataclass(frozen=True)
class Month:
    """One month's bar: events held, events scheduled, and the bar's tooltip text."""

    held: int
    scheduled: int
    label: str
    tooltip: str = ""


def _num(value: float) -> str:
    """A coordinate with at most two decimals, no trailing zeros (``12``, ``3.5``, ``0.33``)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _text(value: object) -> str:
    """Text or an attribute value, escaped for XML (``&<>"'``)."""
    return escape(str(value), quote=True)


def y_max(months: Sequence[Month], target: int) -> int:
    """The top of the vertical axis: the target, the plan's total or the busiest month, whichever is largest."""
    total = sum(m.held + m.scheduled for m in months)
    busiest = max((m.held + m.scheduled for m in months), default=0)
    return max(target, total, busiest, 1)


def ticks(top: int) -> list[int]:
    """At most 6 round values from 0 to at least ``top`` on the vertical axis."""
    step = 1
    for candidate in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        step = candidate
        if math.ceil(top / candidate) <= 5:
            break
    return [i * step for i in range(math.ceil(top / step) + 1)]


def month_chart(months: Sequence[Month], target: int, *, title: str, desc: str, chart_id: str = "month-chart") -> str:
    """The SVG of ``months`` (exactly 12) against a straight pace to ``target``.

    Each month is a ``<g class="month" data-month="1..12">`` holding a ``rect.held`` and a
    ``rect.scheduled`` (height 0 when there are none); the cumulative line is
    ``polyline.cumulative`` and the pace ``line.pace``.
    """
    if len(months) != 12:
        raise ValueError(f"a year has 12 months, not {len(months)}")
    axis_top = ticks(y_max(months, target))[-1]
    unit = PLOT_HEIGHT / axis_top

    def y(value: float) -> float:
        return BASELINE - value * unit

    safe_id = "".join(c for c in chart_id if c.isalnum() or c in "-_") or "chart"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-labelledby="{safe_id}-title {safe_id}-desc" aria-label="{_text(title)}"'
        f' font-size="{FONT_SIZE}" font-family="system-ui, sans-serif">',
        f'<title id="{safe_id}-title">{_text(title)}</title>',
        f'<desc id="{safe_id}-desc">{_text(desc)}</desc>',
        '<g class="grid" aria-hidden="true">',
    ]
    for tick in ticks(y_max(months, target)):
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_num(y(tick))}" y2="{_num(y(tick))}" stroke="#ddd" stroke-width="1"/>'
            f'<text x="{LEFT - 4}" y="{_num(y(tick) + FONT_SIZE / 3)}" text-anchor="end" fill="#555">{tick}</text>'
        )
    parts.append("</g>")
    for index, month in enumerate(months):
        x = LEFT + index * BAND + (BAND - BAR_WIDTH) / 2
        held_height = month.held * unit
        scheduled_height = month.scheduled * unit
        parts.append(
            f'<g class="month" data-month="{index + 1}" data-held="{int(month.held)}" data-scheduled="{int(month.scheduled)}">'
            + (f"<title>{_text(month.tooltip)}</title>" if month.tooltip else "")
            + f'<rect class="held" x="{_num(x)}" y="{_num(BASELINE - held_height)}" width="{_num(BAR_WIDTH)}"'
            f' height="{_num(held_height)}" fill="{HELD_COLOUR}"/>'
            f'<rect class="scheduled" x="{_num(x)}" y="{_num(BASELINE - held_height - scheduled_height)}"'
            f' width="{_num(BAR_WIDTH)}" height="{_num(scheduled_height)}" fill="{SCHEDULED_COLOUR}"'
            f' stroke="{HELD_COLOUR}" stroke-width="0.5" stroke-dasharray="2 1"/>'
            f'<text class="month-label" x="{_num(LEFT + (index + 0.5) * BAND)}" y="{_num(BASELINE + FONT_SIZE + 4)}"'
            f' text-anchor="middle" fill="#1a1a1a">{_text(month.label)}</text>'
            "</g>"
        )
    points = [(LEFT, BASELINE)]
    total = 0
    for index, month in enumerate(months):
        total += month.held + month.scheduled
        points.append((LEFT + (index + 1) * BAND, y(total)))
    parts.append(
        '<polyline class="cumulative" fill="none" stroke="{}" stroke-width="2" points="{}"/>'.format(
            CUMULATIVE_COLOUR, " ".join(f"{_num(px)},{_num(py)}" for px, py in points),
        )
    )
    parts.append(
        f'<line class="pace" data-target="{int(target)}" x1="{LEFT}" y1="{BASELINE}" x2="{WIDTH - RIGHT}"'
        f' y2="{_num(y(target))}" stroke="{PACE_COLOUR}" stroke-width="2" stroke-dasharray="6 4"/>'
    )
    parts.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{BASELINE}" y2="{BASELINE}" stroke="#555" stroke-width="1"/>'
    )
    parts.append("</svg>")
    return "".join(parts)
