"""A cited source -> its original file in the corpus folder (never a path outside it) and, for a PDF, a page
rendered as a PNG image (cached), checked against the file the index was built from."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from qa.errors import QAError
from qa.ingest.pdf import render_page
from qa.types import Document

logger = logging.getLogger(__name__)

RENDER_SCALE = 1.5  # pixels per point: a US letter page is 918 x 1188 pixels


def original_file(corpus_dir: Path, documents: Mapping[str, Document], source: str) -> Path:
    """The file of the corpus that `source` was read from. QAError for a source the index does not hold, or whose
    file is gone, or lies outside the corpus folder (a name with "..", a link leading out)."""
    document = documents.get(source)
    if document is None:
        raise QAError(f"No document {source!r} in this corpus.")
    root = corpus_dir.resolve()
    path = (root / source.split("#", 1)[0]).resolve()  # a JSONL record's source is "<file>#<id>"
    if not path.is_relative_to(root) or not path.is_file():
        raise QAError(f"The file of {source!r} is not in the corpus folder {corpus_dir}.")
    return path


def page_image(path: Path, document: Document, page: int) -> bytes:
    """Page `page` (1-based) of the PDF at `path` as a PNG, if the file is still the one indexed as `document`."""
    if not document.pages or not 1 <= page <= len(document.pages):
        raise QAError(f"{document.source} has no page {page}.")
    stat = path.stat()
    return _render(str(path), stat.st_mtime_ns, stat.st_size, document.file_sha256, page)


@lru_cache(maxsize=64)
def _render(path: str, mtime_ns: int, size: int, file_sha256: str, page: int) -> bytes:
    """Rendered once per file version and page (about 40 ms a page; the cache holds 64, a few MB)."""
    if hashlib.sha256(Path(path).read_bytes()).hexdigest() != file_sha256:
        raise QAError(f"{path} changed since it was indexed: re-index it (`qa index`) to show its pages.")
    return render_page(Path(path), page, scale=RENDER_SCALE)
