"""Document -> list[Sentence]: sentence spans with exact offsets, boilerplate excluded.

Lines are segmented one at a time with pysbd; each span is checked against the text, trimmed of whitespace and
list markers, and classed as a citable sentence or a heading (a short line without closing punctuation).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from qa.ingest import dominant_script
from qa.text import segmenter
from qa.types import Document, Progress, Sentence

LIST_MARKER = re.compile(r"[\s\u00a0]*(?:[•●▪◦·*\-–—]|\(?\d{1,2}[.)])[\s\u00a0]+")
LINE = re.compile(r"[^\n]+")
WINDOW = 4000  # characters handed to pysbd at once
BOUNDARY = re.compile(r"[.!?…][\"”’)\]]*\s+")
CLOSING = ("」", "”", "’", '"', "'", ")", "]", " ", "\u00a0")


def split_sentences(document: Document, *, progress: Progress | None = None) -> list[Sentence]:
    """Sentences and headings of `document`, in order, outside its skipped ranges.

    Work is linear in the text's length (no step looks back over the whole line, which made a 20 MB one-line
    article take hours); `progress` gets (characters done, characters in the text) as lines are split.
    """
    text = document.text
    main_script = dominant_script(text)
    skipped = Skipped(document.skipped)
    sentences: list[Sentence] = []
    for line in LINE.finditer(text):
        line_text = line.group()
        first = line.start() + len(line_text) - len(line_text.lstrip())  # the line's first visible character
        last = line.start() + len(line_text.rstrip())
        listed = LIST_MARKER.match(text, line.start()) is not None
        for start, end in _line_spans(text, line.start(), line.end(), progress):
            if skipped.overlaps(start, end) or dominant_script(text[start:end]) != main_script:
                continue
            whole_line = start == first and end == last
            headline = whole_line and not text[start:end].endswith(".") and _is_title_case(text[start:end])
            kind = "sentence" if listed or (_is_sentence(text[start:end]) and not headline) else "heading"
            sentences.append(Sentence(document.source, start, end, kind))
        if progress:
            progress(line.end(), len(text))
    if progress:
        progress(len(text), len(text))
    return sentences


def _line_spans(text: str, line_start: int, line_end: int, progress: Progress | None) -> list[tuple[int, int]]:
    line = text[line_start:line_end]
    lead = len(line) - len(line.lstrip())  # a span starting at or before it starts the line (list marker check)
    spans: list[tuple[int, int]] = []
    for window_start, window_end in _windows(line):
        window = line[window_start:window_end]
        cursor = 0
        for piece in segmenter().segment(window):
            start, end = piece.start, piece.end
            if window[start:end] != piece.sent:  # pysbd's spans can drift on repeated text: locate it ourselves
                start = window.find(piece.sent, cursor)
                if start < 0:
                    continue
                end = start + len(piece.sent)
            cursor = end
            start, end = window_start + start, window_start + end
            marker = LIST_MARKER.match(line, start) if start <= lead else None
            if marker:
                start = marker.end()
            span = _trim(line, start, end)
            if span:
                spans.append((line_start + span[0], line_start + span[1]))
        if progress and window_end < len(line):
            progress(line_start + window_end, len(text))
    return spans


class Skipped:
    """A document's skipped ranges (sorted, disjoint), asked "does [start, end) touch one?" in O(log n)."""

    def __init__(self, ranges: Sequence[tuple[int, int, str]]) -> None:
        self.starts = [start for start, _, _ in ranges]
        self.ends = [end for _, end, _ in ranges]

    def overlaps(self, start: int, end: int) -> bool:
        index = bisect.bisect_right(self.ends, start)  # the first range ending after `start`
        return index < len(self.starts) and self.starts[index] < end


def _windows(line: str) -> list[tuple[int, int]]:
    """Pieces of at most WINDOW characters, cut after sentence punctuation where possible.

    subtle: pysbd's time grows with the square of the line's length (a 200 KB line took 9.5 s), and scraped
    articles can be one huge line.
    """
    windows: list[tuple[int, int]] = []
    start = 0
    while len(line) - start > WINDOW:
        cuts = [m.end() for m in BOUNDARY.finditer(line, start + WINDOW // 2, start + WINDOW)]
        space = line.rfind(" ", start + WINDOW // 2, start + WINDOW)
        cut = cuts[-1] if cuts else space + 1 if space > start else start + WINDOW
        windows.append((start, cut))
        start = cut
    windows.append((start, len(line)))
    return windows


def _trim(line: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and line[start].isspace():
        start += 1
    while end > start and line[end - 1].isspace():
        end -= 1
    if not any(char.isalnum() for char in line[start:end]):
        return None
    return start, end


def _is_sentence(span: str) -> bool:
    body = span.rstrip("".join(CLOSING))
    return body.endswith((".", "!", "?", "…", ":", ";")) or len(span.split()) >= 16


def _is_title_case(span: str) -> bool:
    """Headline style: most longer words capitalised ("Will Xi Jinping Lose Face?")."""
    words = [w for w in span.split() if len(w) > 3 and w[0].isalpha()]
    return len(words) >= 2 and sum(w[0].isupper() for w in words) >= 0.7 * len(words)
