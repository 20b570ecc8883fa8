"""Exceptions raised by the library. Every message says what went wrong, where, and what to do.

QAError
├── InvalidQuestion      empty, too long or unusable question
├── CorpusError          corpus folder missing or unreadable
│   ├── EmptyCorpus      no readable article in the folder
│   └── ExtractionError  a document (PDF, HTML, DOCX, EPUB) cannot be read
│       ├── UnreadableDocument  truncated, malformed or of another type
│       ├── EncryptedDocument   a password or DRM
│       └── DocumentTooLarge    would unpack past the limits (a decompression bomb)
├── IndexProblem         base of index problems
│   ├── IndexNotFound    no index at the path
│   ├── IndexMismatch    built with other settings, or stale
│   ├── IndexCorrupt     files or tables unreadable or inconsistent
│   ├── IndexUnavailable the database cannot be reached or refuses us (down, password, missing pgvector)
│   └── IndexUnwritable  the index folder cannot be written (read-only, no permission, disk full)
├── MissingDependency    an optional package is not installed
├── ModelError           a model file is missing, truncated or has the wrong hash
├── EvalSetError         the evaluation question set or thresholds file is malformed
└── LLMError             the language model failed, timed out or is unreachable
"""

from __future__ import annotations

import importlib
from types import ModuleType


class QAError(Exception):
    """Base class of every error this library raises on purpose."""


class InvalidQuestion(QAError):
    pass


class CorpusError(QAError):
    pass


class EmptyCorpus(CorpusError):
    pass


class ExtractionError(CorpusError):
    """A document could not be read; the message names the file and what to do."""


class UnreadableDocument(ExtractionError):
    """The file is not a readable document of its format (truncated, malformed, wrong type)."""


class EncryptedDocument(ExtractionError):
    """The document is encrypted (a password or DRM)."""


class DocumentTooLarge(ExtractionError):
    """Unpacking the document would take more memory than allowed (a decompression bomb)."""


class IndexProblem(QAError):
    pass


class IndexNotFound(IndexProblem):
    pass


class IndexMismatch(IndexProblem):
    pass


class IndexCorrupt(IndexProblem):
    pass


class IndexUnavailable(IndexProblem):
    pass


class IndexUnwritable(IndexProblem):
    pass


class MissingDependency(QAError):
    pass


class ModelError(QAError):
    pass


class LLMError(QAError):
    pass


class EvalSetError(QAError):
    pass


def require(module: str, install: str) -> ModuleType:
    """Import an optional heavy module, or raise MissingDependency with the command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(f"Python package for {module!r} is missing: run {install}") from exc
