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
import re
import struct
import unicodedata
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from qa.ingest.extraction import (
    LIGATURES,
    CharMap,
    EncryptedDocument,
    Extraction,
    Page,
    UnreadableDocument,
)
from qa.types import Progress

logger = logging.getLogger(__name__)
Floats = npt.NDArray[np.float64]

EXTRACTOR = f"pypdfium2 {pdfium.PYPDFIUM_INFO} (pdfium {pdfium.PDFIUM_INFO.build})"
# pdfium reports a hyphen that ends a line as U+FFFE (joining the two lines) or U+0002; a soft hyphen is U+00AD.
HYPHEN_MARKS = {"\ufffe", "\x02", "\u00ad"}
MARK = "\ufffe"
JOINING_HYPHENS = {"-", "\u2010"}
KEPT_DASHES = {"-", "\u2010", "\u2011", "\u2012", "\u2013"}
SENTENCE_END = re.compile(r"[.!?:;][\"'”’)\]]*$")
SPACE_LIKE = {"\t", "\u00a0", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006", "\u2007"}
MARGIN = 0.09  # running headers and footers lie within 9% of an edge of the page (body text starts near 1 in.)
HEADER_SHARE = 0.4  # a line repeated in a margin of this share of the pages (and at least 3) is a running header
MAX_RENDER_PIXELS = 40_000_000
PDFIUM_ERRORS = {
    pdfium_c.FPDF_ERR_FILE: "the file cannot be opened",
    pdfium_c.FPDF_ERR_FORMAT: "it is not a PDF or it is damaged (truncated?)",
    pdfium_c.FPDF_ERR_SECURITY: "it uses an unsupported security handler",
}


@dataclass(slots=True)
class Line:
    """One line of a page as pdfium ordered it: cleaned text, each character's box on the displayed page, and the
    line's extent on the upright page (before /Rotate, where the text runs left to right), 0-1 from the top-left."""

    text: str
    boxes: npt.NDArray[np.float32]  # (len(text), 4): x0, y0, x1, y1 as displayed; NaN for spaces
    left: float
    right: float
    top: float
    bottom: float
    row: bool  # a gap wider than 1.5 line heights separates two of its characters: a table row
    glued: bool = False  # pdfium joined the next line to this one (a word hyphenated across them): no separator

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(slots=True)
class PageLines:
    index: int
    label: str
    width: float
    height: float
    lines: list[Line]


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
    headers = _running_lines(pages)
    return _assemble(pages, headers, title, warnings)


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
    return title or None


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
    display = _Display(page)
    try:
        textpage = page.get_textpage()
        try:
            lines = _lines(textpage, display)
        finally:
            textpage.close()
    except pdfium.PdfiumError as exc:
        warnings.append(f"the text of page {index + 1} cannot be read ({exc}); it is left out.")
        lines = []
    finally:
        page.close()
    return PageLines(index + 1, label, display.width, display.height, lines)


class _Display:
    """Maps PDF user-space points to 0-1 coordinates of the page as displayed (crop box, /Rotate)."""

    def __init__(self, page: pdfium.PdfPage) -> None:
        self.left, self.bottom, right, top = page.get_cropbox()
        self.box_width = max(right - self.left, 1e-6)
        self.box_height = max(top - self.bottom, 1e-6)
        self.rotation = page.get_rotation() % 360
        turned = self.rotation in (90, 270)
        self.width = self.box_height if turned else self.box_width
        self.height = self.box_width if turned else self.box_height

    def upright(
        self, left: Floats, bottom: Floats, right: Floats, top: Floats
    ) -> tuple[Floats, Floats, Floats, Floats]:
        """(u0, v0, u1, v1) of boxes, 0-1 from the top-left corner of the crop box, before /Rotate."""
        u0, u1 = (left - self.left) / self.box_width, (right - self.left) / self.box_width
        v0, v1 = 1 - (top - self.bottom) / self.box_height, 1 - (bottom - self.bottom) / self.box_height
        return u0, v0, u1, v1

    def turn(self, u0: Floats, v0: Floats, u1: Floats, v1: Floats) -> tuple[Floats, Floats, Floats, Floats]:
        """(x0, y0, x1, y1) of upright boxes on the page as displayed (turned clockwise by /Rotate)."""
        if self.rotation == 90:
            return 1 - v1, u0, 1 - v0, u1
        if self.rotation == 180:
            return 1 - u1, 1 - v1, 1 - u0, 1 - v0
        if self.rotation == 270:
            return v0, 1 - u1, v1, 1 - u0
        return u0, v0, u1, v1


def _page_text(textpage: pdfium.PdfTextPage, count: int) -> str:
    """The page's characters, one per pdfium character index (UCS-2 text is rebuilt when it does not line up)."""
    text: str = textpage.get_text_range()
    if len(text) == count:
        return text
    return "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage, index)) for index in range(count))


def _lines(textpage: pdfium.PdfTextPage, display: _Display) -> list[Line]:
    """The page's lines in pdfium's order, each character cleaned and placed (the hot loop of extraction)."""
    count = textpage.count_chars()
    text = _page_text(textpage, count)
    chars: list[str] = []
    sources = array("i")  # the pdfium character each character of `chars` comes from, -1 for inserted spaces
    spans: list[tuple[int, int]] = []  # each line's range in `chars`
    parts: dict[int, tuple[int, int]] = {}  # ligature letters: position -> (letter, letters)
    line_start = 0
    for index, char in enumerate(text):
        if " " < char <= "~":
            chars.append(char)
            sources.append(index)
            continue
        if char == "\n" or char == "\r":
            line_start = _end_line(chars, sources, spans, line_start)
            continue
        expanded = _clean_char(char)
        if expanded == " ":
            if len(chars) > line_start and chars[-1] != " ":
                chars.append(" ")
                sources.append(-1)
        elif len(expanded) == 1:
            chars.append(expanded)
            sources.append(index)
        else:
            for letter, each in enumerate(expanded):
                parts[len(chars)] = (letter, len(expanded))
                chars.append(each)
                sources.append(index)
    _end_line(chars, sources, spans, line_start)
    if not spans:
        return []
    u0, v0, u1, v1 = _char_boxes(textpage, np.frombuffer(sources, dtype=np.int32), display)
    for position, (letter, letters) in parts.items():  # a ligature's letters share its box
        step = (u1[position] - u0[position]) / letters
        u0[position], u1[position] = u0[position] + letter * step, u0[position] + (letter + 1) * step
    _split_shared_boxes(u0, u1)
    page_text, dropped = _resolve_hyphens(chars)
    # clipped to the page: loose boxes reach past its edge, and some PDFs draw text off the page
    boxes = np.clip(np.stack(display.turn(u0, v0, u1, v1), axis=1), 0.0, 1.0).astype(np.float32)
    spans, glued = _visual_lines(spans, (u0, v0, u1, v1))
    starts = np.array([start for start, _ in spans], dtype=np.intp)
    # per line, ignoring NaN (fmin/fmax keep the other operand); a line of inserted characters only gets NaN
    tops, bottoms = np.fmin.reduceat(v0, starts), np.fmax.reduceat(v1, starts)
    lefts, rights = np.fmin.reduceat(u0, starts), np.fmax.reduceat(u1, starts)
    gaps = _widest_gaps(u0, u1, spans) * display.box_width
    lines = []
    for number, (start, end) in enumerate(spans):
        top, bottom = float(tops[number]), float(bottoms[number])
        if not bottom > top:
            continue
        line_text, line_boxes = page_text[start:end], boxes[start:end]
        marker_end = _footnote_marker_end(page_text, v0, v1, start, end)
        if marker_end is not None or (dropped and any(start <= position < end for position in dropped)):
            line_text, line_boxes = _edit_line(page_text, boxes, start, end, dropped, marker_end)
        if not line_text:
            continue
        row = bool(gaps[number] > 1.5 * (bottom - top) * display.box_height)
        extent = (float(lefts[number]), float(rights[number]), top, bottom)
        lines.append(Line(line_text, line_boxes, *extent, row=row, glued=number in glued))
    return lines


def _footnote_marker_end(text: str, v0: Floats, v1: Floats, start: int, end: int) -> int | None:
    """Where a line's leading superscript number (a footnote's marker, "1Preliminary") meets the text it numbers,
    which needs a space; None when the line does not start so."""
    marker_end = start
    while marker_end < end and text[marker_end].isdigit():
        marker_end += 1
    if marker_end in (start, end) or not text[marker_end].isalpha():
        return None
    marker_height = np.nanmax(v1[start:marker_end] - v0[start:marker_end])
    return marker_end if marker_height < 0.8 * (v1[marker_end] - v0[marker_end]) else None


def _edit_line(
    text: str,
    boxes: npt.NDArray[np.float32],
    start: int,
    end: int,
    dropped: set[int],
    space_before: int | None,
) -> tuple[str, npt.NDArray[np.float32]]:
    """Characters start..end-1 without the dropped ones, with an inserted space before `space_before`."""
    kept = [position for position in range(start, end) if position not in dropped]
    line_text = "".join(text[position] for position in kept)
    line_boxes = boxes[kept]
    if space_before is not None:
        at = kept.index(space_before)
        line_text = line_text[:at] + " " + line_text[at:]
        line_boxes = np.insert(line_boxes, at, np.nan, axis=0)
    return line_text, line_boxes


def _visual_lines(
    spans: list[tuple[int, int]], boxes: tuple[Floats, Floats, Floats, Floats]
) -> tuple[list[tuple[int, int]], set[int]]:
    """pdfium's lines split where a drawn character lies wholly left of the previous one and does not overlap it
    vertically (pdfium joins the lines of a word hyphenated across them; vertical text is not split), and the
    numbers of the new lines that the next one continues."""
    u0, v0, u1, v1 = boxes
    line_of = np.repeat(np.arange(len(spans)), [end - start for start, end in spans])
    drawn = np.nonzero(~np.isnan(v0))[0]
    previous, following = drawn[:-1], drawn[1:]
    below_or_above = (v0[following] >= v1[previous]) | (v1[following] <= v0[previous])
    apart = (line_of[previous] == line_of[following]) & below_or_above & (u1[following] <= u0[previous])
    cuts = set(following[apart].tolist())
    if not cuts:
        return spans, set()
    refined: list[tuple[int, int]] = []
    glued: set[int] = set()
    for start, end in spans:
        for cut in sorted(cut for cut in cuts if start < cut < end):
            glued.add(len(refined))
            refined.append((start, cut))
            start = cut
        refined.append((start, end))
    return refined, glued


def _widest_gaps(u0: Floats, u1: Floats, spans: list[tuple[int, int]]) -> Floats:
    """Per line, the widest horizontal gap between two consecutive drawn characters (0-1 of the page width)."""
    widest = np.zeros(len(spans))
    line_of = np.repeat(np.arange(len(spans)), [end - start for start, end in spans])
    drawn = np.nonzero(~np.isnan(u0))[0]
    if drawn.size < 2:
        return widest
    same = line_of[drawn[1:]] == line_of[drawn[:-1]]
    gaps = u0[drawn[1:]] - u1[drawn[:-1]]
    np.maximum.at(widest, line_of[drawn[:-1]][same], gaps[same])
    return widest


def _end_line(chars: list[str], sources: array[int], spans: list[tuple[int, int]], line_start: int) -> int:
    """Close the line begun at `line_start` (trailing spaces dropped); returns where the next line begins."""
    while len(chars) > line_start and chars[-1] == " ":
        chars.pop()
        sources.pop()
    if len(chars) > line_start:
        spans.append((line_start, len(chars)))
    return len(chars)


def _resolve_hyphens(chars: list[str]) -> tuple[str, set[int]]:
    """The page's characters as one string with each hyphen mark decided (see the module docstring): "-" unless
    it goes, between a letter and a lowercase letter. Returns the string and the positions that go."""
    text = "".join(chars)
    dropped: set[int] = set()
    position = text.find(MARK)
    while position >= 0:
        before = text[position - 1] if position else " "
        after = text[position + 1] if position + 1 < len(text) else " "
        if before.isalpha() and after.islower():
            dropped.add(position)
        position = text.find(MARK, position + 1)
    return text.replace(MARK, "-"), dropped


def _split_shared_boxes(u0: Floats, u1: Floats) -> None:
    """pdfium spells a ligature glyph out as letters with one box: share it out evenly among them, in place."""
    same = np.nonzero((u0[1:] == u0[:-1]) & (u1[1:] == u1[:-1]) & (u1[1:] > u0[1:]))[0] + 1
    position = 0
    for index in same.tolist():
        if index < position:
            continue
        end = index + 1
        while end < len(u0) and u0[end] == u0[index] and u1[end] == u1[index]:
            end += 1
        first = index - 1
        step = (u1[first] - u0[first]) / (end - first)
        left = u0[first]
        for letter in range(end - first):
            u0[first + letter], u1[first + letter] = left + letter * step, left + (letter + 1) * step
        position = end


def _char_boxes(
    textpage: pdfium.PdfTextPage, sources: npt.NDArray[np.int32], display: _Display
) -> tuple[Floats, Floats, Floats, Floats]:
    """(u0, v0, u1, v1) of every character on the upright page; NaN where nothing was drawn."""
    drawn = np.nonzero(sources >= 0)[0]
    rects = (pdfium_c.FS_RECTF * max(len(drawn), 1))()
    get_box, handle = pdfium_c.FPDFText_GetLooseCharBox, textpage.raw
    for slot, index in enumerate(sources[drawn].tolist()):
        get_box(handle, index, rects[slot])
    found = np.frombuffer(rects, dtype=np.float32).reshape(-1, 4)[: len(drawn)]  # left, top, right, bottom
    left, top, right, bottom = (found[:, column].astype(np.float64) for column in range(4))
    empty = (right <= left) & (top <= bottom)  # pdfium inserted it, or the glyph has no extent
    u0, v0, u1, v1 = (
        _spread(values, empty, drawn, len(sources)) for values in display.upright(left, bottom, right, top)
    )
    return u0, v0, u1, v1


def _spread(values: Floats, empty: npt.NDArray[np.bool_], drawn: npt.NDArray[np.intp], size: int) -> Floats:
    column = np.full(size, np.nan)
    column[drawn] = np.where(empty, np.nan, values)
    return column


def _clean_char(char: str) -> str:
    """What a non-ASCII or control character becomes in the text ("" to drop it)."""
    if char in HYPHEN_MARKS:
        return MARK  # resolved by _resolve_hyphens once the characters around it are known
    if char == " " or char in SPACE_LIKE:
        return " "
    if char in LIGATURES:
        return LIGATURES[char]
    category = unicodedata.category(char)
    if category in ("Cc", "Cs", "Cn", "Co") or char in ("\u200b", "\ufeff"):
        return ""
    if category == "Zs":
        return " "
    return char


def _running_lines(pages: list[PageLines]) -> set[tuple[int, int]]:
    """(page index, line number) of running headers and footers: a line in a margin of the page whose text
    (digits masked, so page numbers match) recurs in that margin on at least 40% of the pages with text, and 3."""
    with_text = [page for page in pages if page.lines]
    needed = max(3, math.ceil(HEADER_SHARE * len(with_text)))
    if len(with_text) < 3:
        return set()
    places: dict[tuple[str, str], set[tuple[int, int]]] = {}
    for page in with_text:
        for number, line in enumerate(page.lines):
            zone = _margin(line)
            if zone:
                key = (zone, re.sub(r"\d+", "#", line.text.casefold()))
                places.setdefault(key, set()).add((page.index, number))
    running: set[tuple[int, int]] = set()
    for found in places.values():
        if len({page for page, _ in found}) >= needed:
            running |= found
    return running


def _margin(line: Line) -> str | None:
    """Which margin of the upright page holds the whole line, if any."""
    if line.bottom < MARGIN:
        return "top"
    if line.top > 1 - MARGIN:
        return "bottom"
    if line.right < MARGIN:
        return "left"
    if line.left > 1 - MARGIN:
        return "right"
    return None


class _Text:
    """The text and character map being assembled."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.length = 0
        self.drawn: list[tuple[int, npt.NDArray[np.float32]]] = []  # (offset, boxes) of each line, by number
        self.line_page: array[int] = array("i")

    def add_line(self, text: str, line: Line, page: int) -> None:
        self.line_page.append(page)
        self.drawn.append((self.length, line.boxes[: len(text)]))
        self.pieces.append(text)
        self.length += len(text)

    def add_inserted(self, text: str) -> None:
        self.pieces.append(text)
        self.length += len(text)

    def char_map(self) -> CharMap:
        char_line = np.full(self.length, -1, dtype=np.int32)
        char_box = np.full((self.length, 4), np.nan, dtype=np.float32)
        for number, (offset, boxes) in enumerate(self.drawn):
            char_box[offset : offset + len(boxes)] = boxes
            char_line[offset : offset + len(boxes)] = number
        char_line[np.isnan(char_box[:, 0])] = -1  # spaces within lines have no box
        return CharMap(char_line, char_box, np.frombuffer(self.line_page, dtype=np.int32).copy())


def _assemble(
    pages: list[PageLines], running: set[tuple[int, int]], title: str | None, warnings: list[str]
) -> Extraction:
    out = _Text()
    table: list[Page] = []
    skipped: list[tuple[int, int, str]] = []
    blank: list[int] = []
    for position, page in enumerate(pages):
        start = out.length
        next_page = pages[position + 1] if position + 1 < len(pages) else None
        if not page.lines:
            note = f"[page {page.index}: no text layer]\n"
            blank.append(page.index)
            skipped.append((out.length, out.length + len(note), "no text layer"))
            out.add_inserted(note)
        for number, line in enumerate(page.lines):
            is_running = (page.index, number) in running
            following = page.lines[number + 1] if number + 1 < len(page.lines) else None
            text, joiner = line.text, "\n"
            if following is not None and line.glued and is_running == ((page.index, number + 1) in running):
                joiner = ""
            elif following is not None and not is_running and (page.index, number + 1) not in running:
                text, joiner = _join(line, following)
            elif following is None and not is_running and next_page and next_page.lines:
                if (next_page.index, 0) not in running:  # a sentence running on over the page break
                    text, joiner = _join(line, next_page.lines[0], next_page=True)
            line_start = out.length
            out.add_line(text, line, page.index)
            out.add_inserted(joiner)
            if is_running:
                skipped.append((line_start, out.length, "running header or footer"))
        table.append(Page(page.index, page.label, start, out.length, page.width, page.height))
    warnings.extend(_blank_page_warnings(blank))
    text = "".join(out.pieces)
    return Extraction(
        text=text,
        title=title,
        extractor=EXTRACTOR,
        pages=tuple(table),
        skipped=tuple(_merge(skipped)),
        warnings=tuple(warnings),
        chars=out.char_map(),
    )


def _blank_page_warnings(blank: list[int]) -> list[str]:
    """One warning per run of pages without text: a scanned book warns once, not once a page."""
    runs: list[list[int]] = []
    for index in blank:
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return [
        f"page {run[0]} has no text layer (scanned? no OCR is done); it has no citable text."
        if len(run) == 1
        else f"pages {run[0]}-{run[-1]} have no text layer (scanned? no OCR is done); they have no citable text."
        for run in runs
    ]


def _join(line: Line, following: Line, *, next_page: bool = False) -> tuple[str, str]:
    """The line's text as it enters the text, and what separates it from the next line ("\\n", " " or "")."""
    text = line.text
    if _continues_on_next_page(line, following) if next_page else not _ends_paragraph(line, following):
        return _hyphen_join(text, following.text)
    return text, "\n"


def _hyphen_join(text: str, following: str) -> tuple[str, str]:
    """How a line runs on into the next one of its paragraph: the line's text and the separator."""
    last = text[-1]
    before = text[-2] if len(text) > 1 else " "
    first = following[0]
    if last in JOINING_HYPHENS and before.isalpha() and first.islower():
        return text[:-1], ""
    if last in KEPT_DASHES and before.isalnum():
        return text, ""
    return text, " "


def _continues_on_next_page(line: Line, following: Line) -> bool:
    """The page's last line runs on into the next page's first: no sentence end, no table, the same font size."""
    if line.row or following.row or SENTENCE_END.search(line.text):
        return False
    return abs(following.height - line.height) <= 0.25 * line.height


def _ends_paragraph(line: Line, following: Line) -> bool:
    if line.row or following.row:  # table rows stay one a line
        return True
    height = max(line.height, 1e-6)
    sentence_end = SENTENCE_END.search(line.text) is not None
    if following.left >= line.right:  # the next column, side by side
        return sentence_end
    if following.top < line.top - 0.5 * height:  # back up the page: the top of the next column, or not text flow
        return sentence_end or following.left < line.right - 0.5 * (line.right - line.left)
    if following.top - line.bottom > 0.5 * max(height, following.height):
        return True
    if abs(following.height - height) > 0.25 * height:  # the font size changes: a heading
        return True
    width = following.right - following.left
    if line.right < following.right - 0.4 * width:  # a short line: a heading or a paragraph's last line
        return True
    indented = following.left > line.left + 0.5 * height
    return sentence_end and (indented or line.right < following.right - 2 * height)


def _merge(ranges: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    merged: list[tuple[int, int, str]] = []
    for start, end, reason in sorted(ranges):
        if merged and start <= merged[-1][1] and reason == merged[-1][2]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end), reason)
        else:
            merged.append((start, end, reason))
    return merged


def _png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """A minimal RGB PNG encoder (zlib only), so that rendering needs no imaging library."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
