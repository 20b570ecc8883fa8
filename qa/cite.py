"""Answer text + citations -> verified citations: every quote equals its document slice, every citation is used.

Model output is untrusted: `finalize` is the last gate every answer passes, whatever engine wrote it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping

from qa.decision import abstention, unsupported
from qa.layout import boxes_for, pages_of
from qa.text import MARKER
from qa.types import Answer, Citation, Document

logger = logging.getLogger(__name__)

REPEATED_MARKER = re.compile(r"(\[(\d{1,3})\])([.!?]?)(?:\s*\[\2\])+")


def defuse_markers(text: str) -> str:
    """Article text for display or for the model, with its own "[2]" (a footnote, say) written "［2］" so it is
    never read as a citation marker. Citations keep the exact quote; this is only for the answer's wording."""
    return MARKER.sub(lambda m: f"［{m.group(1)}］", text)


def make_citation(document: Document, start: int, end: int, marker: int) -> Citation:
    """A citation of `document.text[start:end]`; raises ValueError for an empty or out-of-range span."""
    if not 0 <= start < end <= len(document.text):
        raise ValueError(f"span [{start}:{end}] is outside {document.source} ({len(document.text)} chars)")
    return Citation(marker, document.source, start, end, document.text[start:end])


def place(citation: Citation, document: Document) -> Citation:
    """`citation` with the pages its quote is on and, for a PDF, a box over each line of it on each page."""
    pages = pages_of(document.pages, citation.start, citation.end)
    if not pages:
        return citation
    boxes = tuple(
        dataclasses.replace(box, x0=round(box.x0, 5), y0=round(box.y0, 5), x1=round(box.x1, 5), y1=round(box.y1, 5))
        for box in boxes_for(document.chars, citation.start, citation.end)
    )
    labels = tuple(page.label for page in pages)
    return dataclasses.replace(
        citation, page_start=pages[0].index, page_end=pages[-1].index, page_labels=labels, boxes=boxes
    )


def is_valid_citation(citation: Citation, documents: Mapping[str, Document]) -> bool:
    document = documents.get(citation.source)
    return (
        document is not None
        and 0 <= citation.start < citation.end <= len(document.text)
        and document.text[citation.start : citation.end] == citation.quote
    )


def markers(text: str) -> list[int]:
    """The [n] markers of `text`, in order of first appearance."""
    return list(dict.fromkeys(int(m) for m in MARKER.findall(text)))


def finalize(answer: Answer, documents: Mapping[str, Document]) -> Answer:
    """Drop invalid or unused citations and dangling markers; an answer left without citations abstains
    (`qa.decision.unsupported`)."""
    if answer.abstained:
        return dataclasses.replace(answer, citations=())
    used = set(markers(answer.text))
    kept = []
    for citation in answer.citations:
        if not is_valid_citation(citation, documents):
            logger.error(
                "Dropped citation [%d]: its quote does not match %s[%d:%d]",
                citation.marker,
                citation.source,
                citation.start,
                citation.end,
            )
        elif citation.marker not in used:
            logger.warning("Dropped citation [%d]: the answer does not use it", citation.marker)
        else:
            kept.append(place(citation, documents[citation.source]))
    known = {c.marker for c in kept}
    text = MARKER.sub(lambda m: m.group(0) if int(m.group(1)) in known else "", answer.text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    text = REPEATED_MARKER.sub(r"\1\3", text)  # "fact [5]. [5]" -> "fact [5]."
    if unsupported(answer, kept):
        return dataclasses.replace(
            abstention(answer.question, answer.passages, engine=answer.engine, checks=answer.checks),
            timings_ms=answer.timings_ms,
        )
    return dataclasses.replace(answer, text=text, citations=tuple(sorted(kept, key=lambda c: c.marker)))
