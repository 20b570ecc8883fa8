"""Document file -> Extraction, by file suffix: which extractor reads which format (PDF, HTML, DOCX, EPUB)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qa.ingest.docx import extract_docx
from qa.ingest.epub import extract_epub
from qa.ingest.extraction import Extraction, UnreadableDocument
from qa.ingest.html import extract_html
from qa.ingest.pdf import extract_pdf

EXTRACTORS: dict[str, Callable[[Path], Extraction]] = {
    ".pdf": extract_pdf,
    ".html": extract_html,
    ".htm": extract_html,
    ".xhtml": extract_html,
    ".docx": extract_docx,
    ".epub": extract_epub,
}


def extract_document(path: Path) -> Extraction:
    """Extract `path` with the extractor for its suffix; raises an ExtractionError subclass when it cannot."""
    extractor = EXTRACTORS.get(path.suffix.lower())
    if extractor is None:
        known = ", ".join(sorted(EXTRACTORS))
        raise UnreadableDocument(f"{path}: no extractor for {path.suffix or 'files without a suffix'} ({known}).")
    return extractor(path)
