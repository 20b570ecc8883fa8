"""Document -> list[Sentence]: sentence spans with exact offsets, boilerplate excluded.

Lines are segmented one at a time with pysbd; each span is checked against the text, trimmed of whitespace and
list markers, and classed as a citable sentence or a heading (a short line without closing punctuation).
"""

from __future__ import annotations

import re

from qa.corpus import dominant_script
from qa.text import segmenter
from qa.types import Document, Sentence

LIST_MARKER = re.compile(r"[\s\u00a0]*(?:[•●▪◦·*\-–—]|\(?\d{1,2}[.)])[\s\u00a0]+")
LINE = re.compile(r"[^\n]+")
WINDOW = 4000  # characters handed to pysbd at once
BOUNDARY = re.compile(r"[.!?…][\"”’)\]]*\s+")
CLOSING = ("」", "”", "’", '"', "'", ")", "]", " ", "\u00a0")


def split_sentences(document: Document) -> list[Sentence]:
    """Sentences and headings of `document`, in order, outside its skipped ranges."""
    text = document.text
    main_script = dominant_script(text)
    sentences: list[Sentence] = []
    for line in LINE.finditer(text):
        for start, end in _line_spans(text, line.start(), line.end()):
            if _overlaps(document.skipped, start, end) or dominant_script(text[start:end]) != main_script:
                continue
            listed = LIST_MARKER.match(text, line.start()) is not None
            whole_line = text[line.start() : line.end()].strip() == text[start:end]
            headline = whole_line and not text[start:end].endswith(".") and _is_title_case(text[start:end])
            kind = "sentence" if listed or (_is_sentence(text[start:end]) and not headline) else "heading"
            sentences.append(Sentence(document.source, start, end, kind))
    return sentences


def _line_spans(text: str, line_start: int, line_end: int) -> list[tuple[int, int]]:
    line = text[line_start:line_end]
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
            marker = LIST_MARKER.match(line, start) if not line[:start].strip() else None
            if marker:
                start = marker.end()
            span = _trim(line, start, end)
            if span:
                spans.append((line_start + span[0], line_start + span[1]))
    return spans


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


def _overlaps(ranges: tuple[tuple[int, int, str], ...], start: int, end: int) -> bool:
    return any(start < range_end and range_start < end for range_start, range_end, _ in ranges)
