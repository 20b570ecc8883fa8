"""The confidence metrics (`qa.evaluation.confidence`), worked out by hand on a few records."""

from __future__ import annotations

import dataclasses

import pytest

from qa.evaluation.confidence import (
    abstention_at,
    aurc,
    auroc,
    calibration_error,
    confidence_summary,
    interval,
    risk_coverage,
)
from qa.evaluation.metrics import Record

BASE = Record("extractive", "q", "single", "test", "?", "a", False, True, (), (), None, 0, 0, 0, None, 0, 1.0, None)


def record(kind: str, confidence: float | None, *, success: bool = True, far: bool = False) -> Record:
    return dataclasses.replace(BASE, type=kind, confidence=confidence, success=success, set="off-topic" if far else "")


def test_auroc_counts_pairs_and_leaves_far_misses_out() -> None:
    records = [record("single", 0.9), record("single", 0.4), record("unanswerable", 0.5), record("unanswerable", 0.1)]
    # answerable 0.9 beats both; 0.4 beats 0.1 only: 3 of 4 pairs
    assert auroc(records) == 0.75
    assert auroc([*records, record("unanswerable", 0.99, far=True)]) == 0.75  # a far miss is no near miss
    assert auroc([record("single", 0.5), record("unanswerable", 0.5)]) == 0.5  # a tie counts half
    assert auroc([record("single", 0.5)]) is None


def test_calibration_error_by_hand() -> None:
    # bin [0.8, 0.9): two answerable at 0.8 -> |0.8 - 1| = 0.2; bin [0.2, 0.3): one unanswerable at 0.2 -> 0.2
    records = [record("single", 0.8), record("single", 0.8), record("unanswerable", 0.2)]
    assert calibration_error(records) == pytest.approx(0.2)
    assert calibration_error([record("single", 1.0)]) == 0.0


def test_abstention_within_a_false_refusal_budget() -> None:
    answerable = [record("single", c) for c in (0.2, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9)]
    unanswerable = [record("unanswerable", c) for c in (0.1, 0.3, 0.55, 0.95)]
    # budget 0.10 of 10 answerable: one may be refused -> threshold 0.5 refuses 0.2; unanswerable below 0.5: 2 of 4
    assert abstention_at([*answerable, *unanswerable], 0.10) == 0.5
    # budget 0.05: none may be refused -> threshold 0.2; unanswerable below it: 1 of 4
    assert abstention_at([*answerable, *unanswerable], 0.05) == 0.25


def test_risk_coverage_and_its_area() -> None:
    forced = [record("single", 0.9), record("unanswerable", 0.8, success=False), record("single", 0.3, success=False)]
    points = risk_coverage(forced)
    assert [p["coverage"] for p in points] == [0.3333, 0.6667, 1.0]
    assert [p["risk"] for p in points] == [0.0, 0.5, 0.6667]
    assert aurc(forced) == pytest.approx((0.0 + 0.5 + 0.6667) / 3, abs=1e-4)


def test_intervals_are_seeded_and_contain_the_value() -> None:
    records = [record("single", 0.9), record("single", 0.6), record("unanswerable", 0.5), record("unanswerable", 0.2)]
    first, second = interval(records, auroc), interval(records, auroc)
    assert first == second and first is not None and first[0] <= 1.0 <= first[1]
    summary = confidence_summary(records)
    assert summary["auroc_near_miss"] == 1.0 and summary["calibration_error"] is not None
    assert confidence_summary([record("single", None)])["auroc_near_miss"] is None  # no confidence: nothing to say
