"""Distributions of durations (and other amounts): count, mean, median, p90, max.

Pure, so that a report computes the same figures wherever its durations came from. The median
is the middle value (the mean of the two middle ones for an even count); p90 is the
nearest-rank 90th percentile: the smallest value with at least 90% of the values at or below
it, so it is always a value that was measured.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Dist", "nearest_rank"]


def nearest_rank(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of values sorted ascending (not empty)."""
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@dataclass(frozen=True)
class Dist:
    """A distribution of values (seconds, unless said otherwise); all None when empty."""

    count: int = 0
    total: float = 0.0
    mean: float | None = None
    median: float | None = None
    p90: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Dist:
        ordered = sorted(float(v) for v in values if v is not None)
        if not ordered:
            return cls()
        total = math.fsum(ordered)
        return cls(len(ordered), total, total / len(ordered), statistics.median(ordered),
                   nearest_rank(ordered, 0.9), ordered[-1])

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "total": self.total, "mean": self.mean,
                "median": self.median, "p90": self.p90, "max": self.max}
