"""Small server-side SVG charts: labelled axes, units and a legend, no JavaScript, no CDN.

Every text comes out escaped, so labels from campaign data cannot inject markup.
"""

import math
from dataclasses import dataclass
from datetime import datetime
from html import escape

PALETTE = ("#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2")


@dataclass
class Series:
    name: str
    values: list[float]


def nice_ceiling(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 x 10^n)."""
    if value <= 0:
        return 1
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return candidate
    return 10 ** (exponent + 1)


def _fmt(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def line_chart(
    *,
    title: str,
    x_labels: list[datetime],
    series: list[Series],
    y_unit: str,
    x_unit: str = "hour (UTC)",
    width: int = 720,
    height: int = 260,
) -> str:
    """A line chart of several series over time; `x_labels` are the points' times."""
    left, right, top, bottom = 56, 16, 28, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    count = len(x_labels)
    peak = nice_ceiling(max((max(s.values, default=0) for s in series), default=0))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" aria-labelledby="chart-title" data-points="{count}">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#d1d5db"/>',
    ]
    for i in range(5):
        value = peak * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef0f3"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#374151">{_fmt(value)}</text>'
        )

    def x_at(index: int) -> float:
        return left + (plot_w * index / (count - 1) if count > 1 else plot_w / 2)

    step = max(1, math.ceil(count / 8))
    for index in range(0, count, step):
        label = x_labels[index]
        parts.append(
            f'<text x="{x_at(index):.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11" '
            f'fill="#374151">{escape(label.strftime("%d %b %H:%M"))}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" font-size="12" fill="#111827">'
        f"{escape(x_unit)}</text>"
    )
    parts.append(
        f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" font-size="12" fill="#111827" '
        f'transform="rotate(-90 14 {top + plot_h / 2})">{escape(y_unit)}</text>'
    )
    for number, one in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        points = " ".join(f"{x_at(i):.1f},{top + plot_h - plot_h * (v / peak):.1f}" for i, v in enumerate(one.values))
        parts.append(
            f'<polyline class="series" data-series="{escape(one.name)}" fill="none" stroke="{colour}" '
            f'stroke-width="2" points="{points}"/>'
        )
        for i, v in enumerate(one.values):
            parts.append(
                f'<circle cx="{x_at(i):.1f}" cy="{top + plot_h - plot_h * (v / peak):.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(one.name)}: {v:g} at {escape(x_labels[i].strftime('%Y-%m-%d %H:%M'))}</title></circle>"
            )
        lx = left + 8 + number * 130
        parts.append(f'<rect x="{lx}" y="8" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 16}" y="18" font-size="12" fill="#111827">{escape(one.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(*, title: str, bars: list[tuple[str, float]], unit: str, width: int = 720) -> str:
    """Horizontal bars with their labels and values, for top links and breakdowns."""
    row, left, right, top = 26, 220, 70, 10
    height = top * 2 + row * max(1, len(bars)) + 20
    peak = nice_ceiling(max((v for _, v in bars), default=0))
    plot_w = width - left - right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" data-bars="{len(bars)}"><title>{escape(title)}</title>'
    ]
    for i, (label, value) in enumerate(bars):
        y = top + i * row
        short = label if len(label) <= 34 else label[:33] + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" font-size="12" fill="#111827">{escape(short)}'
            f"<title>{escape(label)}</title></text>"
        )
        parts.append(
            f'<rect x="{left}" y="{y + 4}" width="{plot_w * value / peak:.1f}" height="16" fill="{PALETTE[0]}"/>'
        )
        parts.append(
            f'<text x="{left + plot_w * value / peak + 6:.1f}" y="{y + 16}" font-size="12" fill="#374151">'
            f"{value:g}</text>"
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 4}" text-anchor="middle" font-size="12" fill="#111827">'
        f"{escape(unit)}</text></svg>"
    )
    return "".join(parts)
