"""HTML page (file or bytes) -> Extraction: the main text found by trafilatura, or every visible block's text from
a plain tag walker when trafilatura finds none (or when asked, as for e-book chapters). Scripts, styles and other
non-text elements never reach the text; the whitespace rules are those of qa.ingest.extraction.
"""

from __future__ import annotations

import logging
import re
from importlib.metadata import version
from pathlib import Path

import lxml.etree
import lxml.html
import trafilatura

from qa.errors import UnreadableDocument
from qa.ingest.extraction import NO_TEXT, RULES, DocumentReader, Extraction, clean_text
from qa.types import Progress

logger = logging.getLogger(__name__)

EXTRACTOR = f"trafilatura {version('trafilatura')}"
WALKER = f"lxml {version('lxml')} tag walker"
MAX_HTML_BYTES = 50_000_000
# Elements whose content is never text a reader sees.
HIDDEN = {
    "script", "style", "noscript", "template", "svg", "math", "head", "title", "iframe", "object", "embed",
    "canvas", "select", "option", "button", "input", "textarea",
}  # fmt: skip
BLOCKS = {
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
    "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "thead", "tfoot", "tr", "ul",
}  # fmt: skip
CELLS = {"td", "th"}
XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
MIN_MAIN_TEXT = 200  # characters: less than this (and less than half the page's text) and the walker's text is kept


def extract_html(source: Path | bytes, *, main_content: bool = True) -> Extraction:
    """Extract an HTML page; `main_content=False` keeps every visible block (the walker only)."""
    data = _decode(_read(source))
    where = str(source) if isinstance(source, Path) else "HTML"
    tree = _parse(data, where)
    title = _title(tree)
    if not main_content:
        text = clean_text(_walk(tree))
        return Extraction(text=text, title=title, extractor=WALKER, warnings=() if text else (NO_TEXT,))
    # trafilatura picks the main content; its HTML output goes through the same walker, so both paths share rules
    main = trafilatura.extract(
        data, output_format="html", include_comments=False, include_tables=True, favor_recall=True, deduplicate=False
    )
    main_text = clean_text(_walk(_parse(main, where))) if main else ""
    if len(main_text) >= MIN_MAIN_TEXT:
        return Extraction(text=main_text, title=title, extractor=EXTRACTOR)
    walked = clean_text(_walk(tree))  # a short page: is that little text all there is?
    if main_text and len(main_text) >= len(walked) / 2:
        return Extraction(text=main_text, title=title, extractor=EXTRACTOR)
    warnings = ("trafilatura found no main text; every visible block of the page was kept",) if walked else (NO_TEXT,)
    return Extraction(text=walked, title=title, extractor=WALKER, warnings=warnings)


def _read(source: Path | bytes) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        if source.stat().st_size > MAX_HTML_BYTES:
            raise UnreadableDocument(f"{source}: larger than {MAX_HTML_BYTES:,} bytes; it was not read.")
        return source.read_bytes()
    except OSError as exc:
        raise UnreadableDocument(f"{source}: cannot be read ({exc.strerror}).") from exc


def _parse(data: bytes | str, where: str) -> lxml.html.HtmlElement:
    if not data.strip():
        raise UnreadableDocument(f"{where}: the page is empty.")
    try:
        return lxml.html.document_fromstring(data)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise UnreadableDocument(f"{where}: not readable HTML ({exc}).") from exc


def _decode(data: bytes) -> bytes | str:
    """UTF-8 text as str (lxml would read undeclared bytes as Latin-1); other bytes as they are, for lxml to
    decode by their <meta charset>."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    return XML_DECLARATION.sub("", text.removeprefix("\ufeff"), count=1)  # lxml refuses str that declares one


def _title(tree: lxml.html.HtmlElement) -> str | None:
    for path in ("//head/title", "//h1"):
        found = tree.xpath(path)
        if found:
            title = " ".join(found[0].text_content().split())
            if title:
                return title
    return None


def _walk(tree: lxml.html.HtmlElement) -> str:
    """Every visible text node in document order, a line break around each block and after <br>."""
    out: list[str] = []
    in_pre = 0
    walker = lxml.etree.iterwalk(tree, events=("start", "end"))
    for event, element in walker:
        tag = element.tag.lower() if isinstance(element.tag, str) else None  # None: a comment or instruction
        if event == "start":
            if tag in HIDDEN or tag is None:
                walker.skip_subtree()
                continue
            if tag in BLOCKS or tag == "br":
                out.append("\n")
            in_pre += tag == "pre"
            if element.text:
                out.append(_text(element.text, in_pre))
            continue
        if tag is not None and tag not in HIDDEN:
            if tag in BLOCKS:
                out.append("\n")
            elif tag in CELLS:
                out.append(" ")
            in_pre -= tag == "pre"
        if element.tail:
            out.append(_text(element.tail, in_pre))
    return "".join(out)


def _text(text: str, in_pre: int) -> str:
    return text if in_pre else text.replace("\n", " ").replace("\r", " ")


class HtmlReader(DocumentReader):
    """A saved web page (.html, .htm, .xhtml) -> one Document of its main text."""

    suffixes: tuple[str, ...] = (".html", ".htm", ".xhtml")
    version = f"{EXTRACTOR} or {WALKER}, rules {RULES}"

    def extract(self, path: Path, progress: Progress | None) -> Extraction:
        return extract_html(path)
