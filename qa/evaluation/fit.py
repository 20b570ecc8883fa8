"""Dev questions with gold quotes -> the evidence ranker, its re-ranking by the reader, and the abstention decision
(`qa fit`, `make fit`).

Every candidate sentence of a dev question is labelled by whether it overlaps a gold quote; the sentence model is a
logistic regression over the picker's features. Its out-of-fold probabilities (grouped by question, so a question
never scores its own sentences) pick each question's shortlist as answering would; the trained reader scores it,
and the re-ranking model is a regression over both scores (out of fold again). The re-ranked candidates feed the
question model, labelled answerable or not, and its decision threshold is the one with the best refusal F1
(Trust-Score's F1_RG) on out-of-fold predictions. Only the dev split is read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa import Assistant, Progress
from qa.decision import (
    DEFAULT_PATH,
    RERANK_FEATURES,
    SHORTLIST,
    LinearModel,
    Ranker,
    SentenceScorer,
    logit,
    rerank,
)
from qa.errors import EvalSetError, ModelError, require
from qa.evaluation.confidence import expected_calibration_error
from qa.evaluation.metrics import overlap
from qa.evaluation.questions import Question
from qa.types import Evidence

logger = logging.getLogger(__name__)

FOLDS = 5
# The direction each feature must push P(answers) / P(answerable). A fitted weight against its direction is a
# quirk of the dev questions (e.g. near-miss unanswerable questions were written to share the articles' words, so
# on dev high coverage "predicts" unanswerable), not a rule that holds on another corpus: such a feature is dropped
# (weight 0) and the model refitted. Features without an entry may take either sign.
SIGNS = {
    "dense": 1, "dense_gap": 1, "dense_rank": 1, "coverage": 1, "coverage_gap": 1, "coverage_rank": 1,
    "coverage_window": 1, "coverage_article": 1, "bm25": 1, "chunk_rank": 1, "focus": 1, "type_missing": -1,
    "logit1": 1, "dense_max": 1, "coverage_top": 1, "coverage_joint": 1, "focus_top": 1,
    "unknown_terms": -1, "unknown_names": -1, "type_missing_top": -1,
    "ranker_logit": 1, "reader_logit": 1, "reader_max": 1, "reader_top": 1,
}  # fmt: skip
REGULARISATION = 0.5  # scikit-learn's C: smaller is simpler; few hundred positives, a dozen features
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.01), 2)
CANDIDATES = 10_000  # every candidate, not only the best few
CALIBRATION_C = 1.0  # scikit-learn's C for the two calibration parameters


@dataclass
class Collected:
    """Each dev question's candidates (features, gold labels) and whether it is answerable."""

    questions: list[Question]
    evidence: list[list[Evidence]]  # per question, every candidate
    labels: list[list[int]]  # per question, per candidate: 1 when it overlaps a gold quote


def collect(assistant: Assistant, questions: Sequence[Question], progress: Progress | None = None) -> Collected:
    """Candidates and labels for `questions` (retrieval and features as the assistant computes them)."""
    found = Collected([], [], [])
    for number, question in enumerate(questions, start=1):
        candidates = assistant.candidates(question.question, limit=CANDIDATES)
        found.questions.append(question)
        found.evidence.append(candidates)
        found.labels.append([int(any(_on_gold(e, gold) for gold in question.evidence)) for e in candidates])
        if progress:
            progress(number, len(questions))
    return found


