"""qa.ingest.formats: the extractor for each suffix."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.ingest.extraction import UnreadableDocument
from qa.ingest.formats import EXTRACTORS, extract_document

DOCS = Path(__file__).resolve().parent.parent / "data" / "docs"


def test_each_document_goes_to_its_extractor(tmp_path: Path) -> None:
    assert extract_document(DOCS / "nics-background-checks-2015-11.pdf").extractor.startswith("pypdfium2")
    page = tmp_path / "page.HTML"
    page.write_text("<html><body><p>Hello there, reader.</p></body></html>")
    assert extract_document(page).text == "Hello there, reader.\n"
    assert set(EXTRACTORS) == {".pdf", ".html", ".htm", ".xhtml", ".docx", ".epub"}


def test_unknown_suffix_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UnreadableDocument, match=r"no extractor for \.odt"):
        extract_document(tmp_path / "notes.odt")
