"""A PDF's lines, page by page -> Extraction: running headers and footers found, lines joined into paragraphs
(and over page breaks), the page table and the character map assembled. The rules are described in qa.ingest.pdf.
"""

from __future__ import annotations

import math
import re
from array import array
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qa.ingest.extraction import Extraction
from qa.ingest.pdf_lines import Line
from qa.layout import CharMap, Page

JOINING_HYPHENS = {"-", "\u2010"}
KEPT_DASHES = {"-", "\u2010", "\u2011", "\u2012", "\u2013"}
SENTENCE_END = re.compile(r"[.!?:;][\"'”’)\]]*$")
MARGIN = 0.09  # running headers and footers lie within 9% of an edge of the page (body text starts near 1 in.)
CONTINUATION_TOP = 0.3  # a sentence runs on over a page break into a line starting in the top 30% of the page
HEADER_SHARE = 0.4  # a line repeated in a margin of this share of the pages (and at least 3) is a running header


@dataclass(slots=True)
class PageLines:
    """One page's lines, with its number (1-based), printed label and displayed size in points."""

    index: int
    label: str
    width: float
    height: float
    lines: list[Line]


def running_lines(pages: list[PageLines]) -> set[tuple[int, int]]:
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


def assemble(
    pages: list[PageLines], running: set[tuple[int, int]], title: str | None, warnings: list[str], extractor: str
) -> Extraction:
    """The document's Extraction: its lines joined, `running` lines and empty pages' notes skipped."""
    out = _Text()
    table: list[Page] = []
    skipped: list[tuple[int, int, str]] = []
    blank: list[int] = []
    for position, page in enumerate(pages):
        start = out.length
        if not page.lines:
            note = f"[page {page.index}: no text layer]\n"
            blank.append(page.index)
            skipped.append((out.length, out.length + len(note), "no text layer"))
            out.add_inserted(note)
        following_page = _body(pages[position + 1], running) if position + 1 < len(pages) else []
        for line, text, joiner, is_running in _page_order(page, running, following_page):
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
        extractor=extractor,
        pages=tuple(table),
        skipped=tuple(_merge(skipped)),
        warnings=tuple(warnings),
        chars=out.char_map(),
    )


def _body(page: PageLines, running: set[tuple[int, int]]) -> list[Line]:
    return [line for number, line in enumerate(page.lines) if (page.index, number) not in running]


def _page_order(
    page: PageLines, running: set[tuple[int, int]], next_body: list[Line]
) -> list[tuple[Line, str, str, bool]]:
    """The page's lines in text order as (line, text, joiner, is running): the body lines joined into paragraphs
    (the last one running on into `next_body`, the next page's, when a sentence continues there), and the running
    lines set after the body's first paragraph (or its first sentence end), not where they were drawn.

    subtle: drawn in order, the footer of one page and the header of the next fall between the halves of a
    sentence that runs over the page break; set after the first paragraph, they stay on their page and in the
    text (skipped), and the sentence stays one span, citable with boxes on both pages.
    """
    lines = page.lines
    is_running = [(page.index, number) in running for number in range(len(lines))]
    last_body = max((number for number, flag in enumerate(is_running) if not flag), default=-1)
    heads = [(number, line) for number, line in enumerate(lines) if is_running[number]]
    order: list[tuple[Line, str, str, bool]] = []
    for number, line in enumerate(lines[: last_body + 1]):
        if is_running[number]:
            continue
        text, joiner = line.text, "\n"
        if number < last_body and not is_running[number + 1]:  # a running line between two body lines ends one
            following = lines[number + 1]
            text, joiner = (text, "") if line.glued else _join(line, following)
        elif number == last_body and next_body:  # a sentence running on over the page break
            text, joiner = _join(line, next_body[0], next_page=True)
        order.append((line, text, joiner, False))
    place = _after_first_paragraph(order)
    run: list[tuple[Line, str, str, bool]] = []
    for position, (number, line) in enumerate(heads):
        glued = line.glued and position + 1 < len(heads) and heads[position + 1][0] == number + 1
        run.append((line, line.text, "" if glued else "\n", True))
    return order[:place] + run + order[place:]


def _after_first_paragraph(order: list[tuple[Line, str, str, bool]]) -> int:
    """Where the running lines go: after the first body line ending a paragraph; else after the first ending a
    sentence (which then ends its line); else at the end of the page, which then ends its paragraph."""
    for position, (_, _, joiner, _) in enumerate(order):
        if joiner == "\n":
            return position + 1
    for position, (line, text, joiner, running) in enumerate(order[:-1]):
        if SENTENCE_END.search(text) and joiner == " ":
            order[position] = (line, text, "\n", running)
            return position + 1
    if order:  # a page without a sentence end: its last line ends it, as drawn
        line, text, _, running = order[-1]
        order[-1] = (line, line.text, "\n", running)
    return len(order)


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
    if following.top > CONTINUATION_TOP:  # pdfium may read a page's footnotes first: not where a sentence goes on
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
