"""Feature rows -> probabilities: the fitted linear models that rank evidence and decide abstention.

Three models: `sentence` (P(sentence answers) from lexical and embedding features, over every candidate), `rerank`
(optional: the same probability for the shortlist, from the sentence model's score and the trained reader's), and
`answerable` (P(question answerable) from the best candidates). They are logistic regressions fitted on the dev
split of eval/questions.jsonl (`qa fit`, in `qa.evaluation.fit`) and stored as plain JSON (`qa/ranker.json`):
feature names, the standardisation and the weights, so they can be read and checked by eye. Applying one is a dot
product.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import ModelError

DEFAULT_PATH = Path(__file__).resolve().parent / "ranker.json"
READER_PREFIX = "reader"  # features computed from the reader's scores are named "reader..."


@dataclass(frozen=True)
class LinearModel:
    """A standardised logistic regression: p = sigmoid(((x - mean) / scale) . coef + intercept)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def probabilities(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """P(label) for each row of named feature values."""
        if not rows:
            return np.zeros(0)
        matrix = np.array([[row[name] for name in self.features] for row in rows], dtype="float64")
        logits = ((matrix - self.mean) / self.scale) @ self.coef + self.intercept
        probabilities: np.ndarray = 1.0 / (1.0 + np.exp(-logits))
        return probabilities

    def contributions(self, row: Mapping[str, float]) -> dict[str, float]:
        """Each feature's share of the logit for one row (why the model decided as it did)."""
        values = np.array([row[name] for name in self.features], dtype="float64")
        parts = (values - self.mean) / self.scale * self.coef
        return {name: round(float(part), 3) for name, part in zip(self.features, parts, strict=True)}

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "coef": [round(float(v), 6) for v in self.coef],
            "intercept": round(self.intercept, 6),
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any], expected: Sequence[str], *, where: str) -> LinearModel:
        features = tuple(record["features"])
        if features != tuple(expected):
            raise ModelError(
                f"{where} was fitted on features {list(features)}, but this version computes {list(expected)}: "
                "refit it with `qa fit` (make fit)."
            )
        arrays = [np.asarray(record[key], dtype="float64") for key in ("mean", "scale", "coef")]
        if any(a.shape != (len(features),) for a in arrays) or not np.all(arrays[1] > 0):
            raise ModelError(f"{where} is malformed (array sizes or scales): refit it with `qa fit`.")
        return cls(features, arrays[0], arrays[1], arrays[2], float(record["intercept"]))


@dataclass(frozen=True)
class Ranker:
    """The evidence ranker (P(sentence answers)) and the abstention decision (P(question answerable))."""

    sentence: LinearModel
    answerable: LinearModel
    threshold: float  # answer when P(answerable) >= threshold (chosen on dev for refusal F1)
    meta: Mapping[str, Any]
    confident: float | None = None  # below this (and at or above `threshold`) answers are hedges; None: no hedging
    rerank: LinearModel | None = None  # the shortlist re-ranked with the reader's score; None: no reader

    @classmethod
    def load(
        cls,
        path: Path | None,
        sentence_features: Sequence[str],
        question_features: Sequence[str],
        rerank_features: Sequence[str] = (),
    ) -> Ranker:
        path = path or DEFAULT_PATH
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            rerank = record.get("rerank")
            return cls(
                LinearModel.from_json(record["sentence"], sentence_features, where=str(path)),
                LinearModel.from_json(record["answerable"], question_features, where=str(path)),
                float(record["threshold"]),
                record.get("meta", {}),
                None if record.get("confident") is None else float(record["confident"]),
                None if rerank is None else LinearModel.from_json(rerank, rerank_features, where=str(path)),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(
                f"Cannot read the evidence ranker {path} ({exc}): restore it from git or run `qa fit`."
            ) from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": dict(self.meta),
            "threshold": round(self.threshold, 4),
            **({} if self.confident is None else {"confident": round(self.confident, 4)}),
            "sentence": self.sentence.to_json(),
            **({} if self.rerank is None else {"rerank": self.rerank.to_json()}),
            "answerable": self.answerable.to_json(),
        }

    @property
    def reads(self) -> bool:
        """Whether these models read the reader's scores (then the reader must be loaded beside them)."""
        uses = [
            name
            for name, weight in zip(self.answerable.features, self.answerable.coef, strict=True)
            if name.startswith(READER_PREFIX) and weight != 0
        ]
        return self.rerank is not None or bool(uses)


def logit(probability: float) -> float:
    clipped = min(max(probability, 1e-6), 1 - 1e-6)
    return math.log(clipped / (1 - clipped))
