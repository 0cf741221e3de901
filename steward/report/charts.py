"""Small inline SVG charts for the HTML scorecard: horizontal bars, a histogram, stacked bars.

Drawn here, as text, so that the page needs nothing at view time (no script, no font, no
network). Every label is escaped; each bar carries a ``<title>`` (its figure, shown on
hover). A chart with no data says so instead of drawing empty axes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence

__all__ = ["COLORS", "bars", "histogram", "stacked"]

COLORS = {"finished": "#2e7d32", "waiting": "#f9a825", "failed": "#c62828",
          "stalled": "#6a1b9a", "running": "#1565c0", "erased": "#757575", "other": "#90a4ae"}
_BAR = "#3f6fb5"
_INK = "#333"
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _svg(chart_id: str, width: int, height: int, label: str, body: list[str]) -> str:
    return (f'<svg id="{_e(chart_id)}" class="chart" role="img" aria-label="{_e(label)}" '
            f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" {_FONT}><title>{_e(label)}</title>'
            + "".join(body) + "</svg>")


def _nothing(chart_id: str, label: str, width: int = 420) -> str:
    return _svg(chart_id, width, 60, label, [
        f'<text x="{width // 2}" y="34" text-anchor="middle" fill="#777">no data</text>'])


def bars(chart_id: str, label: str, items: Sequence[tuple[str, float, str]], *,
         width: int = 420) -> str:
    """Horizontal bars, one per (label, value, text shown at its end)."""
    if not items or not any(v > 0 for _, v, _ in items):
        return _nothing(chart_id, label, width)
    left, right, row = 110, 190, 24  # the right margin holds the figure's text
    top = max(v for _, v, _ in items) or 1.0
    body = []
    for i, (name, value, text) in enumerate(items):
        y = 8 + i * row
        w = max(1.0, (width - left - right) * value / top)
        body.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" fill="{_INK}">'
                    f'{_e(name[:20])}</text>'
                    f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
                    f'fill="{_BAR}"><title>{_e(name)}: {_e(text)}</title></rect>'
                    f'<text x="{left + w + 4:.1f}" y="{y + 14}" fill="{_INK}">{_e(text)}</text>')
    return _svg(chart_id, width, 16 + len(items) * row, label, body)


def histogram(chart_id: str, label: str, values: Sequence[float],
              edges: Sequence[tuple[float, str]], *, width: int = 420,
              fmt: Callable[[float], str] = str) -> str:
    """Counts of ``values`` in bins: ``edges`` are (upper bound, label), the last bin open
    (values above every bound); the median and p90 are written under the axis by the caller."""
    if not values:
        return _nothing(chart_id, label, width)
    labels = [name for _, name in edges] + [f">{edges[-1][1].lstrip('≤<')}"]
    counts = [0] * len(labels)
    for v in values:
        counts[next((i for i, (bound, _) in enumerate(edges) if v <= bound), len(edges))] += 1
    height, base, left = 170, 130, 30
    slot = (width - left - 10) / len(labels)
    top = max(counts) or 1
    body = [f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#999"/>',
            f'<text x="{left - 4}" y="18" text-anchor="end" fill="#777">{top}</text>']
    for i, (name, n) in enumerate(zip(labels, counts, strict=True)):
        h = (base - 20) * n / top
        x = left + i * slot
        body.append(f'<rect x="{x + 3:.1f}" y="{base - h:.1f}" width="{slot - 6:.1f}" '
                    f'height="{h:.1f}" fill="{_BAR}"><title>{_e(name)}: {n} thread(s)</title>'
                    f'</rect><text x="{x + slot / 2:.1f}" y="{base + 16}" text-anchor="middle" '
                    f'fill="{_INK}">{_e(name)}</text>')
        if n:
            body.append(f'<text x="{x + slot / 2:.1f}" y="{base - h - 4:.1f}" '
                        f'text-anchor="middle" fill="{_INK}">{n}</text>')
    return _svg(chart_id, width, height, label, body)


def stacked(chart_id: str, label: str, days: Mapping[str, Mapping[str, int]],
            order: Sequence[str], *, width: int = 420) -> str:
    """Stacked bars per day (the last 30 days that have threads), colored by ``order``'s
    categories, with a legend of the categories present."""
    if not days:
        return _nothing(chart_id, label, width)
    shown = list(days.items())[-30:]
    present = [c for c in order if any(d.get(c) for _, d in shown)]
    base, left, legend = 140, 30, 190
    slot = (width - left - 10) / len(shown)
    top = max(sum(d.values()) for _, d in shown) or 1
    body = [f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#999"/>',
            f'<text x="{left - 4}" y="18" text-anchor="end" fill="#777">{top}</text>']
    for i, (day, counts) in enumerate(shown):
        x, y = left + i * slot, float(base)
        for category in present:
            n = counts.get(category, 0)
            if not n:
                continue
            h = (base - 20) * n / top
            y -= h
            body.append(f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{max(1.0, slot - 4):.1f}" '
                        f'height="{h:.1f}" fill="{COLORS.get(category, _BAR)}"><title>'
                        f'{_e(day)}: {n} {_e(category)}</title></rect>')
        if len(shown) <= 8 or i in (0, len(shown) - 1):
            body.append(f'<text x="{x + slot / 2:.1f}" y="{base + 16}" text-anchor="middle" '
                        f'fill="{_INK}">{_e(day[5:])}</text>')
    per_row = max(1, math.floor((width - 20) / 100))
    for i, category in enumerate(present):
        x, y = 20 + (i % per_row) * 100, 164 + (i // per_row) * 18
        body.append(f'<rect x="{x}" y="{y}" width="10" height="10" '
                    f'fill="{COLORS.get(category, _BAR)}"/><text x="{x + 14}" y="{y + 9}" '
                    f'fill="{_INK}">{_e(category)}</text>')
    return _svg(chart_id, width, legend + 18 * ((len(present) - 1) // per_row), label, body)
