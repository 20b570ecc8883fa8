"""The engine interface: a Request (question, judged evidence, passages) -> an Answer with citations."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from qa.evidence import Evidence, Verdict
from qa.types import Answer, Document, Passage


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