def fit(
    assistant: Assistant,
    questions: Sequence[Question],
    *,
    reader: SentenceScorer | None = None,
    without: Sequence[str] = (),
    hedge_budget: float | None = None,
    progress: Progress | None = None,
) -> Ranker:
    """Fit the models on `questions` (dev only) and return the ranker to save. With `reader`, the shortlist is
    re-ranked with its scores and the decision reads them too; features named in `without` get no weight. With
    `hedge_budget`, answers below the confident threshold (`confident_at`) are hedges."""
    linear = require("sklearn.linear_model", "pip install 'qa[eval]'")
    started = time.perf_counter()
    data = collect(assistant, questions, progress)
    names = tuple(assistant.ranker.sentence.features)
    missing = {n for group in data.evidence for e in group[:1] for n in names if n not in e.features}
    if missing:
        raise ValueError(f"candidates lack the ranker's features {sorted(missing)}")
    rows = [[e.features[n] for n in names] for group in data.evidence for e in group]
    labels = [label for group in data.labels for label in group]
    groups = [q for q, group in enumerate(data.evidence) for _ in group]
    sentence = _logistic(linear, np.array(rows), np.array(labels), names, without)
    out_of_fold = _out_of_fold(linear, np.array(rows), np.array(labels), np.array(groups), names, without)
    ranked, ranked_labels = [], []
    top_hits: dict[str, list[int]] = {"ranker": [], "reranked": []}
    start = 0
    for question, group, labelled in zip(data.questions, data.evidence, data.labels, strict=True):
        scores = out_of_fold[start : start + len(group)]
        start += len(group)
        order = sorted(range(len(group)), key=lambda k: (-scores[k], group[k].sentence_id))
        evidence = [dataclasses.replace(group[k], score=round(float(scores[k]), 4)) for k in order]
        if reader is not None and evidence:
            read = reader.score(question.question, [e.text for e in evidence[:SHORTLIST]])
            evidence = rerank(evidence, read, None)  # the reader's features; the order is the sentence model's
        ranked.append(evidence)
        ranked_labels.append([labelled[k] for k in order])
        if any(labelled):
            top_hits["ranker"].append(labelled[order[0]])
    reranker = None
    if reader is not None:
        reranker, ranked, ranked_labels = _fit_rerank(linear, ranked, ranked_labels, without)
        top_hits["reranked"] = [labels_[0] for labels_ in ranked_labels if any(labels_)]
    question_rows, answerable = [], []
    for question, evidence in zip(data.questions, ranked, strict=True):
        row = assistant.decision.question_features(question.question, evidence)
        question_rows.append([row[n] for n in assistant.ranker.answerable.features])
        answerable.append(int(question.type != "unanswerable"))
    q_matrix, q_labels = np.array(question_rows), np.array(answerable)
    q_names = tuple(assistant.ranker.answerable.features)
    decision = _logistic(linear, q_matrix, q_labels, q_names, without)
    q_out_of_fold = _out_of_fold(linear, q_matrix, q_labels, np.arange(len(q_labels)), q_names, without)
    threshold, f1 = best_threshold(q_out_of_fold, q_labels)
    confident = None if hedge_budget is None else confident_at(q_out_of_fold, q_labels, hedge_budget)
    if confident is not None and confident <= threshold:
        confident = None  # the band would be empty: no hedges
    meta = {
        "fitted_on": "dev split of eval/questions.jsonl",
        "questions": len(data.questions),
        "candidates": len(labels),
        "positive_candidates": int(sum(labels)),
        "answerable_questions": int(q_labels.sum()),
        "reader": reader is not None,
        "without": sorted(without),
        "out_of_fold_refusal_f1_rg": round(f1, 4),
        **_operating_point("out_of_fold_at_threshold", q_out_of_fold, q_labels, threshold),
        **(
            {}
            if confident is None
            else _operating_point("out_of_fold_at_confident", q_out_of_fold, q_labels, confident)
        ),
        "hedge_budget": hedge_budget,
        "out_of_fold_auroc_answerable": round(_auroc(q_out_of_fold, q_labels), 4),
        "out_of_fold_top_candidate_on_gold": _mean(top_hits["reranked"] or top_hits["ranker"]),
        "out_of_fold_top_candidate_on_gold_without_reader": _mean(top_hits["ranker"]),
        "regularisation_C": REGULARISATION,
        "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    fitted = Ranker(
        _model(names, sentence),
        _model(q_names, decision),
        threshold,
        meta,
        confident,
        rerank=reranker,
    )
    return calibrate(fitted, q_out_of_fold, q_labels)


