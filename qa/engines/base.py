"""The engine interface: a Request (question, judged evidence, passages) -> an Answer with citations; and the
optional follow-up rewrite an engine may offer."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from qa.types import Answer, Document, Evidence, Passage, Verdict


@dataclass(frozen=True)
class Request:
    question: str
    evidence: list[Evidence]  # best first
    verdict: Verdict
    passages: tuple[Passage, ...]
    documents: Mapping[str, Document]
    chosen: list[Evidence] = field(default_factory=list)  # the sentences that answer (evidence stage's selection)


class Engine(Protocol):
    name: str

    def answer(self, request: Request) -> Answer:
        """Compose an answer whose every sentence cites the evidence, or an abstention."""
        ...

    def stream(self, request: Request) -> Iterator[str | Answer]:
        """Yield text as it is produced, then the verified Answer last."""
        ...


@runtime_checkable
class Rewriter(Protocol):
    """An engine that can rewrite a follow-up as a standalone question (Settings.follow_ups = "llm")."""

    def rewrite(self, question: str, history: Sequence[Mapping[str, Any]]) -> str | None:
        """The follow-up as a question that stands alone, or None when no usable rewrite came out."""
        ...
