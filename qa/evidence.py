"""Retrieval + index -> scored evidence sentences, and the rule that decides whether they answer the question.

A sentence's score mixes its embedding similarity to the question with how much of the question's
IDF-weighted content it contains. Abstention needs more than one threshold (MODELS.md: dense scores of
answerable and unanswerable questions overlap), so it also checks coverage and what the question asks for.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from qa.config import Settings
from qa.retrieve import Retrieval, tokenize
from qa.store import Index

QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how does do did has have had can could would should may might "
    "say said says tell told according article articles report reported reports mention mentioned describe "
    "described state stated claim claimed many much give gave given name named any about was were been being "
    "its his her from than also".split()
)
NUMBER = re.compile(r"\d")
MONTHS = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\b", re.IGNORECASE)
ASKS_NUMBER = re.compile(r"\b(?:how (?:many|much|long|old)|what (?:number|percentage|share|amount|figure|toll)"
                         r"|death toll|how large)\b", re.IGNORECASE)
ASKS_DATE = re.compile(r"\b(?:when|what (?:year|date|day|month)|which (?:year|date|day|month))\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Evidence:
    sentence_id: int
    source: str
    start: int
    end: int
    text: str
    score: float
    dense: float
    coverage: float


@dataclass(frozen=True, slots=True)
class Verdict:
    answerable: bool
    reason: str


def normalize(token: str) -> str:
    """A crude stem, enough to match plural and possessive forms ("Uighurs" ~ "uighur")."""
    token = token.lower().removesuffix("’s").removesuffix("'s")
    for suffix in ("ies", "es", "s"):
        if len(token) > 4 and token.endswith(suffix) and not token.endswith("ss"):
            return token[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return token


def terms(text: str) -> set[str]:
    return {normalize(t) for t in tokenize([text])[0] if normalize(t) not in QUESTION_WORDS}


class EvidencePicker:
    """Scores the sentences of retrieved chunks (plus the nearest sentences overall) against a question."""

    def __init__(self, index: Index, settings: Settings) -> None:
        self.index = index
        self.settings = settings
        self.sentence_terms = [terms(index.text(s)) for s in index.sentences]
        frequency: Counter[str] = Counter(t for found in self.sentence_terms for t in found)
        total = max(len(index.sentences), 1)
        self.idf = {t: math.log(1 + total / n) for t, n in frequency.items()}
        self.unknown_idf = math.log(1 + total)  # a term the corpus never uses weighs as much as the rarest

    def pick(self, question: str, retrieval: Retrieval, *, limit: int) -> list[Evidence]:
        """The best `limit` citable sentences, best first, with distinct texts."""
        wanted = terms(question)
        candidates = self._candidates(retrieval)
        vectors = np.stack([self.index.sentence_vectors.reconstruct(i) for i in candidates]) if candidates else None
        scored: list[Evidence] = []
        for row, sentence_id in enumerate(candidates):
            sentence = self.index.sentences[sentence_id]
            dense = float(vectors[row] @ retrieval.query_vector) if vectors is not None else 0.0
            coverage = self.coverage(wanted, self.sentence_terms[sentence_id])
            score = 0.5 * dense + 0.5 * coverage
            scored.append(Evidence(sentence_id, sentence.source, sentence.start, sentence.end,
                                   self.index.text(sentence), round(score, 4), round(dense, 4), round(coverage, 4)))
        scored.sort(key=lambda e: (-e.score, e.sentence_id))
        seen: set[str] = set()
        unique = [e for e in scored if not (e.text in seen or seen.add(e.text))]  # type: ignore[func-returns-value]
        return unique[:limit]

    def coverage(self, wanted: set[str], found: set[str]) -> float:
        """IDF-weighted share of the question's terms present in `found`."""
        if not wanted:
            return 0.0
        weights = {t: self.idf.get(t, self.unknown_idf) for t in wanted}
        return sum(w for t, w in weights.items() if t in found) / sum(weights.values())

    def judge(self, question: str, evidence: list[Evidence]) -> Verdict:
        """Whether `evidence` answers `question` (the abstention rule; thresholds live in Settings)."""
        settings = self.settings
        if not evidence:
            return Verdict(False, "no citable sentence was retrieved")
        best = evidence[0]
        if best.score < settings.min_evidence_score:
            return Verdict(False, f"best evidence scores {best.score:.2f} < {settings.min_evidence_score:.2f}")
        if best.dense < settings.min_dense_score:
            return Verdict(False, f"best evidence similarity {best.dense:.2f} < {settings.min_dense_score:.2f}")
        joint = self.coverage(terms(question), set().union(*(self.sentence_terms[e.sentence_id] for e in evidence)))
        if joint < settings.min_coverage:
            return Verdict(False, f"evidence covers {joint:.0%} of the question's terms")
        texts = " ".join(e.text for e in evidence)
        if ASKS_NUMBER.search(question) and not NUMBER.search(texts):
            return Verdict(False, "the question asks for a number and the evidence holds none")
        if ASKS_DATE.search(question) and not (NUMBER.search(texts) or MONTHS.search(texts)):
            return Verdict(False, "the question asks for a date and the evidence holds none")
        return Verdict(True, "evidence is strong enough")

    def _candidates(self, retrieval: Retrieval) -> list[int]:
        ids: dict[int, None] = {}
        for hit in retrieval.hits:
            ids.update(dict.fromkeys(self.index.chunks[hit.chunk_id].sentence_ids))
        count = min(2 * self.settings.fetch_k, len(self.index.sentences))
        _, nearest = self.index.sentence_vectors.search(retrieval.query_vector[None, :], count)
        ids.update(dict.fromkeys(int(i) for i in nearest[0] if i >= 0))
        return [i for i in ids if self.index.sentences[i].kind == "sentence"]
