"""A .txt or .md file -> one Document, its text exactly as stored (UTF-8, no newline translation)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from qa.ingest.base import fits, make_document, read_text
from qa.types import Document, Progress

logger = logging.getLogger(__name__)


class PlainTextReader:
    suffixes: tuple[str, ...] = (".txt", ".md")

    version = ""

    def read(self, path: Path, source: str, taken: set[str], progress: Progress | None = None) -> Iterator[Document]:
        text = read_text(path, source)
        if text is None:
            return
        if not text.strip():
            logger.warning("Skipping %s: the file is empty.", source)
        elif fits(text, source):
            yield make_document(source, text)
