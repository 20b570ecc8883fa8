"""Where a paged document's text lies on its pages: the page table (`Page`), highlight boxes (`Box`) and the
character map (`CharMap`: the line, box and page of every character of a PDF's text), and the boxes of a span.

Shared by ingestion (which builds them), the stores (which save them) and citations (which carry pages and boxes).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qa.errors import ExtractionError


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


def boxes_for(chars: CharMap | None, start: int, end: int) -> list[Box]:
    """One box per line that text[start:end] covers, on every page it covers, in text order."""
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


def pages_of(pages: Sequence[Page], start: int, end: int) -> tuple[Page, ...]:
    """The pages text[start:end] touches, in order (empty for a document without pages)."""
    return tuple(page for page in pages if page.start < end and start < page.end)