def calibrate(ranker: Ranker, probabilities: np.ndarray, answerable: np.ndarray) -> Ranker:
    """The ranker with its P(answerable) Platt-scaled: P' = sigmoid(a * logit(P) + b), a and b fitted on the dev
    questions' `probabilities` against whether they are `answerable`. The decision model's weights and intercept and
    its thresholds move with it, so every verdict stays what it was (the map is monotone) while the confidence shown
    to users means what it says. The sign-constrained, regularised fit is ranked well but underconfident: most
    answerable questions scored 0.5-0.7."""
    linear = require("sklearn.linear_model", "pip install 'qa[eval]'")
    if len(set(answerable.tolist())) < 2:
        raise EvalSetError(
            "Calibration needs answerable and unanswerable dev questions; the question set has only one kind: "
            "add the other kind to its dev split."
        )
    logits = np.array([logit(float(p)) for p in probabilities]).reshape(-1, 1)
    platt = linear.LogisticRegression(C=CALIBRATION_C).fit(logits, answerable.astype(int))
    slope, shift = float(platt.coef_[0][0]), float(platt.intercept_[0])
    if slope <= 0:
        raise ModelError(
            f"P(answerable) does not rank the dev questions (calibration slope {slope:.3f}), so it cannot be "
            "calibrated: refit the models with `qa fit`."
        )
    model = ranker.answerable

    def moved(threshold: float) -> float:
        return float(1.0 / (1.0 + np.exp(-(slope * logit(threshold) + shift))))

    calibrated = LinearModel(
        model.features, model.mean, model.scale, model.coef * slope, model.intercept * slope + shift
    )
    before = ranker.meta.get("calibration", {})
    meta = {
        **ranker.meta,
        "calibration": {
            "method": "Platt scaling on the dev questions",
            "questions": len(answerable),
            "slope": round(slope, 4),
            "shift": round(shift, 4),
            "calibration_error_before": round(expected_calibration_error(list(probabilities), list(answerable)), 4),
            "calibration_error_after": round(
                expected_calibration_error([moved(float(p)) for p in probabilities], list(answerable)), 4
            ),
            **({"earlier": before} if before else {}),
        },
    }
    confident = None if ranker.confident is None else moved(ranker.confident)
    return dataclasses.replace(
        ranker, answerable=calibrated, threshold=moved(ranker.threshold), confident=confident, meta=meta
    )


def recalibrate(assistant: Assistant, questions: Sequence[Question], progress: Progress | None = None) -> Ranker:
    """The assistant's ranker calibrated (`calibrate`) on the P(answerable) it gives `questions` (dev only) as
    answering computes it; verdicts made by a rule, not the model (no citable sentence, only unknown names), are
    left out. Nothing else is refitted: `qa fit --calibrate-only`."""
    probabilities, answerable = [], []
    for number, question in enumerate(questions, start=1):
        evidence = assistant.candidates(question.question, limit=assistant.settings.evidence_candidates)
        verdict = assistant.decision.judge(question.question, evidence)
        if verdict.features:
            probabilities.append(verdict.probability)
            answerable.append(int(question.type != "unanswerable"))
        if progress:
            progress(number, len(questions))
    return calibrate(assistant.ranker, np.array(probabilities), np.array(answerable))


def confident_at(probabilities: np.ndarray, answerable: np.ndarray, budget: float) -> float:
    """The highest threshold whose false refusal (answerable questions below it) stays within `budget`: below it an
    answer is a hedge, scored as an abstention."""
    best = float(THRESHOLDS[0])
    for threshold in THRESHOLDS:
        refused = float(np.mean(probabilities[answerable == 1] < threshold))
        if refused <= budget + 1e-9:
            best = float(threshold)
    return best


def _operating_point(
    name: str, probabilities: np.ndarray, answerable: np.ndarray, threshold: float
) -> dict[str, float]:
    """False refusal and abstention on unanswerable questions when refusing below `threshold`."""
    refused = probabilities < threshold
    return {
        f"{name}_false_refusal": round(float(np.mean(refused[answerable == 1])), 4),
        f"{name}_abstention_unanswerable": round(float(np.mean(refused[answerable == 0])), 4),
    }


def _fit_rerank(
    linear: Any, ranked: list[list[Evidence]], labels: list[list[int]], without: Sequence[str]
) -> tuple[LinearModel, list[list[Evidence]], list[list[int]]]:
    """The re-ranking model (fitted on the candidates the reader read), and each question's candidates re-scored
    by it out of fold and re-sorted, with their labels in the new order."""
    rows, flat_labels, groups, fitted_on = [], [], [], []
    for number, (evidence, labelled) in enumerate(zip(ranked, labels, strict=True)):
        for item, label in zip(evidence, labelled, strict=True):
            rows.append([logit(item.features["stage1"]), logit(item.features["reader"])])
            flat_labels.append(label)
            groups.append(number)
            fitted_on.append(bool(item.features["read"]))
    matrix, targets, mask = np.array(rows), np.array(flat_labels), np.array(fitted_on)
    model = _model(RERANK_FEATURES, _logistic(linear, matrix[mask], targets[mask], RERANK_FEATURES, without))
    predicted = _out_of_fold(linear, matrix, targets, np.array(groups), RERANK_FEATURES, without, fit_on=mask)
    rescored, relabelled, start = [], [], 0
    for evidence, labelled in zip(ranked, labels, strict=True):
        scores = predicted[start : start + len(evidence)]
        start += len(evidence)
        order = sorted(range(len(evidence)), key=lambda k: (-scores[k], evidence[k].sentence_id))
        rescored.append([dataclasses.replace(evidence[k], score=round(float(scores[k]), 4)) for k in order])
        relabelled.append([labelled[k] for k in order])
    return model, rescored, relabelled


