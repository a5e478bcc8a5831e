"""Small statistics for the report: percentiles of one run, median/min/max over runs.

Owns ``percentile`` and ``Figure`` (one reported number: the median of several runs with the
min and max beside it). It must never measure anything itself.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class Figure:
    """One figure: every run's value, reported as median (min-max)."""

    unit: str
    runs: list[float] = field(default_factory=list)

    def add(self, value: float | None) -> None:
        if value is not None:
            self.runs.append(float(value))

    @property
    def median(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "median": self.median,
            "min": min(self.runs) if self.runs else None,
            "max": max(self.runs) if self.runs else None,
            "runs": self.runs,
        }

    def text(self, digits: int = 2) -> str:
        if not self.runs:
            return "n/a"
        med, lo, hi = self.median, min(self.runs), max(self.runs)
        if len(self.runs) == 1:
            return f"{_fmt(med, digits)} {self.unit}"
        return f"{_fmt(med, digits)} {self.unit} ({_fmt(lo, digits)}-{_fmt(hi, digits)})"


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"
