"""Grounded question answering over a folder of news articles, with exact, verified citations.

    >>> from qa import Assistant
    >>> answer = Assistant.load().ask("How many people did the Kabul airport attack kill?")
    >>> answer.citations[0].quote

These names are the Python API. Tools (`qa.evaluation`, `qa.bench`, `ui`) also use the fronts of the stages:
`qa.ingest`, `qa.store`, `qa.engines`, `qa.decision`, `qa.retrieve`, `qa.embed`, and the shared vocabulary
`qa.types`, `qa.text`, `qa.errors` (a test keeps them off the other modules).
"""

from __future__ import annotations

import importlib.metadata
import logging

from qa.api import Assistant
from qa.cite import is_valid_citation
from qa.config import Settings
from qa.errors import (
    CorpusError,
    EmptyCorpus,
    IndexMismatch,
    InvalidQuestion,
    LLMError,
    MissingDependency,
    QAError,
)
from qa.types import Answer, Citation, Document, Passage, Progress, Quotes, answer_record, quotes_record

logging.getLogger(__name__).addHandler(logging.NullHandler())

try:
    __version__ = importlib.metadata.version("qa")  # the one version source is pyproject.toml
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout that was never installed
    __version__ = "0+unknown"


def ask(question: str, settings: Settings | None = None) -> Answer:
    """One-shot helper: load the assistant and answer one question (load an `Assistant` to ask several)."""
    return Assistant.load(settings).ask(question)


__all__ = [
    "Answer",
    "Assistant",
    "Citation",
    "CorpusError",
    "Document",
    "EmptyCorpus",
    "IndexMismatch",
    "InvalidQuestion",
    "LLMError",
    "MissingDependency",
    "Passage",
    "Progress",
    "QAError",
    "Quotes",
    "Settings",
    "answer_record",
    "ask",
    "is_valid_citation",
    "quotes_record",
]
