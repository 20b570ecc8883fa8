"""Word file (.docx) -> Extraction with python-docx: paragraphs and table rows in document order, one a line
(cells joined by " | "), content controls opened; page headers, footers and comments left out. The archive's
unpacked size is checked before anything is read (a decompression bomb is refused).
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import docx
import lxml.etree
from docx.document import Document as DocxDocument
from docx.opc.exceptions import PackageNotFoundError
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from qa.errors import EncryptedDocument, UnreadableDocument
from qa.ingest.extraction import NO_TEXT, RULES, DocumentReader, Extraction, check_zip_size, clean_text
from qa.types import Progress

logger = logging.getLogger(__name__)

EXTRACTOR = f"python-docx {version('python-docx')}"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a password-protected Office file is an OLE container, not a zip


def extract_docx(path: Path) -> Extraction:
    """Extract a .docx file; raises EncryptedDocument, DocumentTooLarge or UnreadableDocument."""
    _check_archive(path)
    try:
        document = docx.Document(str(path))
        lines = list(_blocks(document))
        title = document.core_properties.title or _first_heading(document)
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile, lxml.etree.XMLSyntaxError) as exc:
        raise UnreadableDocument(f"{path}: not a readable Word document ({exc}).") from exc
    text = clean_text("\n".join(lines))
    return Extraction(text=text, title=title or None, extractor=EXTRACTOR, warnings=() if text else (NO_TEXT,))


def _check_archive(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            if handle.read(8) == OLE_MAGIC:
                raise EncryptedDocument(f"{path}: the Word document is password-protected; save an open copy.")
        with zipfile.ZipFile(path) as archive:
            check_zip_size([(info.filename, info.file_size) for info in archive.infolist()], str(path))
    except zipfile.BadZipFile as exc:
        raise UnreadableDocument(f"{path}: not a Word (.docx) file: {exc}.") from exc
    except OSError as exc:
        raise UnreadableDocument(f"{path}: cannot be read ({exc.strerror}).") from exc


def _blocks(document: DocxDocument) -> Iterator[str]:
    """The text of each paragraph and table row of the body, in document order."""
    yield from _children(document.element.body, document)


def _children(parent: Any, document: DocxDocument) -> Iterator[str]:
    for child in parent.iterchildren():
        if child.tag == qn("w:p"):
            yield Paragraph(child, document).text
        elif child.tag == qn("w:tbl"):
            yield from _rows(Table(child, document))
        elif child.tag == qn("w:sdt"):  # a content control: its paragraphs sit in w:sdtContent
            for content in child.iterchildren(qn("w:sdtContent")):
                yield from _children(content, document)


def _rows(table: Table) -> Iterator[str]:
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is reported once per grid column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        yield " | ".join(cells)


def _first_heading(document: DocxDocument) -> str | None:
    for paragraph in document.paragraphs[:20]:
        style = paragraph.style.name if paragraph.style is not None else ""
        if style and (style == "Title" or style.startswith("Heading")) and paragraph.text.strip():
            return paragraph.text.strip()
    return None


class DocxReader(DocumentReader):
    """A Word file (.docx) -> one Document: paragraphs and table rows in document order."""

    suffixes: tuple[str, ...] = (".docx",)
    version = f"{EXTRACTOR}, rules {RULES}"

    def extract(self, path: Path, progress: Progress | None) -> Extraction:
        return extract_docx(path)
