"""A .jsonl file -> one Document per line with a non-empty "text" field, named `<file>#<id or url or line>`."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from qa.ingest.base import fits, make_document, read_text
from qa.text import SURROGATE
from qa.types import Document, Progress

logger = logging.getLogger(__name__)


class JsonlReader:
    suffixes: tuple[str, ...] = (".jsonl",)

    version = ""

    def read(self, path: Path, source: str, taken: set[str], progress: Progress | None = None) -> Iterator[Document]:
        text = read_text(path, source)
        if text is None:
            return
        # subtle: lines end at "\n" only (JSON Lines); str.splitlines would also cut at U+2028, U+0085 and other
        # separators that JSON strings may hold raw, and lose the record
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                logger.warning("Skipping %s line %d: not valid JSON (%s).", source, number, exc.msg)
                continue
            body = record.get("text") if isinstance(record, dict) else None
            where = f"{source} line {number}"
            if not isinstance(body, str) or not body.strip():
                logger.warning('Skipping %s: no non-empty "text" field.', where)
                continue
            if SURROGATE.search(body):
                logger.warning("Skipping %s: its text is not valid Unicode (a lone surrogate such as \\ud800).", where)
                continue
            if not fits(body, where):
                continue
            key = SURROGATE.sub("\ufffd", str(record.get("id") or record.get("url") or number))
            name = unique_name(f"{source}#{key}", number, taken)
            if name != f"{source}#{key}":  # every article needs its own source name: offsets are looked up by it
                logger.warning("%s: the source name %r is taken (a repeated id?); indexing it as %r.", where, key, name)
            taken.add(name)
            title = record.get("title") if isinstance(record.get("title"), str) else None
            yield make_document(name, body, SURROGATE.sub("\ufffd", title) if title else None)


def unique_name(name: str, number: int, taken: set[str]) -> str:
    """`name`, or `name@<line>` (then `name@<line>.2`, ...) when taken: unique whatever the ids look like."""
    if name not in taken:
        return name
    candidate, extra = f"{name}@{number}", 1
    while candidate in taken:
        extra += 1
        candidate = f"{name}@{number}.{extra}"
    return candidate
