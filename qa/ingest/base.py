"""What every format reader shares: the `Reader` protocol, the file checks (size, binary, UTF-8), the length limit
of one article, and `make_document` (title and boilerplate ranges found, the text kept exactly as read)."""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from qa.ingest.boilerplate import find_boilerplate
from qa.text import addressed_to_assistant, poses_as_citation
from qa.types import Document, Progress

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 50_000_000  # a JSONL file may hold many articles
# One article is at most this long (about 1,000 long news articles): above it, splitting sentences (6-8 s of CPU
# per MB) and embedding (about 2 minutes per MB on 2 cores) would run for long, so it is skipped with the reason.
MAX_ARTICLE_CHARS = 5_000_000
LINE = re.compile(r"[^\r\n]+")


class Reader(Protocol):
    """One file format: the file name suffixes it reads and how a file becomes documents."""

    suffixes: tuple[str, ...]  # lower case, with the dot: (".txt", ".md")
    # The extractor's name and version for formats worth extracting once (PDF, ...): the index keeps their documents,
    # and a file whose bytes and reader version are unchanged is not read again. "" for formats read every time.
    version: str

    def read(self, path: Path, source: str, taken: set[str], progress: Progress | None = None) -> Iterator[Document]:
        """The documents of the file at `path`, named from `source` (its path relative to the corpus root).

        `taken` holds the source names already in use; a reader naming several documents from one file adds each
        name it gives and never gives a taken one. Unreadable content is skipped with a warning naming it.
        `progress` may get (done, total) within the file (pages of a PDF).
        """
        ...


def make_document(source: str, text: str, title: str | None = None) -> Document:
    """Build a Document, finding its title and boilerplate ranges.

    A title is shown to the model beside every sentence of its article, so one addressed to an assistant or posing
    as a citation is not used, and the headline is read outside the skipped ranges."""
    skipped = tuple(find_boilerplate(text))
    if title and (addressed_to_assistant(title) or poses_as_citation(title) or "<!--" in title):
        logger.warning("Not using the title of %s: it is addressed to an assistant or poses as a citation.", source)
        title = None
    return Document(
        source=source,
        text=text,
        title=title or first_line(text, skipped) or source,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        skipped=skipped,
    )


def read_text(path: Path, source: str) -> str | None:
    """The file's text decoded as UTF-8 (no newline translation), or None with a warning: too large, binary or
    not UTF-8."""
    if path.stat().st_size > MAX_FILE_BYTES:
        logger.warning("Skipping %s: larger than %d bytes; split it into several articles.", source, MAX_FILE_BYTES)
        return None
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        logger.warning("Skipping %s: it looks binary (NUL bytes); only UTF-8 text articles are read.", source)
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        logger.warning(
            "Skipping %s: not valid UTF-8 at byte %d (%s); re-save it as UTF-8 to include it.",
            source,
            exc.start,
            exc.reason,
        )
        return None


def fits(text: str, where: str) -> bool:
    """Whether an article is short enough to index (else a warning says why it is skipped)."""
    if len(text) <= MAX_ARTICLE_CHARS:
        return True
    logger.warning(
        "Skipping %s: %s characters is longer than %s characters (splitting and embedding it would take many "
        "minutes); split it into several articles.",
        where,
        f"{len(text):,}",
        f"{MAX_ARTICLE_CHARS:,}",
    )
    return False


def first_line(text: str, skipped: Sequence[tuple[int, int, str]] = ()) -> str:
    """The headline: among the first three lines outside `skipped`, the first that reads like a title (not a
    sentence or slogan ending with a period, 4-25 words); otherwise the first line."""
    ends = [end for _, end, _ in skipped]  # sorted and disjoint
    lines: list[str] = []
    for found in LINE.finditer(text):
        after = bisect.bisect_right(ends, found.start())  # the first skipped range ending after the line starts
        if found.group().strip() and not (after < len(ends) and skipped[after][0] < found.end()):
            lines.append(found.group().strip())
        if len(lines) == 3:
            break
    for line in lines:
        if not line.endswith(".") and 4 <= len(line.split()) <= 25:
            return line[:160]
    return lines[0][:160] if lines else ""
