"""Document -> its extraction record and back, the same for both stores: what read an extracted document (reader
version, the file's hash), its page table and warnings as JSON, and its character map as .npz bytes kept apart
(FAISS: a file in chars/; PostgreSQL: a bytea column). A text file's record is {} and it has no map."""

from __future__ import annotations

import dataclasses
from typing import Any

from qa.layout import CharMap, Page
from qa.types import Document


def extraction_record(document: Document) -> dict[str, Any]:
    """JSON values: extractor, file_sha256, pages, warnings ({} for a document read as text)."""
    if not document.extractor:
        return {}
    return {
        "extractor": document.extractor,
        "file_sha256": document.file_sha256,
        "pages": [dataclasses.asdict(page) for page in document.pages],
        "warnings": list(document.warnings),
    }


def with_extraction(document: Document, record: dict[str, Any], chars: bytes | None) -> Document:
    """`document` with its extraction record and character map (raises KeyError, TypeError, ValueError or
    ExtractionError when they are malformed: the stores report that as a corrupt index)."""
    if not record:
        return document
    return dataclasses.replace(
        document,
        extractor=str(record["extractor"]),
        file_sha256=str(record["file_sha256"]),
        pages=tuple(Page(**page) for page in record["pages"]),
        warnings=tuple(str(warning) for warning in record["warnings"]),
        chars=CharMap.from_bytes(bytes(chars)) if chars is not None else None,
    )
