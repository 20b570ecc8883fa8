"""Grounded question answering over a folder of news articles, with exact, verified citations.

    >>> from qa import Assistant
    >>> answer = Assistant.load().ask("How many people did the Kabul airport attack kill?")
    >>> answer.citations[0].quote

The first group of names is the user API; the second is what the evaluation and benchmark tools
(`qa.evaluation`, `qa.bench`) build on: they import nothing else from the library.
"""

from __future__ import annotations

import importlib.metadata
import logging

from qa.api import Assistant
from qa.chunk import count_tokens
from qa.cite import is_valid_citation
from qa.config import Settings
from qa.corpus import load_corpus, make_document
from qa.embed import SentenceEmbedder, require, resolve_embed_model
from qa.errors import (
    EmptyCorpus,
    EvalSetError,
    IndexMismatch,
    InvalidQuestion,
    LLMError,
    MissingDependency,
    QAError,
)
from qa.evidence import Evidence
from qa.pgserver import LocalPostgres, start_postgres
from qa.prepare import Prepared
from qa.question import echo_question
from qa.ranker import DEFAULT_PATH as DEFAULT_RANKER
from qa.ranker import LinearModel, Ranker
from qa.retrieve import HybridRetriever
from qa.store import Index, Store, build_index, vector_index
from qa.store_pg import PgStore
from qa.store_pg_build import write_pg_index
from qa.stores import build_store, load_store
from qa.text import MARKER, shorten
from qa.types import (
    Answer,
    Chunk,
    Citation,
    Document,
    Passage,
    Progress,
    SentenceCheck,
    answer_record,
    final_answer,
)

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
    "Chunk",
    "Citation",
    "DEFAULT_RANKER",
    "Document",
    "EmptyCorpus",
    "EvalSetError",
    "Evidence",
    "HybridRetriever",
    "Index",
    "IndexMismatch",
    "InvalidQuestion",
    "LLMError",
    "LinearModel",
    "LocalPostgres",
    "MARKER",
    "MissingDependency",
    "Passage",
    "PgStore",
    "Prepared",
    "Progress",
    "QAError",
    "Ranker",
    "SentenceCheck",
    "SentenceEmbedder",
    "Settings",
    "Store",
    "answer_record",
    "ask",
    "build_index",
    "build_store",
    "count_tokens",
    "echo_question",
    "final_answer",
    "is_valid_citation",
    "load_corpus",
    "load_store",
    "make_document",
    "require",
    "resolve_embed_model",
    "shorten",
    "start_postgres",
    "vector_index",
    "write_pg_index",
]
