"""qa.evaluation.fit's operating points: the abstain threshold and the hedge band's upper edge."""

from __future__ import annotations

import numpy as np
import pytest

from qa.errors import EvalSetError, ModelError
from qa.evaluation.confidence import expected_calibration_error
from qa.evaluation.fit import best_threshold, calibrate, confident_at


def test_confident_threshold_keeps_false_refusal_within_the_budget() -> None:
    answerable = np.array([1] * 10 + [0] * 10)
    probabilities = np.array([0.30, 0.45, 0.55, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95] + [0.1] * 5 + [0.5] * 5)
    confident = confident_at(probabilities, answerable, 0.10)
    # one answerable question in ten may fall below it: 0.30 may, 0.45 may not
    assert 0.30 < confident <= 0.45
    assert np.mean(probabilities[answerable == 1] < confident) <= 0.10
    assert confident_at(probabilities, answerable, 0.0) == pytest.approx(0.30)
    assert confident_at(probabilities, answerable, 0.0) <= confident <= confident_at(probabilities, answerable, 0.5)


def test_the_abstain_threshold_separates_clean_data() -> None:
    answerable = np.array([1, 1, 1, 0, 0, 0])
    threshold, f1 = best_threshold(np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.3]), answerable)
    assert 0.3 < threshold <= 0.7 and f1 == pytest.approx(1.0)


def test_calibration_keeps_every_verdict_and_fixes_underconfidence() -> None:
    from qa.decision import QUESTION_FEATURES, load_ranker

    ranker = load_ranker()
    rng = np.random.default_rng(0)
    rows = [{name: float(rng.normal(m, s)) for name, m, s in zip(QUESTION_FEATURES, ranker.answerable.mean,
                                                                 ranker.answerable.scale, strict=True)}
            for _ in range(2000)]  # fmt: skip
    before = ranker.answerable.probabilities(rows)
    # underconfident on purpose: questions answerable far more often than their P(answerable) says
    truth = 1 / (1 + np.exp(-(1.5 * np.log(before / (1 - before)) + 1.0)))
    answerable = (rng.random(len(rows)) < truth).astype(int)
    calibrated = calibrate(ranker, before, answerable)
    after = calibrated.answerable.probabilities(rows)
    assert np.array_equal(before >= ranker.threshold, after >= calibrated.threshold)  # the same verdicts
    assert np.array_equal(np.argsort(before, kind="stable"), np.argsort(after, kind="stable"))  # the same order
    assert (
        expected_calibration_error(list(after), list(answerable))
        < expected_calibration_error(list(before), list(answerable)) / 2
    )
    assert calibrated.meta["calibration"]["calibration_error_after"] < 0.1
    assert calibrated.sentence.to_json() == ranker.sentence.to_json()  # the evidence ranker is untouched
    with pytest.raises(ModelError, match="does not rank"):
        calibrate(ranker, before, 1 - (before > np.median(before)).astype(int))
    with pytest.raises(EvalSetError, match="only one kind"):
        calibrate(ranker, before, np.ones(len(before), dtype=int))
