"""Medians with their spread, ratios and the result table."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


def quartiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    if len(ordered) < 4:
        return ordered[0], statistics.median(ordered), ordered[-1]
    q1, q2, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return q1, q2, q3


@dataclass(frozen=True)
class Figure:
    """The median of repeated runs and half its interquartile range (min–max under 4 runs)."""

    values: tuple[float, ...]
    unit: str = "ms"
    digits: int = 1

    @classmethod
    def of(cls, values, unit: str = "ms", digits: int = 1) -> Figure:
        return cls(tuple(float(v) for v in values), unit, digits)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        low, _, high = quartiles(list(self.values))
        return (high - low) / 2

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return (
            f"{self.median:.{self.digits}f}{unit} ± {self.spread:.{self.digits}f} "
            f"(n={len(self.values)})"
        )


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=20, method="inclusive")[18]


@dataclass
class Row:
    id: str
    metric: str
    ours: str
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    verdict: str = "info"  # pass, miss, info, not measured yet, error


def ratio_text(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def verdict(ok: bool) -> str:
    return "pass" if ok else "MISS"


COLUMNS = ("id", "metric", "ours", "baseline (same run)", "ratio", "target", "result")


def as_table(rows: list[Row]) -> str:
    """A Markdown table: readable in a terminal and in RESULTS.md alike."""
    cells = [COLUMNS] + [
        (r.id, r.metric, r.ours, r.baseline, r.ratio, r.target, r.verdict) for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]

    def line(row) -> str:
        return "| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), separator, *(line(row) for row in cells[1:])])
