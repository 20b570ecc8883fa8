"""PDF file -> Extraction with pypdfium2: the text built character by character, a page table with printed labels,
running headers and footers as skipped ranges, and where every character was drawn (for highlight boxes).

Text rules (beyond those of qa.ingest.extraction): pdfium's lines are joined into paragraphs. A line ends its
paragraph ("\\n") when it is a table row (a gap wider than 1.5 line heights inside it) or the next one is, a gap
wider than half a line follows it, the font size changes, it falls short of the next line's right edge by 40% of
the width (a heading), or, after a sentence end, the next line is indented, starts a new column or this one falls
short by two line heights; otherwise the next line follows after one space. A hyphen that ends a line is
handled one way, whether pdfium marks it (U+FFFE, U+0002), it is a soft hyphen (U+00AD) or a printed "-" or U+2010:
dropped when a letter precedes it and a lowercase letter follows ("hyphen-" + "ation" -> "hyphenation"; also
"well-" + "known" -> "wellknown"), otherwise kept and the lines joined without a space ("Anti-" + "American" ->
"Anti-American"); a dash after a letter or digit also joins without a space ("2018–" + "23" -> "2018–23"). A soft
hyphen inside a line is invisible and dropped. A page's last line runs on into the next page's first line (by
the same rules) when neither is a running line or a table row, it ends no sentence and the font size is the same;
otherwise the page ends with "\\n", so words never fuse across pages. A footnote's superscript number that starts
a line gets a space before its text ("1Preliminary" -> "1 Preliminary"). A page without text gets a one-line note,
recorded as skipped. So the text equals what was printed up to these rules: compare with whitespace collapsed, and
expect line breaks at paragraph, column and page ends.
"""

from __future__ import annotations

import logging
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from qa.errors import EncryptedDocument, UnreadableDocument
from qa.ingest.extraction import RULES, DocumentReader, Extraction
from qa.ingest.pdf_layout import PageLines, assemble, running_lines
from qa.ingest.pdf_lines import Display, page_lines
from qa.types import Progress

logger = logging.getLogger(__name__)

EXTRACTOR = f"pypdfium2 {pdfium.PYPDFIUM_INFO} (pdfium {pdfium.PDFIUM_INFO.build})"
MAX_RENDER_PIXELS = 40_000_000
PLACEHOLDER_TITLES = {"untitled", "untitled document", "title", "document"}
PDFIUM_ERRORS = {
    pdfium_c.FPDF_ERR_FILE: "the file cannot be opened",
    pdfium_c.FPDF_ERR_FORMAT: "it is not a PDF or it is damaged (truncated?)",
    pdfium_c.FPDF_ERR_SECURITY: "it uses an unsupported security handler",
}


def extract_pdf(path: Path, *, password: str | None = None, progress: Progress | None = None) -> Extraction:
    """Extract `path`; raises EncryptedDocument or UnreadableDocument, warns about pages without text."""
    document = _open(path, password)
    try:
        count = len(document)
        warnings: list[str] = []
        pages = []
        for index in range(count):
            pages.append(_read_page(document, index, warnings))
            if progress:
                progress(index + 1, count)
        title = _title(document)
    finally:
        document.close()
    headers = running_lines(pages)
    return assemble(pages, headers, title, warnings, EXTRACTOR)


def render_page(path: Path, page: int, *, scale: float = 1.5) -> bytes:
    """Page `page` (1-based) of `path` as a PNG image, `scale` pixels per point (capped at 40 megapixels)."""
    document = _open(path, None)
    try:
        if not 1 <= page <= len(document):
            raise UnreadableDocument(f"{path}: there is no page {page} (the PDF has {len(document)} pages).")
        pdf_page = document[page - 1]
        width, height = pdf_page.get_size()
        scale = min(scale, math.sqrt(MAX_RENDER_PIXELS / max(width * height, 1.0)))
        bitmap = pdf_page.render(scale=scale, rev_byteorder=True)  # RGB(x) in memory order
        pixels = bitmap.to_numpy()
    finally:
        document.close()
    return _png(np.ascontiguousarray(pixels[:, :, :3]))


def _open(path: Path, password: str | None) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(path, password=password)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == pdfium_c.FPDF_ERR_PASSWORD:
            raise EncryptedDocument(
                f"{path}: the PDF is encrypted with a password; save an unencrypted copy to index it."
            ) from exc
        reason = PDFIUM_ERRORS.get(code, str(exc)) if code is not None else str(exc)
        raise UnreadableDocument(f"{path}: cannot read the PDF: {reason}.") from exc
    except OSError as exc:  # missing, a folder, unreadable
        raise UnreadableDocument(f"{path}: cannot read the PDF: {exc.strerror or 'no such file'}.") from exc


def _title(document: pdfium.PdfDocument) -> str | None:
    try:
        title = document.get_metadata_value("Title").strip()
    except (pdfium.PdfiumError, ValueError):
        return None
    # tools write a placeholder when the author gave none (reportlab "untitled"): then the first line is the title
    return title if title and title.casefold() not in PLACEHOLDER_TITLES else None


def _read_page(document: pdfium.PdfDocument, index: int, warnings: list[str]) -> PageLines:
    try:
        label = document.get_page_label(index) or str(index + 1)
    except pdfium.PdfiumError:
        label = str(index + 1)
    try:
        page = document[index]
    except pdfium.PdfiumError as exc:
        warnings.append(f"page {index + 1} cannot be read ({exc}); it is left out.")
        return PageLines(index + 1, label, 0.0, 0.0, [])
    display = Display(page)
    try:
        textpage = page.get_textpage()
        try:
            lines = page_lines(textpage, display)
        finally:
            textpage.close()
    except pdfium.PdfiumError as exc:
        warnings.append(f"the text of page {index + 1} cannot be read ({exc}); it is left out.")
        lines = []
    finally:
        page.close()
    return PageLines(index + 1, label, display.width, display.height, lines)


def _png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """A minimal RGB PNG encoder (zlib only), so that rendering needs no imaging library."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


class PdfReader(DocumentReader):
    """A .pdf file -> one Document with its page table and character map."""

    suffixes: tuple[str, ...] = (".pdf",)
    version = f"{EXTRACTOR}, rules {RULES}"

    def extract(self, path: Path, progress: Progress | None) -> Extraction:
        return extract_pdf(path, progress=progress)
