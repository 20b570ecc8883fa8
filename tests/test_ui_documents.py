"""ui.documents: the page view of a PDF citation (page images, boxes, page dividers, the marked quote) and the
route that serves the original files of the corpus, and nothing else. No browser: see test_ui_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qa import Assistant, QAError, Settings
from tests.conftest import COVERAGE_RANKER
from tests.fakes import HashEmbeddings
from tests.ingest.pdfs import write_pdf
from ui.chat import Chat
from ui.documents import add_document_routes, file_token, original_link, page_name

LEASE = [f"Clause {n} of the lease binds the tenant to repair the fences by {1990 + n}." for n in range(150)]


@pytest.fixture()
def pdf_assistant(tmp_path: Path) -> Assistant:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_pdf(
        corpus / "lease.pdf",
        [LEASE],
        header="Lease of Marsh Farm {page}",
        footer="Draft",
        labels=[(0, "ROMAN_LOWER", 1)],
    )
    (corpus / "notes.txt").write_text("The harbour master counted 40 boats on Monday.\n", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("not in the corpus", encoding="utf-8")
    settings = Settings(
        corpus_dir=corpus, index_dir=tmp_path / "index", engine="extractive", ranker_path=COVERAGE_RANKER
    )
    return Assistant.load(settings, embedder=HashEmbeddings())


def test_page_names_show_the_printed_label_when_it_differs() -> None:
    assert page_name(3, "iii") == "p. 3 (iii)" and page_name(7, "7") == "p. 7"


def test_a_pdf_citation_opens_its_page_image_with_boxes_and_the_text_by_page(pdf_assistant: Assistant) -> None:
    lease = pdf_assistant.documents["lease.pdf"]
    crossing = next(
        n for n, sentence in enumerate(LEASE)
        if len({p.index for p in lease.pages if p.start < lease.text.index(sentence) + len(sentence)
                and lease.text.index(sentence) < p.end}) == 2
    )  # fmt: skip
    start = lease.text.index(LEASE[crossing])
    citation = pdf_assistant.citation("lease.pdf", start, start + len(LEASE[crossing]))
    html = Chat(pdf_assistant).open_span("lease.pdf", citation.start, citation.end)
    figures = re.findall(r'<figure class="qa-page" data-page="(\d+)"', html)
    assert [int(page) for page in figures] == [citation.page_start, citation.page_end]  # both pages of the quote
    assert html.count('src="data:image/png;base64,') == 2
    assert html.count('class="qa-box"') == len(citation.boxes) >= 2
    marks = re.findall(r"<mark[^>]*>(.*?)</mark>", html, re.S)
    assert "".join(marks) == LEASE[crossing]  # the quote, exactly, though a page divider falls inside it
    dividers = re.findall(r'<span class="qa-page-divider"[^>]*>(.*?)</span>', html)
    assert dividers[:3] == ["p. 1 (i)", "p. 2 (ii)", "p. 3 (iii)"] and len(dividers) == len(lease.pages)
    assert 'data-qa-step="-1"' in html and 'data-qa-step="1"' in html
    assert f'href="/api/original?source=lease.pdf#page={citation.page_start}"' in html


def test_a_text_article_still_opens_as_text(pdf_assistant: Assistant) -> None:
    html = Chat(pdf_assistant).open_span("notes.txt", 0, 10)
    assert "<figure" not in html and '<mark class="qa-highlight"' in html


def test_original_files_are_served_for_the_corpus_only(pdf_assistant: Assistant) -> None:
    server = FastAPI()
    add_document_routes(server, pdf_assistant, pdf_assistant.settings)
    client = TestClient(server)
    reply = client.get("/api/original", params={"source": "lease.pdf"})
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/pdf"
    assert "object-src 'self'" in reply.headers["content-security-policy"]  # the browser's PDF viewer may show it
    assert reply.content == pdf_assistant.original("lease.pdf").read_bytes()
    for name in ("../secret.txt", "/etc/passwd", "lease.pdf/../../secret.txt", "missing.pdf"):
        assert client.get("/api/original", params={"source": name}).status_code == 404, name
    with pytest.raises(QAError):
        pdf_assistant.original("../secret.txt")


def test_with_an_api_key_a_link_opens_only_its_own_file(pdf_assistant: Assistant) -> None:
    settings = pdf_assistant.settings.replace(api_key="sesame")
    server = FastAPI()
    add_document_routes(server, pdf_assistant, settings)
    client = TestClient(server)
    assert client.get("/api/original", params={"source": "lease.pdf"}).status_code == 401
    link = original_link("lease.pdf", 2, "sesame").split("#")[0]
    assert client.get(link).status_code == 200
    stolen = {"source": "notes.txt", "token": file_token("lease.pdf", "sesame")}
    assert client.get("/api/original", params=stolen).status_code == 401
