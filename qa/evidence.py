"""Retrieval + index -> ranked evidence sentences, and the decision whether they answer the question.

Every citable sentence of the retrieved chunks (plus the sentences nearest the question overall) is a candidate.
Each gets a row of features (embedding similarity, IDF-weighted coverage of the question in the sentence, its
neighbours and its article, sentence BM25, the chunk's rank, whether it holds what the question asks for, ...);
a logistic regression fitted on the dev questions' gold quotes turns the row into P(sentence answers). A second
one turns the best candidates' scores into P(question answerable): below its threshold the engines abstain.
Both live in `qa/ranker.json` (`qa fit` refits them); see `qa.ranker`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import bm25s
import numpy as np

from qa.config import Settings
from qa.conversation import OWN_COVERAGE, AnswersNew, QuoteFinder, same_stem
from qa.question import FollowUp
from qa.ranker import Ranker, logit
from qa.retrieve import Retrieval
from qa.store import Store
from qa.text import (
    ASKS_DATE,
    ASKS_NUMBER,
    ASKS_PERSON,
    ASKS_PLACE,
    ASKS_YEAR,
    DIGIT,
    FULL_NAME,
    INSTRUCTION,
    MONTH,
    QUESTION_WORDS,
    WORD,
    YEAR,
    capitalised_words,
    has_quantity,
    names_someone,
    stem,
    terms,
    tokenize,
)

logger = logging.getLogger(__name__)

# Credit for a question term found only elsewhere in the sentence's article (its title included).
ARTICLE_CREDIT = 0.5
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
QUESTION_FEATURES = (
    "logit1",
    "dense_max",
    "coverage_top",
    "coverage_joint",
    "focus_top",
    "unknown_terms",
    "unknown_names",
    "type_missing_top",
)
FOCUS = 2  # the question's rarest terms that an answering sentence usually holds
TOP = 3  # candidates whose union the question-level features look at
OTHER_ARTICLE = 0.3  # a comparison quotes a second article's best sentence if it is at least this likely
COMPARES = re.compile(r"\b(?:compare|comparison|differ|difference|different|both|each|versus|vs\.?|whereas)\b", re.I)


@dataclass(frozen=True, slots=True)
class Evidence:
    sentence_id: int
    source: str
    start: int
    end: int
    text: str
    score: float  # P(this sentence answers the question), from the ranker
    dense: float
    coverage: float
    features: dict[str, float] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Verdict:
    answerable: bool
    reason: str
    probability: float = 1.0  # P(answerable) from the decision model
    features: dict[str, float] = field(default_factory=dict, compare=False, repr=False)


class EvidencePicker:
    """Ranks the sentences of retrieved chunks (plus the nearest sentences overall) for a question."""

    def __init__(self, index: Store, settings: Settings, ranker: Ranker | None = None) -> None:
        self.index = index
        self.settings = settings
        self.ranker = ranker or Ranker.load(settings.ranker_path, SENTENCE_FEATURES, QUESTION_FEATURES)
        texts = [index.text(s) for s in index.sentences]
        tokens = tokenize(texts) if texts else []  # one batched call: far faster than one per sentence
        self.sentence_terms = [{stem(t) for t in found} - QUESTION_WORDS for found in tokens]
        # Terms of a whole article (its title included): partial credit for naming the right article.
        self.document_terms: dict[str, set[str]] = {s: terms(d.title) for s, d in index.documents.items()}
        for sentence, found in zip(index.sentences, self.sentence_terms, strict=True):
            self.document_terms[sentence.source] |= found
        frequency: Counter[str] = Counter(t for found in self.sentence_terms for t in found)
        total = max(len(index.sentences), 1)
        self.idf = {t: math.log(1 + total / n) for t, n in frequency.items()}
        self.unknown_idf = math.log(1 + total)  # a term the corpus never uses weighs as much as the rarest
        self.bm25 = bm25s.BM25()
        self.has_bm25 = any(tokens)  # bm25s divides by the mean length: a corpus of stop words only has none
        if self.has_bm25:
            self.bm25.index(tokens, show_progress=False)
        self.quotes = QuoteFinder(index)

    def pick(
        self, question: str, retrieval: Retrieval, *, limit: int, follow_up: FollowUp | None = None
    ) -> list[Evidence]:
        """The best `limit` citable sentences, most likely to answer first, with distinct texts.

        With `follow_up` (the question read in its conversation), sentences that earlier answers quoted lose most of
        their score unless they hold what the question newly asks (`qa.conversation`).
        """
        candidates = self._candidates(retrieval)
        if not candidates:
            return []
        rows = self._features(question, retrieval, candidates)
        probabilities = self.ranker.sentence.probabilities(rows)
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
        return unique[:limit]

    def _in_conversation(self, scored: list[Evidence], follow_up: FollowUp) -> list[Evidence]:
        """Scores moved for the conversation (`qa.conversation`); the ranker's own is kept as feature "ranker"."""
        scores = {e.sentence_id: e.score for e in scored}
        quoted = self.quotes.quoted(follow_up)
        moved = self.quotes.demote(scores, follow_up, quoted, self._answers_new(follow_up))
        return [
            e
            if moved[e.sentence_id] == e.score
            else dataclasses.replace(
                e, score=round(moved[e.sentence_id], 4), features={**e.features, "ranker": e.score}
            )
            for e in scored
        ]

    def _answers_new(self, follow_up: FollowUp) -> AnswersNew:
        """Whether a sentence quoted for some earlier questions holds what `follow_up` asks beyond them: the figure,
        year or date none of them asked for, and enough of its own terms."""
        asked = self.asks_for(follow_up.question)
        wanted = terms(follow_up.question)

        def answers_new(sentence_id: int, earlier: list[str]) -> bool:
            before = [self.asks_for(question) for question in earlier]
            newly = tuple(now and not any(b[k] for b in before) for k, now in enumerate(asked))
            newly = (newly[0], False, newly[2], newly[3], False)  # a name or a place is in almost any sentence
            own = wanted - set().union(*(terms(question) for question in earlier))
            if not any(newly) and not own:
                return False  # it asks nothing the earlier questions did not
            if any(newly) and not self._holds_type(newly, self.index.text(self.index.sentences[sentence_id])):
                return False
            found = self.sentence_terms[sentence_id]
            matched = {t for t in own if t in found or any(same_stem(t, word) for word in found)}
            return not own or self.coverage(own, matched) >= OWN_COVERAGE

        return answers_new

    def select(self, question: str, evidence: list[Evidence], *, limit: int, floor: float) -> list[Evidence]:
        """The sentences that answer, best first: the top one, then the next ones likely enough to answer too
        (multi-part questions need one per part), and one from another article when the question compares."""
        if not evidence:
            return []
        chosen = [evidence[0]] + [e for e in evidence[1:limit] if e.score >= floor]
        if self.compares(question) and len({e.source for e in chosen}) == 1:
            other = next(
                (
                    e
                    for e in evidence[1:]
                    if e.source != chosen[0].source and e.score >= OTHER_ARTICLE * chosen[0].score
                ),
                None,
            )
            if other is not None:
                chosen = [*chosen[: limit - 1], other]
        return chosen

    def judge(self, question: str, evidence: list[Evidence]) -> Verdict:
        """Whether `evidence` answers `question`: P(answerable) from the decision model against its threshold."""
        if not evidence:
            return Verdict(False, "no citable sentence was retrieved", 0.0)
        strangers = self.unknown_full_names(question)
        if strangers:
            return Verdict(False, f"the question asks about {', '.join(strangers)}, whom no article mentions", 0.0)
        row = self.question_features(question, evidence)
        probability = float(self.ranker.answerable.probabilities([row])[0])
        threshold = self.threshold
        if probability >= threshold:
            return Verdict(True, f"P(answerable) {probability:.2f} >= {threshold:.2f}", probability, row)
        weakest = sorted(self.ranker.answerable.contributions(row).items(), key=lambda item: item[1])[:2]
        why = ", ".join(f"{name} {row[name]:.2f}" for name, _ in weakest)
        return Verdict(False, f"P(answerable) {probability:.2f} < {threshold:.2f} (weakest: {why})", probability, row)

    @property
    def threshold(self) -> float:
        """The abstention threshold: the fitted one unless Settings overrides it."""
        override = self.settings.abstain_threshold
        return self.ranker.threshold if override is None else override

    def question_features(self, question: str, evidence: list[Evidence]) -> dict[str, float]:
        """The row the decision model reads: the best candidates' scores and what the question asks for."""
        wanted = terms(question)
        top = evidence[:TOP]
        joint = self.coverage(
            wanted,
            set().union(*(self.sentence_terms[e.sentence_id] for e in top)),
            set().union(*(self.document_terms[e.source] for e in top)),
        )
        weights = {t: self.idf.get(t, self.unknown_idf) for t in wanted}
        unknown = sum(w for t, w in weights.items() if t not in self.idf) / sum(weights.values()) if weights else 1.0
        asked = self.asks_for(question)
        found = any(self._holds_type(asked, e.text) for e in top) if any(asked) else False
        return {
            "logit1": logit(evidence[0].score),
            "dense_max": max(e.dense for e in evidence),
            "coverage_top": evidence[0].coverage,
            "coverage_joint": joint,
            "focus_top": evidence[0].features.get("focus", 0.0),
            "unknown_terms": unknown,
            "unknown_names": self.unknown_names(question),
            "type_missing_top": float(any(asked) and not found),
        }

    def focus_terms(self, wanted: set[str]) -> set[str]:
        """The question's rarest terms (at most FOCUS of them, among those the corpus knows): what it is about."""
        known = sorted((t for t in wanted if t in self.idf), key=lambda t: (-self.idf[t], t))
        return set(known[:FOCUS])

    def unknown_full_names(self, question: str) -> list[str]:
        """The full names of the question ("Vladimir Putin") when no article mentions any of them, else [].

        The one rule outside the fitted decision: a paraphrase changes a question's words, not the names it asks
        about, so a question naming only people or things the corpus never mentions cannot be answered from it.
        The dev set holds too few such questions for the model to learn how decisive that is. A question that also
        names someone the corpus knows (a false premise: "Brookings analyst Derek Grossman") is left to the model.
        """
        names = [match.group(0) for match in FULL_NAME.finditer(question, 1)]
        known = [name for name in names if any(stem(w) in self.idf for w in WORD.findall(name) if len(w) > 1)]
        return [] if known or not names else names

    def unknown_names(self, question: str) -> float:
        """Share of the names the question uses ("Vladimir Putin", "France") that no article mentions: a paraphrase
        changes the words of a question, not the names it asks about."""
        names = {stem(w) for name in capitalised_words(question) for w in WORD.findall(name) if len(w) > 1}
        return sum(name not in self.idf for name in names) / len(names) if names else 0.0

    def coverage(self, wanted: set[str], found: set[str], context: set[str] = frozenset()) -> float:  # type: ignore[assignment]
        """IDF-weighted share of the question's terms present in `found` (partial credit for those in `context`)."""
        if not wanted:
            return 0.0
        weights = {t: self.idf.get(t, self.unknown_idf) for t in wanted}
        credit = sum(w if t in found else ARTICLE_CREDIT * w if t in context else 0.0 for t, w in weights.items())
        return credit / sum(weights.values())

    def compares(self, question: str) -> bool:
        return COMPARES.search(question) is not None

    def asks_for(self, question: str) -> tuple[bool, ...]:
        """Whether the question asks for (a quantity, a person, a year, a date, a place)."""
        person = ASKS_PERSON.match(question)
        return (
            ASKS_NUMBER.search(question) is not None,
            # "Who is Wang Yi?" names its person already: any sentence about him may answer
            person is not None and FULL_NAME.search(question, person.end()) is None,
            ASKS_YEAR.search(question) is not None,
            ASKS_DATE.search(question) is not None,
            ASKS_PLACE.search(question) is not None,
        )

    def _holds_type(self, asked: tuple[bool, ...], text: str) -> bool:
        """Whether `text` holds one of the kinds of thing the question asks for."""
        number, person, year, date, place = asked
        return (
            (number and has_quantity(text))
            or (person and names_someone(text))
            or (year and YEAR.search(text) is not None)
            or (date and (DIGIT.search(text) is not None or MONTH.search(text) is not None))
            or (place and bool(capitalised_words(text)))
        )

    def _features(self, question: str, retrieval: Retrieval, candidates: list[int]) -> list[dict[str, float]]:
        index = self.index
        wanted = terms(question)
        wanted_weights = {t: self.idf.get(t, self.unknown_idf) for t in wanted}
        asked = self.asks_for(question)
        focus = self.focus_terms(wanted)
        ids = sorted(set(candidates) | {n for i in candidates for n in self._neighbours(i)})
        vectors = index.vectors("sentences", ids)  # one call: on PostgreSQL, one query for all of them
        dense = {i: float(vector @ retrieval.query_vector) for i, vector in zip(ids, vectors, strict=True)}
        lexical = self._bm25(question)
        chunk_rank: dict[int, int] = {}
        for rank, hit in enumerate(retrieval.hits):
            for sentence_id in index.chunks[hit.chunk_id].sentence_ids:
                chunk_rank.setdefault(sentence_id, rank)
        rows = []
        for i in candidates:
            sentence = index.sentences[i]
            found = self.sentence_terms[i]
            window = found.union(*(self.sentence_terms[n] for n in self._neighbours(i)))
            new_terms = found - wanted
            rows.append(
                {
                    "dense": dense[i],
                    "dense_neighbour": max((dense[n] for n in self._neighbours(i)), default=0.0),
                    "coverage": self.coverage(wanted, found),
                    "coverage_window": self.coverage(wanted, window),
                    "coverage_article": self.coverage(wanted, self.document_terms[sentence.source]),
                    "bm25": float(lexical[i]) if lexical is not None else 0.0,
                    "chunk_rank": 1.0 / (1 + chunk_rank[i]) if i in chunk_rank else 0.0,
                    "type_missing": float(any(asked) and not self._holds_type(asked, index.text(sentence))),
                    "novelty": sum(self.idf.get(t, 0.0) for t in new_terms) / (1 + sum(wanted_weights.values())),
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

    def _bm25(self, question: str) -> np.ndarray | None:
        """BM25 of every sentence for the question (None when no question word is in the corpus)."""
        tokens = [t for t in tokenize([question])[0] if t in self.bm25.vocab_dict] if self.has_bm25 else []
        if not tokens:
            return None
        scores: np.ndarray = self.bm25.get_scores(tokens)
        return scores

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
        """A sentence that may be evidence: not a heading, not text addressed to an assistant (an injection)."""
        if self.index.sentences[sentence_id].kind != "sentence":
            return False
        if INSTRUCTION.search(self.index.text(self.index.sentences[sentence_id])):
            logger.warning(
                "Ignoring a sentence of %s addressed to an assistant (it tries to steer the answer)",
                self.index.sentences[sentence_id].source,
            )
            return False
        return True

    def _candidates(self, retrieval: Retrieval) -> list[int]:
        ids: dict[int, None] = {}
        for hit in retrieval.hits:
            ids.update(dict.fromkeys(self.index.chunks[hit.chunk_id].sentence_ids))
        count = min(2 * self.settings.fetch_k, len(self.index.sentences))
        ids.update(dict.fromkeys(self.index.search("sentences", retrieval.query_vector, count)))
        return [i for i in ids if self._citable(i)]