def _mean(values: Sequence[int]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    positives, negatives = scores[labels == 1], scores[labels == 0]
    if not len(positives) or not len(negatives):
        return float("nan")
    wins = (positives[:, None] > negatives[None, :]).sum() + 0.5 * (positives[:, None] == negatives[None, :]).sum()
    return float(wins / (len(positives) * len(negatives)))


def best_threshold(probabilities: np.ndarray, answerable: np.ndarray) -> tuple[float, float]:
    """The threshold (answer when p >= t) with the best macro F1 of refusing and answering; ties: the lowest."""
    best = (0.5, -1.0)
    for threshold in THRESHOLDS:
        score = refusal_f1_rg(probabilities >= threshold, answerable.astype(bool))
        if score > best[1] + 1e-9:
            best = (float(threshold), score)
    return best


def refusal_f1_rg(answered: np.ndarray, answerable: np.ndarray) -> float:
    def f1(predicted: np.ndarray, actual: np.ndarray) -> float:
        true = float(np.sum(predicted & actual))
        return 0.0 if true == 0 else 2 * true / (float(predicted.sum()) + float(actual.sum()))

    return (f1(answered, answerable) + f1(~answered, ~answerable)) / 2


def _on_gold(evidence: Evidence, gold: Any) -> bool:
    return evidence.source == gold.source and overlap(evidence.start, evidence.end, gold.start, gold.end) > 0


def _logistic(
    linear: Any, rows: np.ndarray, labels: np.ndarray, names: Sequence[str], without: Sequence[str] = ()
) -> Any:
    """(mean, scale, weights, intercept) of a regression on standardised rows whose every weight points in its
    feature's direction (SIGNS): features fitted against it are dropped, then the rest refitted. Features named in
    `without` get no weight."""
    mean, scale = rows.mean(axis=0), rows.std(axis=0)
    scale[scale < 1e-9] = 1.0
    standard = (rows - mean) / scale
    kept = [i for i, name in enumerate(names) if name not in without]
    while True:
        model = linear.LogisticRegression(C=REGULARISATION, max_iter=2000, class_weight="balanced")
        model.fit(standard[:, kept], labels)
        wrong = [i for i, weight in zip(kept, model.coef_[0], strict=True) if SIGNS.get(names[i], 0) * weight < 0]
        if not wrong or len(wrong) == len(kept):
            break
        kept = [i for i in kept if i not in wrong]
    weights = np.zeros(len(names))
    weights[kept] = model.coef_[0]
    return mean, scale, weights, float(model.intercept_[0])


def _out_of_fold(
    linear: Any,
    rows: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    names: Sequence[str],
    without: Sequence[str] = (),
    *,
    fit_on: np.ndarray | None = None,
) -> np.ndarray:
    """Each row's probability from a model fitted without its group (its question), on the rows `fit_on` only
    (default: all)."""
    unique = np.unique(groups)
    fold_of = {g: i % FOLDS for i, g in enumerate(np.random.default_rng(0).permutation(unique))}
    folds = np.array([fold_of[g] for g in groups])
    usable = np.ones(len(rows), dtype=bool) if fit_on is None else fit_on
    predicted = np.zeros(len(rows))
    for fold in range(FOLDS):
        train, test = (folds != fold) & usable, folds == fold
        if not test.any() or len(set(labels[train])) < 2:
            continue
        mean, scale, weights, intercept = _logistic(linear, rows[train], labels[train], names, without)
        predicted[test] = 1 / (1 + np.exp(-(((rows[test] - mean) / scale) @ weights + intercept)))
    return predicted


def _model(names: tuple[str, ...], fitted: Any) -> LinearModel:
    mean, scale, weights, intercept = fitted
    return LinearModel(names, mean, scale, weights.astype("float64"), intercept)


def save(ranker: Ranker, path: Path | None = None) -> Path:
    """Write the ranker as JSON (atomically: a reader never sees half a file); the path written."""
    target = path or DEFAULT_PATH
    staged = target.with_name(target.name + ".partial")
    staged.write_text(json.dumps(ranker.to_json(), indent=1) + "\n", encoding="utf-8")
    os.replace(staged, target)
    return target
