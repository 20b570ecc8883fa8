"""The file formats a corpus may hold: one `Reader` per format. Adding a format is its module plus a line here."""

from __future__ import annotations

from pathlib import Path

from qa.ingest.base import Reader
from qa.ingest.docx import DocxReader
from qa.ingest.epub import EpubReader
from qa.ingest.html import HtmlReader
from qa.ingest.jsonl import JsonlReader
from qa.ingest.pdf import PdfReader
from qa.ingest.plaintext import PlainTextReader

READERS: tuple[Reader, ...] = (PlainTextReader(), JsonlReader(), PdfReader(), HtmlReader(), DocxReader(), EpubReader())


def reader_for(path: Path) -> Reader | None:
    """The reader of `path`'s format (by its suffix, in any case), or None for a file that is no article."""
    suffix = path.suffix.lower()
    return next((reader for reader in READERS if suffix in reader.suffixes), None)


def describe_formats() -> str:
    """The readable suffixes for messages: ".txt, .md, ... or .epub"."""
    suffixes = [suffix for reader in READERS for suffix in reader.suffixes]
    return ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}" if len(suffixes) > 1 else suffixes[0]
