"""Evidence sentences -> an Answer quoting the best of them, grouped by article, each with its [n] marker."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

from qa.cite import defuse_markers, make_citation
from qa.decision import abstention
from qa.engines.base import Request
from qa.text import ASKS_NUMBER, numbers, shorten
from qa.types import Answer, Citation, Evidence, Quotes, SentenceCheck

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from qa.config import Settings

TITLE_CHARS = 80  # an article named in an answer ("According to …")
HEDGE = "The articles don't state this directly; the closest passage says:"


class ExtractiveEngine:
    """Answers with the evidence sentences themselves: fast, needs no model, never paraphrases."""

    name = "extractive"

    def answer(self, request: Request) -> Answer:
        if not request.verdict.answerable:
            return abstention(request.question, request.passages, engine=self.name)
        chosen = request.chosen or request.evidence[:1]
        by_source: dict[str, list[Evidence]] = {}
        for item in chosen:
            by_source.setdefault(item.source, []).append(item)
        citations: list[Citation] = []
        paragraphs = []
        for source, items in by_source.items():
            document = request.documents[source]
            parts = []
            for item in sorted(items, key=lambda e: e.start):
                citation = make_citation(document, item.start, item.end, len(citations) + 1)
                citations.append(citation)
                parts.append(f"{_display(citation.quote)} [{citation.marker}]")
            prefix = f"According to “{shorten(document.title, TITLE_CHARS)}”: " if len(by_source) > 1 else ""
            paragraphs.append(prefix + " ".join(parts))
        if len(by_source) > 1 and ASKS_NUMBER.search(request.question) and _figures_differ(by_source):
            paragraphs.insert(0, "The articles give different figures:")
        return Answer(
            request.question, "\n\n".join(paragraphs), False, tuple(citations), request.passages, engine=self.name
        )

    def stream(self, request: Request) -> Iterator[str | Answer]:
        answer = self.answer(request)
        yield answer.text
        yield answer


def hedge(request: Request, *, engine: str) -> Answer:
    """The answer to a question judged answerable but not confidently (`Verdict.hedge`): the closest passage,
    introduced as not answering directly. It asserts nothing, so it is scored as an abstention."""
    best = request.chosen[0] if request.chosen else request.evidence[0]
    citation = make_citation(request.documents[best.source], best.start, best.end, 1)
    text = f"{HEDGE} {_display(citation.quote)} [1]"
    return Answer(request.question, text, False, (citation,), request.passages, engine=engine, hedged=True)


def make_engine(settings: Settings, embedder: Embeddings | None) -> ExtractiveEngine:
    """The registry's factory (`qa.engines.registry`): the extractive engine needs neither settings nor a model."""
    return ExtractiveEngine()


def quote_instead(
    request: Request, *, label: str, checks: tuple[SentenceCheck, ...] = (), timings: dict[str, float] | None = None
) -> Answer:
    """The one fallback: the extractive answer to `request` when another engine could not answer it (its text did
    not survive verification, or its model failed), labelled `label` (e.g. "llm→extractive")."""
    answer = ExtractiveEngine().answer(request)
    return dataclasses.replace(
        answer, engine=label, checks=checks, timings_ms=answer.timings_ms if timings is None else timings
    )


def evidence_quotes(request: Request) -> Quotes:
    """The chosen evidence as quotes with their citations: what is shown before an engine's answer (the extractive
    answer's own text, so the page and the streams show the quotes an answer falls back to)."""
    answer = ExtractiveEngine().answer(request)
    return Quotes(request.question, answer.text, answer.citations)


def _display(quote: str) -> str:
    """The quote on one line (a quote may span a soft line break); the citation keeps the exact text."""
    return defuse_markers(" ".join(quote.split()))


def _figures_differ(by_source: dict[str, list[Evidence]]) -> bool:
    figures = [set().union(*(numbers(e.text) for e in items)) for items in by_source.values()]
    return len({frozenset(f) for f in figures if f}) > 1
