"""Extractor output -> Extraction: the canonical text of one document, its pages and, for PDFs, where each
character was drawn; plus the text rules every extractor applies before offsets exist.

Whitespace rules (the same for every format): CRLF and CR become LF; tabs, no-break and other spaces become one
space; runs of spaces collapse; lines carry no leading or trailing space; every block (paragraph, heading, list
item, table row, PDF paragraph) ends with one "\\n", with no empty lines. Control characters, noncharacters, soft
hyphens, zero-width spaces and byte-order marks are dropped; the ligatures U+FB00-FB06 are spelt out ("ﬁ" -> "fi").
"""

from __future__ import annotations

import bisect
import hashlib
import io
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from qa.errors import CorpusError

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
NO_TEXT = "no text found in the document (only images, or markup without text?); it has no citable text"


class ExtractionError(CorpusError):
    """A document could not be read; the message names the file and what to do."""


class UnreadableDocument(ExtractionError):
    """The file is not a readable document of its format (truncated, malformed, wrong type)."""


class EncryptedDocument(ExtractionError):
    """The document is encrypted (a password or DRM)."""


class DocumentTooLarge(ExtractionError):
    """Unpacking the document would take more memory than allowed (a decompression bomb)."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a PDF: its place in the text. PDFs only."""

    index: int  # 1-based
    label: str  # the printed page label, or str(index) when the PDF has none
    start: int  # offsets into the extracted text: text[start:end] is the page's text
    end: int
    width: float  # points, as displayed (after the page's rotation)
    height: float


@dataclass(frozen=True, slots=True)
class Box:
    """A highlight over one line of a quote, in 0-1 page coordinates from the top-left corner."""

    page: int  # 1-based
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True, slots=True, eq=False)
class CharMap:
    """Where each character of a PDF's text was drawn, as numpy arrays (about 20 bytes a character).

    Character i lies on line `char_line[i]` (-1 for characters the extractor inserted: guessed word spaces, line,
    paragraph and page breaks, notes; spaces carry no box either) within box `char_box[i]` (x0, y0, x1, y1: 0-1 of
    the page as displayed, from the top-left; loose boxes, the font's full height). Line j lies on page
    `line_page[j]` (1-based); a line's characters are contiguous in the text. Saved with `to_bytes` (an .npz
    archive, read back without pickle).
    """

    char_line: npt.NDArray[np.int32]
    char_box: npt.NDArray[np.float32]
    line_page: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return int(self.char_line.shape[0])

    def char_pages(self) -> npt.NDArray[np.int32]:
        """The 1-based page of every character, -1 for inserted ones."""
        pages = np.full(len(self), -1, dtype=np.int32)
        drawn = self.char_line >= 0
        pages[drawn] = self.line_page[self.char_line[drawn]]
        return pages

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{name: getattr(self, name) for name in CHARMAP_FIELDS})
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CharMap:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in CHARMAP_FIELDS}
        except (OSError, KeyError, ValueError) as exc:
            raise ExtractionError(f"The stored character map is unreadable ({exc}); re-index the document.") from exc
        return cls(**arrays)


CHARMAP_FIELDS = ("char_line", "char_box", "line_page")


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
        return tuple(page for page in self.pages if page.start < end and start < page.end)

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


def boxes_for(source: Extraction | CharMap, start: int, end: int) -> list[Box]:
    """One box per line that text[start:end] covers, on every page it covers, in text order."""
    chars = source.chars if isinstance(source, Extraction) else source
    if chars is None or start >= end:
        return []
    lines = chars.char_line[start:end]
    drawn = np.nonzero(lines >= 0)[0]
    if drawn.size == 0:
        return []
    lines = lines[drawn]
    boxes = chars.char_box[start:end][drawn]
    cuts = np.nonzero(np.diff(lines))[0] + 1  # a line's characters are contiguous in the text
    result = []
    for first, last in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [lines.size])), strict=True):
        group = boxes[first:last]
        x0, y0 = group[:, 0].min(), group[:, 1].min()
        x1, y1 = group[:, 2].max(), group[:, 3].max()
        result.append(Box(int(chars.line_page[lines[first]]), float(x0), float(y0), float(x1), float(y1)))
    return result


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
