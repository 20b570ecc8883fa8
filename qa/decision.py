"""Question + ranked evidence -> the answer/abstain decision, and every rule that turns an answer into the refusal.

Where an answer becomes "The articles don't say", in one place:
1. `Decision.judge`, before any engine writes: P(answerable) from a logistic regression over the best candidates'
   scores (the trained reader's among them, `qa.reader`) and what the question asks for (fitted on the dev split,
   `qa fit`), against its threshold; and the one
   rule outside the model, a question naming only people no article mentions (`unknown_full_names`). Between the
   threshold and a confident one the verdict is a hedge: the answer points at the closest passage and asserts
   nothing (`qa.engines.extractive.hedge`), which is scored as an abstention.
2. `is_model_refusal`: the LLM says the evidence does not answer ("NOT IN EVIDENCE"); its engine abstains.
3. `unsupported`: no citation survived the citation gate (`qa.cite.finalize` calls it), whatever engine wrote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from qa.config import Settings
from qa.evidence import RERANK_FEATURES, SENTENCE_FEATURES, SHORTLIST, SentenceScorer, rerank, select
from qa.ranker import DEFAULT_PATH, LinearModel, Ranker, logit
from qa.reader import DEFAULT_READER, Reader
from qa.terms import TermStats
from qa.text import FULL_NAME, WORD, Asked, asks_for, capitalised_words, holds_type, stem, terms
from qa.types import Answer, Citation, Evidence, Passage, SentenceCheck, Verdict

QUESTION_FEATURES = (
    "logit1",
    "dense_max",
    "coverage_top",
    "coverage_joint",
    "focus_top",
    "unknown_terms",
    "unknown_names",
    "type_missing_top",
    "reader_max",
    "reader_top",
)
TOP = 3  # candidates whose union the question-level features look at
REFUSAL = "The articles don't say. I found nothing in the corpus that answers this question, so I won't guess."
MODEL_REFUSAL = re.compile(r"^\W*not in (?:the )?evidence\W*$", re.IGNORECASE)  # the LLM's "no answer here"
NO_CITATION_NEEDED = ("smalltalk",)  # engines whose replies cite nothing and are not refusals

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_READER",
    "QUESTION_FEATURES",
    "REFUSAL",
    "RERANK_FEATURES",
    "SENTENCE_FEATURES",
    "SHORTLIST",
    "Decision",
    "LinearModel",
    "Ranker",
    "Reader",
    "SentenceScorer",
    "abstention",
    "is_model_refusal",
    "load_reader",
    "load_ranker",
    "logit",
    "rerank",
    "unsupported",
]


def load_ranker(path: Path | None = None) -> Ranker:
    """The fitted evidence ranker and decision model (`path`, or the ones shipped in the package)."""
    return Ranker.load(path, SENTENCE_FEATURES, QUESTION_FEATURES, RERANK_FEATURES)


def load_reader(ranker: Ranker, path: Path | None = None) -> Reader | None:
    """The reader the ranker's models read (`path`, or the one shipped in the package), loaded once per process;
    None when they read none. A missing or changed weights file is a `ModelError` naming the fix."""
    return Reader.shared(path or DEFAULT_READER) if ranker.reads else None


class Decision:
    """Whether a question's evidence answers it: P(answerable) against a threshold, plus the unknown-names rule."""

    def __init__(self, stats: TermStats, ranker: Ranker, settings: Settings) -> None:
        self.stats = stats
        self.ranker = ranker
        self.settings = settings

    def judge(self, question: str, evidence: list[Evidence], *, asked: Asked | None = None) -> Verdict:
        """Whether `evidence` answers `question`: P(answerable) from the decision model against its threshold.

        `asked`: what the question asks for when `question` is a follow-up's query (the question as asked, not the
        earlier questions it carries, says what kind of thing is wanted now); by default `asks_for(question)`.
        """
        if not evidence:
            return Verdict(False, "no citable sentence was retrieved", 0.0)
        strangers = self.unknown_full_names(question)
        if strangers:
            return Verdict(False, f"the question asks about {', '.join(strangers)}, whom no article mentions", 0.0)
        row = self.question_features(question, evidence, asked=asked)
        probability = float(self.ranker.answerable.probabilities([row])[0])
        threshold = self.threshold
        confident = self.confident
        if probability >= threshold and confident is not None and probability < confident:
            why = f"P(answerable) {probability:.2f} is between {threshold:.2f} and the confident {confident:.2f}"
            return Verdict(True, why, probability, row, hedge=True)
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

    @property
    def confident(self) -> float | None:
        """Below this P(answerable), an answer is a hedge (None: never): Settings', else the fitted one."""
        override = self.settings.confident_threshold
        return self.ranker.confident if override is None else override

    def question_features(
        self, question: str, evidence: list[Evidence], *, asked: Asked | None = None
    ) -> dict[str, float]:
        """The row the decision model reads: the best candidates' scores and what the question asks for."""
        stats = self.stats
        wanted = terms(question)
        top = evidence[:TOP]
        joint = stats.coverage(
            wanted,
            set().union(*(stats.sentence_terms[e.sentence_id] for e in top)),
            set().union(*(stats.document_terms[e.source] for e in top)),
        )
        weights = {t: stats.weight(t) for t in wanted}
        unknown = sum(w for t, w in weights.items() if t not in stats.idf) / sum(weights.values()) if weights else 1.0
        asked = asks_for(question) if asked is None else asked
        # the kind of thing asked for, in the sentences the answer would quote: a near miss is most often the right
        # topic without the asked detail ("How many diplomats …?" over a sentence that says diplomats were sent)
        quoted = select(question, evidence, limit=self.settings.evidence_sentences, floor=self.settings.quote_floor)
        found = any(holds_type(asked, e.text) for e in quoted) if any(asked) else False
        read = [e.features["reader"] for e in evidence if e.features.get("read")]
        return {
            "logit1": logit(evidence[0].score),
            "dense_max": max(e.dense for e in evidence),
            "coverage_top": evidence[0].coverage,
            "coverage_joint": joint,
            "focus_top": evidence[0].features.get("focus", 0.0),
            "unknown_terms": unknown,
            "unknown_names": self.unknown_names(question),
            "type_missing_top": float(any(asked) and not found),
            # the reader's logits: the best over the shortlist, and the top candidate's (0.0: no reader ran)
            "reader_max": logit(max(read)) if read else 0.0,
            "reader_top": logit(evidence[0].features["reader"]) if evidence[0].features.get("read") else 0.0,
        }

    def unknown_full_names(self, question: str) -> list[str]:
        """The full names of the question ("Vladimir Putin") when no article mentions any of them, else [].

        The one rule outside the fitted decision: a paraphrase changes a question's words, not the names it asks
        about, so a question naming only people or things the corpus never mentions cannot be answered from it.
        The dev set holds too few such questions for the model to learn how decisive that is. A question that also
        names someone the corpus knows (a false premise: "Brookings analyst Derek Grossman") is left to the model.
        """
        names = [match.group(0) for match in FULL_NAME.finditer(question, 1)]
        known = [name for name in names if any(stem(w) in self.stats.idf for w in WORD.findall(name) if len(w) > 1)]
        return [] if known or not names else names

    def unknown_names(self, question: str) -> float:
        """Share of the names the question uses ("Vladimir Putin", "France") that no article mentions: a paraphrase
        changes the words of a question, not the names it asks about."""
        names = {stem(w) for name in capitalised_words(question) for w in WORD.findall(name) if len(w) > 1}
        return sum(name not in self.stats.idf for name in names) / len(names) if names else 0.0


def abstention(
    question: str, passages: tuple[Passage, ...], *, engine: str, checks: tuple[SentenceCheck, ...] = ()
) -> Answer:
    """The fixed refusal: no citations; retrieved passages are kept only to be shown as not answering."""
    return Answer(question, REFUSAL, True, (), passages, engine=engine, checks=checks)


def is_model_refusal(sentence: str) -> bool:
    """Whether a sentence the model wrote says the evidence holds no answer ("NOT IN EVIDENCE")."""
    return MODEL_REFUSAL.match(sentence) is not None


def unsupported(answer: Answer, kept: Sequence[Citation]) -> bool:
    """Whether an answer left with the citations `kept` by the citation gate must become the refusal: it cites
    nothing, and it is not a reply that needs no citation (small talk)."""
    return not kept and answer.engine not in NO_CITATION_NEEDED
