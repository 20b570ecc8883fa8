"""Grounded question answering over a folder of news articles, with exact, verified citations.

    >>> from qa import Assistant
    >>> answer = Assistant.load().ask("How many people did the Kabul airport attack kill?")
    >>> answer.citations[0].quote
"""

from __future__ import annotations

import logging

from qa.api import Assistant
from qa.config import Settings
from qa.errors import InvalidQuestion, MissingDependency, QAError
from qa.types import Answer, Citation, Document, Passage, SentenceCheck, answer_record

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"


def ask(question: str, settings: Settings | None = None) -> Answer:
    """One-shot helper: load the assistant and answer one question (load an `Assistant` to ask several)."""
    return Assistant.load(settings).ask(question)


__all__ = [
    "Answer",
    "Assistant",
    "Citation",
    "Document",
    "InvalidQuestion",
    "MissingDependency",
    "Passage",
    "QAError",
    "SentenceCheck",
    "Settings",
    "answer_record",
    "ask",
]
