"""Retrieval + index -> scored evidence sentences, and the rule that decides whether they answer the question.

A sentence's score mixes its embedding similarity to the question with how much of the question's
IDF-weighted content it contains. Abstention needs more than one threshold (MODELS.md: dense scores of
answerable and unanswerable questions overlap), so it also checks coverage and what the question asks for.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from qa.config import Settings
from qa.retrieve import Retrieval
from qa.store import Store
from qa.text import (
    ASKS_DATE,
    ASKS_NUMBER,
    ASKS_PERSON,
    ASKS_YEAR,
    DIGIT,
    FULL_NAME,
    MONTH,
    QUESTION_WORDS,
    YEAR,
    has_quantity,
    names_someone,
    stem,
    terms,
    tokenize,
)

# A sentence covering less than this share of the question's terms is near the subject, not on it: it need not
# hold what the question asks for (a count, a name).
RELEVANT_COVERAGE = 0.2
# A sentence's score: this much embedding similarity, the rest IDF-weighted coverage of the question.
DENSE_WEIGHT = 0.5
# Credit for a question term found only elsewhere in the sentence's article (its title included).
ARTICLE_CREDIT = 0.5


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


class EvidencePicker:
    """Scores the sentences of retrieved chunks (plus the nearest sentences overall) against a question."""

    def __init__(self, index: Store, settings: Settings) -> None:
        self.index = index
        self.settings = settings
        # one batched call: several times faster than one call per sentence
        tokens = tokenize([index.text(s) for s in index.sentences]) if index.sentences else []
        self.sentence_terms = [{stem(t) for t in found} - QUESTION_WORDS for found in tokens]
        # Terms of a whole article (its title included): partial credit for naming the right article.
        self.document_terms: dict[str, set[str]] = {s: terms(d.title) for s, d in index.documents.items()}
        for sentence, found in zip(index.sentences, self.sentence_terms, strict=True):
            self.document_terms[sentence.source] |= found
        frequency: Counter[str] = Counter(t for found in self.sentence_terms for t in found)
        total = max(len(index.sentences), 1)
        self.idf = {t: math.log(1 + total / n) for t, n in frequency.items()}
        self.unknown_idf = math.log(1 + total)  # a term the corpus never uses weighs as much as the rarest

    def pick(self, question: str, retrieval: Retrieval, *, limit: int) -> list[Evidence]:
        """The best `limit` citable sentences, best first, with distinct texts."""
        wanted = terms(question)
        candidates = self._candidates(retrieval)
        vectors = self.index.vectors("sentences", candidates) if candidates else None
        scored: list[Evidence] = []
        for row, sentence_id in enumerate(candidates):
            sentence = self.index.sentences[sentence_id]
            dense = float(vectors[row] @ retrieval.query_vector) if vectors is not None else 0.0
            coverage = self.coverage(wanted, self.sentence_terms[sentence_id], self.document_terms[sentence.source])
            score = DENSE_WEIGHT * dense + (1 - DENSE_WEIGHT) * coverage
            scored.append(
                Evidence(
                    sentence_id,
                    sentence.source,
                    sentence.start,
                    sentence.end,
                    self.index.text(sentence),
                    round(score, 4),
                    round(dense, 4),
                    round(coverage, 4),
                )
            )
        scored.sort(key=lambda e: (-e.score, e.sentence_id))
        seen: set[str] = set()
        unique = [e for e in scored if not (e.text in seen or seen.add(e.text))]  # type: ignore[func-returns-value]
        return unique[:limit]

    def coverage(self, wanted: set[str], found: set[str], context: set[str] = frozenset()) -> float:  # type: ignore[assignment]
        """IDF-weighted share of the question's terms present in `found` (half credit for those only in `context`)."""
        if not wanted:
            return 0.0
        weights = {t: self.idf.get(t, self.unknown_idf) for t in wanted}
        credit = sum(w if t in found else ARTICLE_CREDIT * w if t in context else 0.0 for t, w in weights.items())
        return credit / sum(weights.values())

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
        top = evidence[: settings.evidence_sentences]
        joint = self.coverage(
            terms(question),
            set().union(*(self.sentence_terms[e.sentence_id] for e in top)),
            set().union(*(self.document_terms[e.source] for e in top)),
        )
        if joint < settings.min_coverage:
            return Verdict(False, f"evidence covers {joint:.0%} of the question's terms")
        return self._answer_type(question, top)

    def _answer_type(self, question: str, top: list[Evidence]) -> Verdict:
        """What the question asks for (a count, a person, a year, a date) must be in the evidence."""
        texts = " ".join(e.text for e in top)
        wanted_terms = terms(question)
        # Sentences on the question's subject, not merely near it, must hold what is asked for.
        relevant = [
            e for e in top if self.coverage(wanted_terms, self.sentence_terms[e.sentence_id]) >= RELEVANT_COVERAGE
        ]
        if ASKS_NUMBER.search(question) and not any(has_quantity(e.text) for e in relevant):
            return Verdict(False, "the question asks for a quantity and no relevant evidence sentence gives one")
        asks_person = ASKS_PERSON.match(question)
        # "Who is Wang Yi?" names its person already: any relevant sentence may answer it
        if asks_person and not FULL_NAME.search(question, asks_person.end()):
            if not any(names_someone(e.text) for e in relevant):
                return Verdict(False, "the question asks who, and the evidence names nobody")
        if ASKS_YEAR.search(question) and not YEAR.search(texts):
            return Verdict(False, "the question asks for a year and the evidence holds none")
        if ASKS_DATE.search(question) and not (DIGIT.search(texts) or MONTH.search(texts)):
            return Verdict(False, "the question asks for a date and the evidence holds none")
        return Verdict(True, "evidence is strong enough")

    def _candidates(self, retrieval: Retrieval) -> list[int]:
        ids: dict[int, None] = {}
        for hit in retrieval.hits:
            ids.update(dict.fromkeys(self.index.chunks[hit.chunk_id].sentence_ids))
        count = min(2 * self.settings.fetch_k, len(self.index.sentences))
        ids.update(dict.fromkeys(self.index.search("sentences", retrieval.query_vector, count)))
        return [i for i in ids if self.index.sentences[i].kind == "sentence"]
