"""Scored records with P(answerable) -> how well that confidence separates, ranks and is calibrated: the risk-coverage
curve and its area (AURC), AUROC of near-miss unanswerable vs answerable questions, expected calibration error
(10 bins), abstention on unanswerable questions at a false-refusal budget, with bootstrap intervals.

Conventions: a question is *refused at threshold t* when its confidence is below t; the *forced* answer of a
question is what the system answers with the abstention threshold at 0 (the curve's first run), so the risk of
answering the most confident share of questions can be measured on every question, not only those it answered.
Far misses (set "off-topic") are left out of the near-miss AUROC: they are easy, and the hard case is the question
that names the articles' people and events and asks a detail no article gives.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from typing import Any

from qa.evaluation.metrics import Record

BINS = 10
BOOTSTRAP = 1000  # resamples for an interval
SEED = 0
BUDGETS = (0.05, 0.10)  # false-refusal budgets at which abstention is reported
FAR_MISS = "off-topic"


def answerable(record: Record) -> bool:
    return record.type != "unanswerable"


def scored(records: Sequence[Record]) -> list[Record]:
    """The records that carry a confidence and no error."""
    return [r for r in records if r.confidence is not None and r.error is None]


def auroc(records: Sequence[Record]) -> float | None:
    """P(a random answerable question is more confident than a random near-miss unanswerable one); ties count
    half. None without both kinds."""
    positives = [r.confidence or 0.0 for r in records if answerable(r)]
    negatives = [r.confidence or 0.0 for r in records if not answerable(r) and r.set != FAR_MISS]
    if not positives or not negatives:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return round(wins / (len(positives) * len(negatives)), 4)


def calibration_error(records: Sequence[Record], bins: int = BINS) -> float | None:
    """Expected calibration error of P(answerable) against whether the question is answerable
    (`expected_calibration_error`), None without records."""
    if not records:
        return None
    confidences = [r.confidence or 0.0 for r in records]
    return round(expected_calibration_error(confidences, [answerable(r) for r in records], bins), 4)


def expected_calibration_error(confidences: Sequence[float], labels: Sequence[bool | int], bins: int = BINS) -> float:
    """The mean, weighted by bin size, of |mean confidence - share of positive labels| over equal-width bins (1.0 in
    the last bin). `qa eval` reports it; `qa fit` calibrates against it."""
    total = 0.0
    for number in range(bins):
        low, high = number / bins, (number + 1) / bins
        members = [k for k, c in enumerate(confidences) if low <= c < high or (high == 1.0 and c == 1.0)]
        if members:
            mean_confidence = sum(confidences[k] for k in members) / len(members)
            share = sum(bool(labels[k]) for k in members) / len(members)
            total += len(members) * abs(mean_confidence - share)
    return total / len(confidences)


def abstention_at(records: Sequence[Record], budget: float) -> float | None:
    """The share of unanswerable questions refused at the highest threshold whose false refusal (answerable
    questions refused) stays within `budget`."""
    positives = sorted(r.confidence or 0.0 for r in records if answerable(r))
    negatives = [r.confidence or 0.0 for r in records if not answerable(r)]
    if not positives or not negatives:
        return None
    allowed = int(budget * len(positives) + 1e-9)  # answerable questions that may fall below the threshold
    threshold = positives[allowed]  # refusing below it refuses exactly the `allowed` least confident (ties kept)
    return round(sum(n < threshold for n in negatives) / len(negatives), 4)


def risk_coverage(forced: Sequence[Record]) -> list[dict[str, float]]:
    """Coverage and risk when answering only the most confident questions, for every coverage level: risk is the
    share of the answered whose forced answer is wrong (an answerable question not answered correctly, or an
    unanswerable one answered)."""
    ordered = sorted(forced, key=lambda r: -(r.confidence or 0.0))
    points, errors = [], 0
    for count, record in enumerate(ordered, start=1):
        errors += not forced_correct(record)
        points.append({"coverage": round(count / len(ordered), 4), "risk": round(errors / count, 4)})
    return points


def forced_correct(record: Record) -> bool:
    """Whether the forced answer is right: correct for an answerable question, a refusal for an unanswerable one."""
    return record.success


def aurc(forced: Sequence[Record]) -> float | None:
    """Area under the risk-coverage curve (the mean selective risk over coverage levels); lower is better."""
    points = risk_coverage(forced)
    return round(sum(p["risk"] for p in points) / len(points), 4) if points else None


def interval(
    records: Sequence[Record], metric: Callable[[Sequence[Record]], float | None]
) -> tuple[float, float] | None:
    """A 95% bootstrap interval of `metric` (questions resampled with replacement, seeded)."""
    if not records:
        return None
    generator = random.Random(SEED)
    values = []
    for _ in range(BOOTSTRAP):
        value = metric([records[generator.randrange(len(records))] for _ in records])
        if value is not None:
            values.append(value)
    if not values:
        return None
    values.sort()
    return round(values[int(0.025 * (len(values) - 1))], 4), round(values[int(0.975 * (len(values) - 1))], 4)


def confidence_summary(records: Sequence[Record]) -> dict[str, Any]:
    """How well one configuration's confidence separates and is calibrated on one split (None where it cannot be
    computed)."""
    kept = scored(records)
    summary: dict[str, Any] = {
        "auroc_near_miss": auroc(kept),
        "auroc_near_miss_ci": interval(kept, auroc),
        "calibration_error": calibration_error(kept),
        "calibration_error_ci": interval(kept, calibration_error),
    }
    for budget in BUDGETS:
        key = f"abstention_at_false_refusal_{budget:.2f}"
        summary[key] = abstention_at(kept, budget)
        summary[f"{key}_ci"] = interval(kept, functools.partial(abstention_at, budget=budget))
    return summary


def risk_summary(forced: Sequence[Record]) -> dict[str, Any]:
    """AURC (with its interval) and the risk-coverage points of forced answers ordered by confidence."""
    kept = scored(forced)
    return {"aurc": aurc(kept), "aurc_ci": interval(kept, aurc), "points": risk_coverage(kept)}
