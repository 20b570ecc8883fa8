"""A citation of a PDF -> the side panel's page view: the cited page(s) rendered as images with a box over each
quoted line, the extracted text with page dividers ("p. 3 (iii)") and the quote marked, previous/next citation,
and a link to the original file at that page (served by `add_document_routes`, for files of the corpus only).

Plain Python over the public `qa` API (`Assistant.citation`, `page_image`, `original`), like ui.render.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from html import escape
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse

from qa import Assistant, Citation, Document, QAError, Settings

logger = logging.getLogger(__name__)

ORIGINAL_POLICY = "default-src 'none'; object-src 'self'; frame-ancestors 'self'"
MAX_PAGES_SHOWN = 3  # a quote over more pages shows its first three

# Runs with the panel's other script: "previous"/"next" click the neighbouring citation of the active answer's
# Sources list, which opens it through the conversation's own click handler.
STEP_JS = """
element.addEventListener('click', function (event) {
  const step = event.target.closest('[data-qa-step]');
  if (!step || !element.contains(step)) return;
  event.preventDefault();
  const active = document.querySelector('#qa-conversation .qa-active');
  const answer = active && active.closest('.qa-answer');
  if (!answer) return;
  const list = Array.from(answer.querySelectorAll('.qa-sources button[data-qa-open]'));
  const same = function (b) { return b.dataset.source === active.dataset.source &&
    b.dataset.start === active.dataset.start && b.dataset.end === active.dataset.end; };
  const here = list.findIndex(same);
  const next = list[(here + Number(step.dataset.qaStep) + list.length) % list.length];
  if (next) next.click();
});
"""

BOX_STYLE = "position:absolute;border:2px solid #dc2626;background:rgba(250,204,21,0.35);box-sizing:border-box;"
DIVIDER_STYLE = "display:block;margin:10px 0 4px 0;border-top:1px dashed #9ca3af;font-size:12px;opacity:0.75;"


def page_name(index: int, label: str) -> str:
    """ "p. 3 (iii)" when the printed label differs from the page number, else "p. 3"."""
    return f"p. {index}" if label == str(index) else f"p. {index} ({label})"


def file_token(source: str, key: str) -> str:
    """What a link to an original file carries when the server has an API key (a browser sends no bearer key on a
    link): an HMAC of the source under the key, so a link opens only the file it was made for."""
    return hmac.new(key.encode(), source.encode(), hashlib.sha256).hexdigest()[:32]


def original_link(source: str, page: int | None, key: str | None) -> str:
    token = f"&token={file_token(source, key)}" if key else ""
    anchor = f"#page={page}" if page else ""
    return f"/api/original?source={quote(source, safe='')}{token}{anchor}"


def render_pdf_view(assistant: Assistant, document: Document, start: int | None, end: int | None) -> str:
    """The panel for a click on a citation of a paged document (a whole document when the span is not valid)."""
    citation: Citation | None = None
    if start is not None and end is not None:
        try:
            citation = assistant.citation(document.source, start, end)
        except QAError:
            citation = None
    first = citation.page_start if citation and citation.page_start else 1
    last = citation.page_end if citation and citation.page_end else first
    figures = "".join(
        _figure(assistant, document, page, citation)
        for page in range(first, min(last, first + MAX_PAGES_SHOWN - 1) + 1)
    )
    page = document.pages[first - 1]
    where = escape(document.source) + " · " + escape(page_name(page.index, page.label))
    if citation is not None:
        where += f" · characters {citation.start}–{citation.end}"
    link = original_link(document.source, first, assistant.settings.api_key)
    nav = (
        '<div class="qa-page-nav" style="display:flex;gap:8px;align-items:center;margin:6px 0;">'
        '<button type="button" class="qa-step" data-qa-step="-1">◀ previous citation</button>'
        '<button type="button" class="qa-step" data-qa-step="1">next citation ▶</button>'
        f'<a class="qa-original" href="{escape(link)}" target="_blank" rel="noopener">open the PDF at '
        f"{escape(page_name(page.index, page.label))}</a></div>"
    )
    return (
        f'<div class="qa-article qa-pdf"><h3 class="qa-article-title">{escape(document.title)}</h3>'
        f'<div class="qa-where">{where}</div>{nav}<div class="qa-pages">{figures}</div>'
        f'<div class="qa-article-text">{_text_with_pages(document, citation)}</div></div>'
    )


def _figure(assistant: Assistant, document: Document, page: int, citation: Citation | None) -> str:
    """One page image with the citation's boxes on it, in percent of the page (so they follow the image's size)."""
    try:
        png = assistant.page_image(document.source, page)
    except QAError as exc:
        logger.warning("No image of %s page %d: %s", document.source, page, exc)
        return f'<div class="qa-page-missing">{escape(str(exc))}</div>'
    boxes = "".join(
        f'<div class="qa-box" data-page="{box.page}" style="{BOX_STYLE}left:{box.x0 * 100:.3f}%;'
        f'top:{box.y0 * 100:.3f}%;width:{(box.x1 - box.x0) * 100:.3f}%;height:{(box.y1 - box.y0) * 100:.3f}%;"></div>'
        for box in (citation.boxes if citation else ())
        if box.page == page
    )
    label = document.pages[page - 1].label
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (
        f'<figure class="qa-page" data-page="{page}" style="position:relative;margin:0 0 8px 0;line-height:0;">'
        f'<img class="qa-page-image" src="{source}" alt="{escape(page_name(page, label))} of '
        f'{escape(document.source)}" style="width:100%;display:block;border:1px solid #d1d5db;">{boxes}</figure>'
    )


def _text_with_pages(document: Document, citation: Citation | None) -> str:
    """The extracted text, escaped, a divider before each page, the quote in <mark> (split where a divider cuts)."""
    text = document.text
    cuts = {0, len(text), *(page.start for page in document.pages)}
    if citation is not None:
        cuts |= {citation.start, citation.end}
    starts = {page.start: page for page in document.pages}
    pieces: list[str] = []
    marked = False
    ordered = sorted(cuts)
    for begin, finish in zip(ordered, ordered[1:], strict=False):
        page = starts.get(begin)
        if page is not None:
            name = escape(page_name(page.index, page.label))
            pieces.append(f'<span class="qa-page-divider" style="{DIVIDER_STYLE}">{name}</span>')
        piece = escape(text[begin:finish])
        if citation is not None and citation.start <= begin and finish <= citation.end:
            css = "qa-highlight" if not marked else "qa-highlight-more"
            piece = f'<mark class="{css}" data-start="{citation.start}" data-end="{citation.end}">{piece}</mark>'
            marked = True
        pieces.append(piece)
    return "".join(pieces)


def add_document_routes(server: FastAPI, assistant: Assistant, settings: Settings) -> None:
    """GET /api/original?source=...: the original file of a document of the corpus, and nothing else."""

    @server.get("/api/original", include_in_schema=False)
    async def original(request: Request, source: str, token: str = "") -> FileResponse:
        key = settings.api_key
        if key and not hmac.compare_digest(token, file_token(source, key)):
            raise HTTPException(status_code=401, detail="This link is not valid for that file.")
        try:
            path = assistant.original(source)
        except QAError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        media = "application/pdf" if path.suffix.lower() == ".pdf" else None
        # subtle: the page's policy has object-src 'none', which may keep a browser's PDF viewer from showing the
        # file; this response allows only that (and the Guard adds its other headers).
        headers = {"content-security-policy": ORIGINAL_POLICY}
        return FileResponse(
            path, media_type=media, content_disposition_type="inline", filename=path.name, headers=headers
        )
