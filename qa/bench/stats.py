"""The benchmark plan, and latencies -> summary statistics; small helpers every benchmark section shares."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECTIONS = ("indexing", "extraction", "scale", "answers", "profile", "load", "store")


@dataclass(frozen=True)
class BenchPlan:
    """How much to run: `quick` is a few minutes on 2 cores, the full plan about half an hour."""

    quick: bool = False
    questions: Path = Path("eval/questions.jsonl")
    only: tuple[str, ...] = SECTIONS

    @property
    def scale_sizes(self) -> tuple[int, ...]:
        return (1_000, 10_000) if self.quick else (1_000, 10_000, 100_000)

    @property
    def hybrid_sizes(self) -> tuple[int, ...]:
        return (1_000,) if self.quick else (1_000, 10_000)

    @property
    def store_sizes(self) -> tuple[int, ...]:
        # 10^6 chunks would take longer than 20 minutes to build here: `qa bench` extrapolates to it instead
        return (1_000, 10_000) if self.quick else (10_000, 100_000)

    @property
    def store_queries(self) -> int:
        return 100 if self.quick else 200

    @property
    def answer_questions(self) -> int:
        return 20 if self.quick else 100

    @property
    def llm_questions(self) -> int:
        return 3 if self.quick else 10

    @property
    def load_sessions(self) -> tuple[int, ...]:
        return (1, 5) if self.quick else (1, 5, 20)

    @property
    def questions_per_session(self) -> int:
        return 3 if self.quick else 5


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q={q} must be within 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(values_ms: Sequence[float]) -> dict[str, float | int | None]:
    """n, p50, p95, mean and max of latencies in milliseconds (None when there are none)."""
    if not values_ms:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "mean_ms": None, "max_ms": None}
    return {
        "n": len(values_ms),
        "p50_ms": round(percentile(values_ms, 50), 2),
        "p95_ms": round(percentile(values_ms, 95), 2),
        "mean_ms": round(sum(values_ms) / len(values_ms), 2),
        "max_ms": round(max(values_ms), 2),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator rounded to 3 places, or None if either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 3)


def load_average() -> float | None:
    """The 1-minute load average (None where the OS does not report it)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def spread(items: Sequence[Any], count: int) -> list[Any]:
    """`count` items taken evenly across `items` (all of them when there are fewer), in order."""
    if count <= 0 or not items:
        return []
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]
