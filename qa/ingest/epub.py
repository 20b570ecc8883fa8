"""E-book (.epub) -> Extraction: the chapters of the spine in reading order, each through the HTML tag walker
(an EPUB 3 navigation document, the table of contents, is left out).

Chapters are read with zipfile and lxml (no entity expansion, no network); the archive's unpacked size is checked
first (a decompression bomb is refused), and a DRM-encrypted book is refused with a clear message. The walker, not
trafilatura, reads the chapters: everything in a chapter body is the book's text, and web-page boilerplate rules
would drop short chapters (a dedication, a poem).
"""

from __future__ import annotations

import logging
import posixpath
import zipfile
from importlib.metadata import version
from pathlib import Path
from urllib.parse import unquote

import lxml.etree

from qa.errors import DocumentTooLarge, EncryptedDocument, UnreadableDocument
from qa.ingest.extraction import MAX_ZIP_BYTES, NO_TEXT, RULES, DocumentReader, Extraction, check_zip_size
from qa.ingest.html import extract_html
from qa.types import Progress

logger = logging.getLogger(__name__)

EXTRACTOR = f"epub (zipfile, lxml {version('lxml')} tag walker)"
CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
OPF = "{http://www.idpf.org/2007/opf}"
DC = "{http://purl.org/dc/elements/1.1/}"
ENCRYPTION = "{http://www.w3.org/2001/04/xmlenc#}"
FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
DOCUMENT_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml"}
SAFE_XML = lxml.etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def extract_epub(path: Path) -> Extraction:
    """Extract an .epub file; raises EncryptedDocument, DocumentTooLarge or UnreadableDocument."""
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip_size([(info.filename, info.file_size) for info in archive.infolist()], str(path))
            return _read_book(archive, path)
    except zipfile.BadZipFile as exc:
        raise UnreadableDocument(f"{path}: not an EPUB (zip) file: {exc}.") from exc
    except OSError as exc:
        raise UnreadableDocument(f"{path}: cannot be read ({exc}).") from exc


def _read_book(archive: zipfile.ZipFile, path: Path) -> Extraction:
    container = _xml(archive, "META-INF/container.xml", path)
    rootfile = container.find(f".//{CONTAINER}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise UnreadableDocument(f"{path}: META-INF/container.xml names no package document.")
    package_path = str(rootfile.get("full-path"))
    package = _xml(archive, package_path, path)
    folder = posixpath.dirname(package_path)
    manifest = {
        item.get("id"): (
            posixpath.normpath(posixpath.join(folder, unquote(item.get("href", "")))),
            item.get("media-type"),
        )
        for item in package.iterfind(f"{OPF}manifest/{OPF}item")
        if "nav" not in item.get("properties", "").split()  # the table of contents is not the book's text
    }
    encrypted = _encrypted(archive, path)
    chapters, warnings = [], []
    for itemref in package.iterfind(f"{OPF}spine/{OPF}itemref"):
        member, media_type = manifest.get(itemref.get("idref"), (None, None))
        if member is None or media_type not in DOCUMENT_TYPES:
            continue
        if member in encrypted:
            raise EncryptedDocument(f"{path}: the e-book is encrypted (DRM); only DRM-free EPUB files can be read.")
        try:
            chapters.append(extract_html(_member(archive, member, path), main_content=False).text)
        except (KeyError, UnreadableDocument) as exc:
            warnings.append(f"chapter {member} cannot be read ({exc}); it is left out.")
    title = package.findtext(f".//{DC}title")
    if not any(chapters):
        warnings.append(NO_TEXT)
    return Extraction(
        text="".join(chapters), title=title.strip() if title else None, extractor=EXTRACTOR, warnings=tuple(warnings)
    )


def _member(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    """A member's bytes, never more than the limit whatever its header claims."""
    with archive.open(name) as handle:
        data = handle.read(MAX_ZIP_BYTES + 1)
    if len(data) > MAX_ZIP_BYTES:
        raise DocumentTooLarge(f"{path}: {name} unpacks to more than {MAX_ZIP_BYTES:,} bytes; it was not read.")
    return data


def _xml(archive: zipfile.ZipFile, name: str, path: Path) -> lxml.etree._Element:
    try:
        return lxml.etree.fromstring(_member(archive, name, path), SAFE_XML)
    except KeyError as exc:
        raise UnreadableDocument(f"{path}: not an EPUB: {name} is missing.") from exc
    except lxml.etree.XMLSyntaxError as exc:
        raise UnreadableDocument(f"{path}: {name} is not well-formed XML ({exc}).") from exc


def _encrypted(archive: zipfile.ZipFile, path: Path) -> set[str]:
    """Members encrypted by DRM (font obfuscation, which EPUB allows without DRM, does not count)."""
    if "META-INF/encryption.xml" not in archive.namelist():
        return set()
    members = set()
    for data in _xml(archive, "META-INF/encryption.xml", path).iterfind(f".//{ENCRYPTION}EncryptedData"):
        method = data.find(f"{ENCRYPTION}EncryptionMethod")
        reference = data.find(f".//{ENCRYPTION}CipherReference")
        if reference is not None and (method is None or method.get("Algorithm") not in FONT_OBFUSCATION):
            members.add(posixpath.normpath(unquote(reference.get("URI", ""))))
    return members


class EpubReader(DocumentReader):
    """An e-book (.epub) -> one Document: its chapters in reading order."""

    suffixes: tuple[str, ...] = (".epub",)
    version = f"{EXTRACTOR}, rules {RULES}"

    def extract(self, path: Path, progress: Progress | None) -> Extraction:
        return extract_epub(path)
