"""A `FollowUp` (a question in its conversation) + the index -> the sentences earlier answers quoted, and the
evidence scores moved so that a follow-up is not answered with an earlier answer again.

Earlier answers' quotes are found from the citations the history gives (spans), or else in the answer text itself
(the extractive engine writes its quotes verbatim). When the question asks for something new, a sentence already
quoted keeps only QUOTED_KEEP of its P(answers), unless it holds what the question adds (a figure or date no
earlier question asked for, and its new terms), so a follow-up such as "and when?" gets a new sentence, or an
abstention, instead of the previous quote.
"""

from __future__ import annotations

import bisect
import re

from qa.conversation.resolve import ARTICLE_PREFIX, POINTED_AT, FollowUp
from qa.store import Store
from qa.terms import TermStats
from qa.text import MARKER, Asked, asks_for, holds_type, same_stem, terms

# Set by hand on the dev conversations of eval/conversations.jsonl (`qa eval --conversations-only --split dev`).
QUOTED_KEEP = 0.1  # share of P(answers) an already quoted sentence keeps when the question asks for something new
OWN_COVERAGE = 0.3  # ...unless it holds this much (IDF-weighted) of the terms the question adds to earlier ones
MIN_QUOTE_CHARS = 12  # shorter sentences are not looked for in an answer's text
SPACE = re.compile(r"\s+")


class QuoteFinder:
    """Maps what earlier answers cited or quoted back to the index's sentence ids, and moves the evidence scores
    of a follow-up away from them."""

    def __init__(self, index: Store, stats: TermStats) -> None:
        self.index = index
        self.stats = stats
        self._starts: dict[str, tuple[list[int], list[int]]] | None = None  # source -> (starts, ids), by start
        self._texts: dict[str, list[int]] | None = None  # normalised sentence text -> ids

    def quoted(self, follow_up: FollowUp) -> dict[int, list[str]]:
        """Sentences earlier answers quoted (those their citations overlap, else those found in their text), each
        with the questions it was quoted for."""
        found: dict[int, list[str]] = {}
        for exchange in follow_up.exchanges:
            ids = {i for span in exchange.cited for i in self.covering(*span)} or self.in_text(exchange.answer)
            for i in sorted(ids):
                found.setdefault(i, []).append(exchange.question)
        return found

    def covering(self, source: str, start: int, end: int) -> list[int]:
        """Citable sentences of `source` overlapping [start, end)."""
        if self._starts is None:
            grouped: dict[str, list[tuple[int, int]]] = {}
            for i, sentence in enumerate(self.index.sentences):
                if sentence.kind == "sentence":
                    grouped.setdefault(sentence.source, []).append((sentence.start, i))
            self._starts = {s: ([a for a, _ in pairs], [i for _, i in pairs]) for s, pairs in grouped.items()}
        starts, ids = self._starts.get(source, ([], []))
        first = max(bisect.bisect_right(starts, start) - 1, 0)
        return [i for i in ids[first : bisect.bisect_left(starts, end)] if self.index.sentences[i].end > start]

    def in_text(self, answer: str) -> set[int]:
        """Sentences quoted verbatim in `answer` (spacing aside), each ending right before one of its [n] markers."""
        if self._texts is None:
            texts: dict[str, list[int]] = {}
            for i, sentence in enumerate(self.index.sentences):
                text = _normal(self.index.text(sentence))
                if sentence.kind == "sentence" and len(text) >= MIN_QUOTE_CHARS:
                    texts.setdefault(text, []).append(i)
            self._texts = texts  # subtle: assigned when complete, so another thread never sees it half built
        found: set[int] = set()
        for segment in MARKER.split(ARTICLE_PREFIX.sub(" ", answer))[:-1:2]:  # the text before each marker
            words = _normal(segment).split(" ")
            for first in range(len(words)):  # a quote is a suffix of the text before its marker
                found.update(self._texts.get(" ".join(words[first:]), ()))
        return found

    def rescore(self, scores: dict[int, float], follow_up: FollowUp) -> dict[int, float]:
        """New P(answers) for the candidates (sentence id -> P): an already quoted sentence keeps QUOTED_KEEP of
        it when the question asks for something new that the sentence does not hold."""
        if not follow_up.asks_new:
            return scores
        quoted = self.quoted(follow_up)
        asked = asks_for(follow_up.question)
        # "When did that meeting happen?" adds no term the answer needs: "meeting" was asked about before
        pointing = " ".join(word for found in POINTED_AT.findall(follow_up.question) for word in found)
        wanted = terms(follow_up.question) - terms(pointing)
        return {
            i: p * QUOTED_KEEP if i in quoted and not self.answers_new(i, quoted[i], asked, wanted) else p
            for i, p in scores.items()
        }

    def answers_new(self, sentence_id: int, earlier: list[str], asked: Asked, wanted: set[str]) -> bool:
        """Whether a sentence quoted for the `earlier` questions holds what the follow-up (asking for `asked`, with
        terms `wanted`) asks beyond them: the figure, year or date none of them asked for, and enough of its own
        terms."""
        before = [asks_for(question) for question in earlier]
        # what the follow-up asks for that no earlier question did (a field asked before becomes its falsy value)
        newly = Asked(
            **{k: type(now)() if any(getattr(b, k) for b in before) else now for k, now in asked._asdict().items()}
        )
        newly = newly._replace(person=False, place=False)  # a name or a place is in almost any sentence
        own = wanted - set().union(*(terms(question) for question in earlier))
        if not any(newly) and not own:
            return False  # it asks nothing the earlier questions did not
        if any(newly) and not holds_type(newly, self.index.text(self.index.sentences[sentence_id])):
            return False
        found = self.stats.sentence_terms[sentence_id]
        matched = {t for t in own if t in found or any(same_stem(t, word) for word in found)}
        return not own or self.stats.coverage(own, matched) >= OWN_COVERAGE


def _normal(text: str) -> str:
    return SPACE.sub(" ", text).strip()
