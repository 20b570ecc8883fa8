"""Retrieval + index -> ranked evidence sentences: the candidates a question's answer may quote, best first.

Every citable sentence of the retrieved chunks (plus the sentences nearest the question overall) is a candidate.
Each gets a row of features (embedding similarity, IDF-weighted coverage of the question in the sentence, its
neighbours and its article, sentence BM25, the chunk's rank, whether it holds what the question asks for, ...);
a logistic regression fitted on the dev questions' gold quotes turns the row into P(sentence answers). The best few
(the shortlist) are then read by the trained cross-encoder (`qa.reader`), which reads question and sentence together,
and re-ranked by a second regression over both scores. Whether the best of them answer at all is the decision's
(`qa.decision`); the models live in `qa/ranker.json` (`qa fit`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from qa.config import Settings
from qa.conversation import FollowUp, QuoteFinder
from qa.ranker import LinearModel, logit
from qa.retrieve import Retrieval
from qa.store import Store
from qa.terms import TermStats
from qa.text import asks_for, compares, holds_type, terms
from qa.types import Evidence

logger = logging.getLogger(__name__)

SENTENCE_FEATURES = (
    "dense",
    "dense_gap",
    "dense_neighbour",
    "coverage",
    "coverage_gap",
    "coverage_window",
    "coverage_article",
    "bm25",
    "chunk_rank",
    "type_missing",
    "novelty",
    "length",
    "dense_rank",
    "coverage_rank",
    "focus",
)
OTHER_ARTICLE = 0.3  # a comparison quotes a second article's best sentence if it is at least this likely
RERANK_FEATURES = ("ranker_logit", "reader_logit")
SHORTLIST = 8  # candidates the reader scores: its cost grows with every pair (~8 ms a pair on 2 cores)


class SentenceScorer(Protocol):
    """What the picker needs of the reader (`qa.reader.Reader`): P(sentence answers question) per sentence."""

    def score(self, question: str, sentences: Sequence[str]) -> np.ndarray: ...


def rerank(evidence: list[Evidence], read: Sequence[float] | np.ndarray, model: LinearModel | None) -> list[Evidence]:
    """`evidence` (best first by the sentence model) with the reader's scores `read` of its first len(read) added as
    features: "reader" (its P(answers)), "read" (1: scored; 0: not, and given the lowest score read, as a candidate
    ranked below the shortlist is assumed no better) and "stage1" (the sentence model's score, after any move for
    the conversation). With `model` each is
    re-scored from both and the list re-sorted, best first; without, the order is kept."""
    if not evidence or not len(read):
        return evidence
    floor = float(min(read))
    updated = []
    for position, item in enumerate(evidence):
        reader = float(read[position]) if position < len(read) else floor
        features = {
            **item.features,
            "reader": round(reader, 4),
            "read": float(position < len(read)),
            "stage1": item.score,
        }
        score = item.score
        if model is not None:
            row = {"ranker_logit": logit(item.score), "reader_logit": logit(reader)}
            score = round(float(model.probabilities([row])[0]), 4)
        updated.append(dataclasses.replace(item, score=score, features=features))
    if model is not None:
        updated.sort(key=lambda e: (-e.score, e.sentence_id))
    return updated


class EvidencePicker:
    """Ranks the sentences of retrieved chunks (plus the nearest sentences overall) for a question."""

    def __init__(
        self,
        index: Store,
        settings: Settings,
        model: LinearModel,
        stats: TermStats,
        *,
        reader: SentenceScorer | None = None,
        reranker: LinearModel | None = None,
    ) -> None:
        self.index = index
        self.settings = settings
        self.model = model  # P(sentence answers), over SENTENCE_FEATURES
        self.stats = stats
        self.quotes = QuoteFinder(index, stats)
        self.reader = reader  # scores the shortlist (None: no reader, the sentence model's order stands)
        self.reranker = reranker  # P(sentence answers) over RERANK_FEATURES, for the shortlist the reader read

    def pick(
        self,
        question: str,
        retrieval: Retrieval,
        *,
        limit: int,
        follow_up: FollowUp | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[Evidence]:
        """The best `limit` citable sentences, most likely to answer first, with distinct texts.

        With `follow_up` (the question read in its conversation), sentences that earlier answers quoted lose most of
        their score unless they hold what the question newly asks (`qa.conversation`). With a reader, the best
        SHORTLIST are read and re-ranked (`rerank`); its time goes into `timings["reader_ms"]`.
        """
        candidates = self._candidates(retrieval)
        if not candidates:
            return []
        rows = self._features(question, retrieval, candidates)
        probabilities = self.model.probabilities(rows)
        scored = [
            Evidence(
                sentence_id,
                self.index.sentences[sentence_id].source,
                self.index.sentences[sentence_id].start,
                self.index.sentences[sentence_id].end,
                self.index.text(self.index.sentences[sentence_id]),
                round(float(probability), 4),
                round(row["dense"], 4),
                round(row["coverage"], 4),
                row,
            )
            for sentence_id, row, probability in zip(candidates, rows, probabilities, strict=True)
        ]
        if follow_up is not None and follow_up.asks_new:
            scored = self._in_conversation(scored, follow_up)
        scored.sort(key=lambda e: (-e.score, e.sentence_id))
        seen: set[str] = set()
        unique = [e for e in scored if not (e.text in seen or seen.add(e.text))]  # type: ignore[func-returns-value]
        if self.reader is not None:
            began = time.perf_counter()
            read = self.reader.score(question, [e.text for e in unique[:SHORTLIST]])
            unique = rerank(unique, read, self.reranker)
            if timings is not None:
                timings["reader_ms"] = round(1000 * (time.perf_counter() - began), 2)
        return unique[:limit]

    def _in_conversation(self, scored: list[Evidence], follow_up: FollowUp) -> list[Evidence]:
        """Scores moved for the conversation (`qa.conversation`); the ranker's own is kept as feature "ranker"."""
        moved = self.quotes.rescore({e.sentence_id: e.score for e in scored}, follow_up)
        return [
            e
            if moved[e.sentence_id] == e.score
            else dataclasses.replace(
                e, score=round(moved[e.sentence_id], 4), features={**e.features, "ranker": e.score}
            )
            for e in scored
        ]

    def _features(self, question: str, retrieval: Retrieval, candidates: list[int]) -> list[dict[str, float]]:
        index = self.index
        wanted = terms(question)
        stats = self.stats
        wanted_weights = {t: stats.weight(t) for t in wanted}
        asked = asks_for(question)
        focus = stats.focus_terms(wanted)
        ids = sorted(set(candidates) | {n for i in candidates for n in self._neighbours(i)})
        vectors = index.vectors("sentences", ids)  # one call: on PostgreSQL, one query for all of them
        dense = {i: float(vector @ retrieval.query_vector) for i, vector in zip(ids, vectors, strict=True)}
        lexical = stats.bm25_scores(question)
        chunk_rank: dict[int, int] = {}
        for rank, hit in enumerate(retrieval.hits):
            for sentence_id in index.chunks[hit.chunk_id].sentence_ids:
                chunk_rank.setdefault(sentence_id, rank)
        rows = []
        for i in candidates:
            sentence = index.sentences[i]
            found = stats.sentence_terms[i]
            window = found.union(*(stats.sentence_terms[n] for n in self._neighbours(i)))
            new_terms = found - wanted
            rows.append(
                {
                    "dense": dense[i],
                    "dense_neighbour": max((dense[n] for n in self._neighbours(i)), default=0.0),
                    "coverage": stats.coverage(wanted, found),
                    "coverage_window": stats.coverage(wanted, window),
                    "coverage_article": stats.coverage(wanted, stats.document_terms[sentence.source]),
                    "bm25": float(lexical[i]) if lexical is not None else 0.0,
                    "chunk_rank": 1.0 / (1 + chunk_rank[i]) if i in chunk_rank else 0.0,
                    "type_missing": float(any(asked) and not holds_type(asked, index.text(sentence))),
                    "novelty": sum(stats.idf.get(t, 0.0) for t in new_terms) / (1 + sum(wanted_weights.values())),
                    "length": math.log1p(len(index.text(sentence).split())) / 5,
                    "focus": float(bool(focus) and focus <= found),
                }
            )
        for key, rank_key in (("dense", "dense_rank"), ("coverage", "coverage_rank")):
            order = sorted(range(len(rows)), key=lambda r, key=key: -rows[r][key])  # type: ignore[misc]
            for position, row_number in enumerate(order):
                rows[row_number][rank_key] = 1.0 / (1 + position)
        best_dense = max(row["dense"] for row in rows)
        best_coverage = max(row["coverage"] for row in rows)
        best_bm25 = max(row["bm25"] for row in rows)
        for row in rows:
            row["dense_gap"] = row["dense"] - best_dense
            row["coverage_gap"] = row["coverage"] - best_coverage
            row["bm25"] = row["bm25"] / best_bm25 if best_bm25 > 0 else 0.0
        return rows

    def _neighbours(self, sentence_id: int) -> list[int]:
        """The citable sentences right before and after, in the same article."""
        sentences = self.index.sentences
        source = sentences[sentence_id].source
        return [
            n
            for n in (sentence_id - 1, sentence_id + 1)
            if 0 <= n < len(sentences) and sentences[n].source == source and sentences[n].kind == "sentence"
        ]

    def _citable(self, sentence_id: int) -> bool:
        """A sentence that may be evidence: not a heading. (Text addressed to an assistant or posing as a citation
        never became a sentence: `qa.ingest` skips it.)"""
        return self.index.sentences[sentence_id].kind == "sentence"

    def _candidates(self, retrieval: Retrieval) -> list[int]:
        ids: dict[int, None] = {}
        for hit in retrieval.hits:
            ids.update(dict.fromkeys(self.index.chunks[hit.chunk_id].sentence_ids))
        count = min(2 * self.settings.fetch_k, len(self.index.sentences))
        ids.update(dict.fromkeys(self.index.search("sentences", retrieval.query_vector, count)))
        return [i for i in ids if self._citable(i)]


def select(question: str, evidence: Sequence[Evidence], *, limit: int, floor: float) -> list[Evidence]:
    """The sentences that answer, best first: the top one, then the next ones likely enough to answer too
    (multi-part questions need one per part), and one from another article when the question compares."""
    if not evidence:
        return []
    chosen = [evidence[0]] + [e for e in evidence[1:limit] if e.score >= floor]
    if compares(question) and len({e.source for e in chosen}) == 1:
        other = next(
            (e for e in evidence[1:] if e.source != chosen[0].source and e.score >= OTHER_ARTICLE * chosen[0].score),
            None,
        )
        if other is not None:
            chosen = [*chosen[: limit - 1], other]
    return chosen
