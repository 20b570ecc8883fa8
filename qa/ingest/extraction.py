"""Extractor output -> Extraction -> Document: the canonical text of one document, its pages and, for PDFs, where
each character was drawn; the text rules every extractor applies before offsets exist; and `DocumentReader`, the
`Reader` every extracted format (PDF, HTML, DOCX, EPUB) shares.

Whitespace rules (the same for every format): CRLF and CR become LF; tabs, no-break and other spaces become one
space; runs of spaces collapse; lines carry no leading or trailing space; every block (paragraph, heading, list
item, table row, PDF paragraph) ends with one "\\n", with no empty lines. Control characters, noncharacters, soft
hyphens, zero-width spaces and byte-order marks are dropped; the ligatures U+FB00-FB06 are spelt out ("ﬁ" -> "fi").
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import DocumentTooLarge, ExtractionError
from qa.ingest.base import first_line, fits
from qa.ingest.boilerplate import find_boilerplate
from qa.layout import CharMap, Page, pages_of
from qa.types import Document, Progress

logger = logging.getLogger(__name__)

# Every ligature of the Alphabetic Presentation Forms block that Latin text uses, spelt out (NFKC's reading).
LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
}
DROPPED = {"\u00ad", "\u200b", "\ufeff", "\ufffe", "\uffff"}  # soft hyphen, zero-width space, BOM, noncharacters
SPECIAL = re.compile("[" + "".join(sorted(LIGATURES.keys() | DROPPED)) + "]")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
MAX_ZIP_BYTES = 200_000_000  # a DOCX or EPUB unpacks to at most this much (a decompression bomb is refused)
MAX_ZIP_MEMBERS = 20_000
RULES = 2  # the version of the text rules above and in the extractors: a change re-extracts every document
MAX_DOCUMENT_BYTES = 500_000_000  # a document file (a PDF of thousands of pages) may be larger than a text file
NO_TEXT = "no text found in the document (only images, or markup without text?); it has no citable text"


@dataclass(frozen=True, slots=True)
class Extraction:
    """The canonical text of one document: citations point into `text`, which is never re-normalised."""

    text: str
    title: str | None
    extractor: str  # name and version, e.g. "pypdfium2 5.15.2 (pdfium 8149)"
    pages: tuple[Page, ...] = ()
    skipped: tuple[tuple[int, int, str], ...] = ()  # (start, end, reason): kept in the text, never chunked or cited
    warnings: tuple[str, ...] = ()
    chars: CharMap | None = field(default=None, compare=False)  # PDFs: where each character was drawn

    def page_at(self, offset: int) -> Page | None:
        """The page holding text[offset] (None for formats without pages)."""
        index = bisect.bisect_right([page.start for page in self.pages], offset) - 1
        if index >= 0 and offset < self.pages[index].end:
            return self.pages[index]
        return None

    def pages_of(self, start: int, end: int) -> tuple[Page, ...]:
        """The pages text[start:end] touches, in order: a citation's page_start and page_end are the first and last
        (empty for formats without pages)."""
        return pages_of(self.pages, start, end)

    def to_record(self) -> dict[str, Any]:
        """Everything but the character map, as JSON-ready values (the map goes apart: `chars.to_bytes()`)."""
        return {
            "text": self.text,
            "text_sha256": hashlib.sha256(self.text.encode("utf-8")).hexdigest(),
            "title": self.title,
            "extractor": self.extractor,
            "pages": [asdict(page) for page in self.pages],
            "skipped": [list(entry) for entry in self.skipped],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], chars: CharMap | None = None) -> Extraction:
        """The Extraction `to_record` gave, checked against its text hash."""
        try:
            text = record["text"]
            if hashlib.sha256(text.encode("utf-8")).hexdigest() != record["text_sha256"]:
                raise ExtractionError("The stored text does not match its hash; re-index the document.")
            if chars is not None and len(chars) != len(text):
                raise ExtractionError("The stored character map does not fit the text; re-index the document.")
            return cls(
                text=text,
                title=record["title"],
                extractor=record["extractor"],
                pages=tuple(Page(**page) for page in record["pages"]),
                skipped=tuple((int(start), int(end), str(reason)) for start, end, reason in record["skipped"]),
                warnings=tuple(record["warnings"]),
                chars=chars,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ExtractionError(f"The stored extraction is malformed ({exc!r}); re-index the document.") from exc


def clean_text(text: str) -> str:
    """`text` under the whitespace and character rules of the module docstring (before any offset exists)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = CONTROL.sub("", text)
    text = SPECIAL.sub(lambda found: LIGATURES.get(found.group(), ""), text)  # rare: a regex finds them fast
    lines = (SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "".join(line + "\n" for line in lines if line)


def check_zip_size(members: list[tuple[str, int]], where: str) -> None:
    """Refuse an archive whose members (name, uncompressed size) would unpack past the limits."""
    total = sum(size for _, size in members)
    if len(members) > MAX_ZIP_MEMBERS or total > MAX_ZIP_BYTES:
        raise DocumentTooLarge(
            f"{where}: unpacks to {total:,} bytes in {len(members):,} parts, more than the {MAX_ZIP_BYTES:,} bytes "
            f"and {MAX_ZIP_MEMBERS:,} parts allowed (a decompression bomb?); it was not read."
        )


class DocumentReader:
    """The `Reader` of an extracted format: one file -> one Document whose text is the extraction's.

    A file that cannot be read (encrypted, damaged, a decompression bomb) still gives a Document, without text and
    with the reason in its warnings, so that the index names it and does not retry it until the file changes.
    """

    suffixes: tuple[str, ...] = ()
    version: str = ""  # the extractor's name and version and the text rules (RULES)

    def extract(self, path: Path, progress: Progress | None) -> Extraction:
        raise NotImplementedError

    def read(self, path: Path, source: str, taken: set[str], progress: Progress | None = None) -> Iterator[Document]:
        file_sha256 = hashlib.sha256(path.read_bytes()).hexdigest() if _size(path) <= MAX_DOCUMENT_BYTES else ""
        try:
            if not file_sha256:
                raise DocumentTooLarge(f"{path}: larger than {MAX_DOCUMENT_BYTES:,} bytes; split it to index it.")
            extraction = self.extract(path, progress)
        except ExtractionError as exc:
            logger.warning("Not indexing %s: %s", source, exc)
            yield unread_document(source, str(exc), self.version, file_sha256)
            return
        for warning in extraction.warnings:
            logger.warning("%s: %s", source, warning)
        if fits(extraction.text, source):
            yield document_from(source, extraction, self.version, file_sha256)


def document_from(source: str, extraction: Extraction, version: str, file_sha256: str) -> Document:
    """The Document of an extraction: its text, pages and character map kept as they are, its skipped ranges
    joined by the boilerplate found in the text (as for a text file)."""
    text = extraction.text
    skipped = sorted({*extraction.skipped, *find_boilerplate(text)})
    return Document(
        source=source,
        text=text,
        title=extraction.title or first_line(_unskipped(text, skipped)) or source,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        skipped=tuple(skipped),
        extractor=version,
        file_sha256=file_sha256,
        pages=extraction.pages,
        warnings=extraction.warnings,
        chars=extraction.chars,
    )


def _unskipped(text: str, skipped: list[tuple[int, int, str]]) -> str:
    """The text with its skipped ranges as line breaks: a running footer is no title."""
    kept, position = [], 0
    for start, end, _ in skipped:
        kept.append(text[position : max(start, position)])
        position = max(position, end)
    return "\n".join([*kept, text[position:]])


def unread_document(source: str, reason: str, version: str, file_sha256: str) -> Document:
    """A document that could not be read: no text, the reason as its warning."""
    return Document(
        source=source,
        text="",
        title=source,
        sha256=hashlib.sha256(b"").hexdigest(),
        extractor=version,
        file_sha256=file_sha256,
        warnings=(f"not read: {reason}",),
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
