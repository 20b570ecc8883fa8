"""Store -> term statistics of its sentences: each sentence's and article's stemmed terms, their IDF, and BM25 over
sentences. The evidence ranker, the answer/abstain decision and the follow-up rules weigh questions with them."""

from __future__ import annotations

import math
from collections import Counter

import bm25s
import numpy as np

from qa.store import Store
from qa.text import QUESTION_WORDS, stem, terms, tokenize

# Credit for a question term found only elsewhere in the sentence's article (its title included).
ARTICLE_CREDIT = 0.5
FOCUS = 2  # the question's rarest terms that an answering sentence usually holds


class TermStats:
    """The terms of every sentence and article of one store, with IDF weights and a sentence BM25 index."""

    def __init__(self, index: Store) -> None:
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

    def weight(self, term: str) -> float:
        """A term's IDF (the rarest weight for a term no sentence uses)."""
        return self.idf.get(term, self.unknown_idf)

    def coverage(self, wanted: set[str], found: set[str], context: set[str] = frozenset()) -> float:  # type: ignore[assignment]
        """IDF-weighted share of the question's terms present in `found` (partial credit for those in `context`)."""
        if not wanted:
            return 0.0
        weights = {t: self.weight(t) for t in wanted}
        credit = sum(w if t in found else ARTICLE_CREDIT * w if t in context else 0.0 for t, w in weights.items())
        return credit / sum(weights.values())

    def focus_terms(self, wanted: set[str]) -> set[str]:
        """The question's rarest terms (at most FOCUS of them, among those the corpus knows): what it is about."""
        known = sorted((t for t in wanted if t in self.idf), key=lambda t: (-self.idf[t], t))
        return set(known[:FOCUS])

    def bm25_scores(self, question: str) -> np.ndarray | None:
        """BM25 of every sentence for the question (None when no question word is in the corpus)."""
        tokens = [t for t in tokenize([question])[0] if t in self.bm25.vocab_dict] if self.has_bm25 else []
        if not tokens:
            return None
        scores: np.ndarray = self.bm25.get_scores(tokens)
        return scores
