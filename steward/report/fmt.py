"""How the renderers write figures: durations, money, rates, times, counts by name."""

from __future__ import annotations

import time
from collections.abc import Mapping

__all__ = ["counts", "day_span", "money", "rate", "seconds", "stamp"]


def seconds(value: float | None) -> str:
    """A duration a person reads at a glance: ``850 ms``, ``12.3 s``, ``4.2 min``, ``3.1 h``,
    ``2.4 d``; ``-`` when there is none."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    if value < 86400:
        return f"{value / 3600:.1f} h"
    return f"{value / 86400:.1f} d"


def money(value: float | None) -> str:
    """A cost in dollars, with the digits small costs need; ``-`` when nothing was priced."""
    if value is None:
        return "-"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.4f}" if value == 0 or abs(value) >= 0.0001 else f"${value:.6f}"


def rate(part: float | None) -> str:
    return "-" if part is None else f"{part * 100:.0f}%"


def stamp(at: float | None) -> str:
    """A time as UTC ``YYYY-mm-dd HH:MM:SS``; ``-`` when there is none."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) if at is not None else "-"


def day_span(since: float | None, until: float | None) -> str:
    """The period a scope covers, in words."""
    if since is None and until is None:
        return "all time"
    return f"{stamp(since) if since is not None else 'the start'} to " \
           f"{stamp(until) if until is not None else 'now'} (UTC)"


def counts(by: Mapping[str, int], empty: str = "none") -> str:
    """``a 2, b 1`` (largest first, as given); ``empty`` when there is nothing."""
    return ", ".join(f"{name} {n}" for name, n in by.items() if n) or empty
