"""One PDF page (pypdfium2 text page) -> its lines: each character cleaned (controls dropped, ligatures spelt out,
hyphen marks decided) and placed (its loose box on the page as displayed), lines split where pdfium joined two.

The hot loop of PDF extraction: one pdfium call per character (its box), everything else per line or vectorised.
The rules are described in qa.ingest.pdf.
"""

from __future__ import annotations

import unicodedata
from array import array
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import numpy.typing as npt
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from qa.ingest.extraction import LIGATURES

Floats = npt.NDArray[np.float64]

# pdfium reports a hyphen that ends a line as U+FFFE (joining the two lines) or U+0002; a soft hyphen is U+00AD.
HYPHEN_MARKS = {"\ufffe", "\x02", "\u00ad"}
MARK = "\ufffe"
SPACE_LIKE = {"\t", "\u00a0", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006", "\u2007"}


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


class Display:
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


def page_lines(textpage: pdfium.PdfTextPage, display: Display) -> list[Line]:
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
    textpage: pdfium.PdfTextPage, sources: npt.NDArray[np.int32], display: Display
) -> tuple[Floats, Floats, Floats, Floats]:
    """(u0, v0, u1, v1) of every character on the upright page; NaN where nothing was drawn."""
    drawn = np.nonzero(sources >= 0)[0]
    rects = (pdfium_c.FS_RECTF * max(len(drawn), 1))()
    get_box, handle = pdfium_c.FPDFText_GetLooseCharBox, textpage.raw
    indexes = sources[drawn].tolist()
    list(map(get_box, repeat(handle, len(indexes)), indexes, rects))  # a C-level loop: 5% faster than a for loop
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
