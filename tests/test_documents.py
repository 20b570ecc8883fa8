"""Documents (PDF, HTML, DOCX, EPUB) through the whole product on fake embeddings: `qa index` and its summary, the
stored extraction (reused while the file is unchanged), citations with pages and boxes, and bad input that is named
in the summary and loses nothing else."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from reportlab.pdfgen import canvas

import qa.ingest.extraction as extraction_module
from qa import Assistant, Settings
from qa.cite import place
from qa.cli import cli
from qa.ingest.pdf import PdfReader
from qa.store import build_faiss, load_faiss
from qa.types import Citation, citation_record
from tests.conftest import COVERAGE_RANKER
from tests.fakes import HashEmbeddings
from tests.ingest.pdfs import _draw_image, write_pdf
from tests.ingest.test_docx import make_docx

WORDS = ["north", "east", "south", "west", "upper", "lower", "outer"]
LEASE = [
    f"Clause {n} of the lease binds the tenant to repair the {WORDS[n % 7]} fences by {1990 + n}." for n in range(150)
]
HEADER, FOOTER = "Lease of Marsh Farm", "Draft for the tenants"


@pytest.fixture()
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Builds embed with hashing embeddings instead of MiniLM."""
    monkeypatch.setattr("qa.store.build.SentenceEmbedder", lambda model: HashEmbeddings())


def scanned_pdf(path: Path, pages: int = 2) -> None:
    pdf = canvas.Canvas(str(path))
    for _ in range(pages):
        _draw_image(pdf)
        pdf.showPage()
    pdf.save()


def bad_corpus(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A corpus with one good file of each format and one bad file of each kind of trouble."""
    folder.mkdir()
    (folder / "notes.txt").write_text("The harbour master counted 40 boats on Monday.\n", encoding="utf-8")
    drawn = write_pdf(folder / "lease.pdf", [LEASE], header=HEADER + " {page}", footer=FOOTER)
    write_pdf(folder / "locked.pdf", [["A secret sentence about the harbour."]], encrypt="secret")
    (folder / "broken.pdf").write_bytes((folder / "lease.pdf").read_bytes()[:3000])
    scanned_pdf(folder / "scan.pdf")
    make_docx(folder / "survey.docx")
    monkeypatch.setattr(extraction_module, "MAX_ZIP_BYTES", 1_000_000)
    make_docx(folder / "bomb.docx")
    with zipfile.ZipFile(folder / "bomb.docx", "a", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("word/media/padding.bin", "w") as member:
            for _ in range(4):
                member.write(bytes(1_000_000))
    (folder / "page.html").write_text(
        "<html><head><script>var secret = 'SCRIPT-ONLY-TEXT';</script><style>p {color: red}</style></head>"
        "<body><p>The ferry to the island leaves at nine every morning.</p>"
        "<script>document.write('INJECTED-BY-SCRIPT')</script></body></html>",
        encoding="utf-8",
    )
    return drawn


def test_qa_index_names_every_document_without_citable_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_model: None
) -> None:
    corpus = tmp_path / "corpus"
    bad_corpus(corpus, monkeypatch)
    result = CliRunner().invoke(cli, ["index", "--corpus", str(corpus), "--index-dir", str(tmp_path / "index")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Indexed 8 documents")
    assert lines[1] == "No citable text in 4 document(s):"
    named = {line.split(":")[0][2:]: line for line in lines[2:6]}
    assert sorted(named) == ["bomb.docx", "broken.pdf", "locked.pdf", "scan.pdf"]
    assert "encrypted with a password" in named["locked.pdf"]
    assert "damaged (truncated?)" in named["broken.pdf"]
    assert "pages 1-2 have no text layer (scanned? no OCR is done)" in named["scan.pdf"]
    assert "decompression bomb" in named["bomb.docx"]
    assert "Reading documents" in result.stderr  # the first step's progress bar
    index = load_faiss(tmp_path / "index")
    chunked = {chunk.source for chunk in index.chunks}
    assert chunked == {"notes.txt", "lease.pdf", "survey.docx", "page.html"}  # the others lose nothing
    page = index.documents["page.html"].text
    assert page == "The ferry to the island leaves at nine every morning.\n"  # no script reaches the text


def test_the_extraction_is_stored_and_reused_while_the_file_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    settings.corpus_dir.mkdir()
    write_pdf(settings.corpus_dir / "lease.pdf", [LEASE], header=HEADER + " {page}", footer=FOOTER)
    built = build_faiss(settings, embedder=HashEmbeddings())
    lease = built.documents["lease.pdf"]
    assert lease.extractor == PdfReader.version and len(lease.pages) >= 3
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())["documents"]["lease.pdf"]
    assert manifest["extractor"] == PdfReader.version and manifest["file_sha256"] == lease.file_sha256
    assert manifest["pages"] == len(lease.pages) and (settings.index_dir / "chars" / "0.npz").is_file()
    loaded = load_faiss(settings.index_dir, settings).documents["lease.pdf"]
    assert loaded == lease and loaded.chars is not None and lease.chars is not None
    assert (
        loaded.chars.char_box[~(loaded.chars.char_line < 0)] == lease.chars.char_box[lease.chars.char_line >= 0]
    ).all()
    monkeypatch.setattr(PdfReader, "extract", lambda *args: pytest.fail("an unchanged PDF was extracted again"))
    again = Assistant.load(settings, embedder=HashEmbeddings())  # checks the corpus for changes: no re-extraction
    assert again.documents["lease.pdf"] == lease
    build_faiss(settings, embedder=HashEmbeddings())


def test_running_headers_and_footers_are_never_chunked_or_cited(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    settings.corpus_dir.mkdir()
    write_pdf(settings.corpus_dir / "lease.pdf", [LEASE], header=HEADER + " {page}", footer=FOOTER)
    index = build_faiss(settings, embedder=HashEmbeddings())
    lease = index.documents["lease.pdf"]
    running = [(s, e) for s, e, reason in lease.skipped if reason == "running header or footer"]
    assert len(running) == len(lease.pages)
    for item in [*index.chunks, *index.sentences]:
        assert not any(s < item.end and item.start < e for s, e in running), lease.text[item.start : item.end]
        assert HEADER not in index.text(item) and FOOTER not in index.text(item)


def test_a_quote_over_a_page_break_cites_both_pages_with_boxes_on_each(tmp_path: Path) -> None:
    settings = Settings(
        corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", engine="extractive", ranker_path=COVERAGE_RANKER
    )
    settings.corpus_dir.mkdir()
    drawn = write_pdf(settings.corpus_dir / "lease.pdf", [LEASE], header=HEADER + " {page}", footer=FOOTER)
    crossing = next(n for n in range(len(LEASE)) if len({line.page for line in drawn.of_sentence(n)}) == 2)
    pages = sorted({line.page for line in drawn.of_sentence(crossing)})
    assistant = Assistant.load(settings, embedder=HashEmbeddings())
    lease = assistant.documents["lease.pdf"]
    start = lease.text.index(LEASE[crossing])
    citation = place(Citation(1, "lease.pdf", start, start + len(LEASE[crossing]), LEASE[crossing]), lease)
    assert (citation.page_start, citation.page_end) == (pages[0], pages[1])
    assert citation.page_labels == (str(pages[0]), str(pages[1]))
    assert [box.page for box in citation.boxes] == [line.page for line in drawn.of_sentence(crossing)]
    for box, line in zip(citation.boxes, drawn.of_sentence(crossing), strict=True):  # over the words drawn
        assert line.x0 - 0.01 <= box.x0 < box.x1 <= line.x1 + 0.01  # on the line's part the sentence takes
        assert box.y0 == pytest.approx(line.y0, abs=0.02) and box.y1 == pytest.approx(line.y1, abs=0.02)
    year = 1990 + crossing
    answer = assistant.ask(
        f"By which year must the tenant repair the {WORDS[crossing % 7]} fences under clause {crossing}?"
    )
    assert not answer.abstained and answer.citations
    for cited in answer.citations:  # exact, and placed on its pages
        assert lease.text[cited.start : cited.end] == cited.quote and cited.page_start is not None
    assert any(str(year) in c.quote and c.page_end == pages[1] for c in answer.citations)


def test_qa_ask_prints_the_page_beside_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_pdf(corpus / "lease.pdf", [LEASE], header=HEADER + " {page}", footer=FOOTER)
    monkeypatch.setattr(
        "qa.cli.base.load_assistant", lambda settings: Assistant.load(settings, embedder=HashEmbeddings())
    )
    env = {
        "QA_CORPUS_DIR": str(corpus),
        "QA_INDEX_DIR": str(tmp_path / "index"),
        "QA_ENGINE": "extractive",
        "QA_RANKER_PATH": str(COVERAGE_RANKER),
    }
    question = "By which year must the tenant repair the west fences under clause 73?"
    text = CliRunner().invoke(cli, ["ask", question], env=env)
    assert text.exit_code == 0, text.output
    assert "[1] lease.pdf p. " in text.stdout
    record = json.loads(CliRunner().invoke(cli, ["ask", question, "--json"], env=env).stdout)
    cited = record["citations"][0]
    assert cited["page_start"] >= 1 and cited["page_labels"] == [str(cited["page_start"])]
    assert set(cited["boxes"][0]) == {"page", "x0", "y0", "x1", "y1"}


@pytest.mark.slow  # draws and reads 2,000 pages (about 30 s on 2 cores)
def test_a_2000_page_pdf_reports_progress_by_page_and_costs_linear_time(tmp_path: Path) -> None:
    path = tmp_path / "corpus" / "long.pdf"
    path.parent.mkdir()
    pdf = canvas.Canvas(str(path))
    for page in range(2000):
        pdf.drawString(72, 700, f"Page {page + 1} of the register lists entry {page * 7} and its owner.")
        pdf.showPage()
    pdf.save()
    reports: list[tuple[int, int]] = []
    started = time.process_time()
    (document,) = PdfReader().read(path, "long.pdf", set(), lambda done, total: reports.append((done, total)))
    seconds = time.process_time() - started
    assert len(document.pages) == 2000 and len(reports) == 2000 and reports[-1] == (2000, 2000)
    assert seconds < 2000 / 50  # at least 50 pages per CPU-second (about 150 measured)


def test_every_front_carries_the_pages_and_boxes_of_a_pdf_citation(tmp_path: Path) -> None:
    """/api/ask, the OpenAI-compatible endpoint's citation fields and the MCP ask tool: the same citation record."""
    anyio = pytest.importorskip("anyio")
    pytest.importorskip("mcp")
    import httpx
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from tests.servers import live_server
    from ui.app import build_server
    from ui.mcp_server import build_mcp

    settings = Settings(
        corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", engine="extractive", ranker_path=COVERAGE_RANKER
    )
    settings.corpus_dir.mkdir()
    write_pdf(settings.corpus_dir / "lease.pdf", [LEASE], header=HEADER + " {page}", footer=FOOTER)
    assistant = Assistant.load(settings, embedder=HashEmbeddings())
    question = "By which year must the tenant repair the west fences under clause 73?"
    expected = [citation_record(c) for c in assistant.ask(question).citations]
    assert expected and all(c["page_start"] and c["boxes"] for c in expected)
    with live_server(build_server(assistant, settings)) as url:  # (the server's Host check wants 127.0.0.1)
        assert httpx.post(url + "/api/ask", json={"question": question}, timeout=60).json()["citations"] == expected
        body = {"model": "qa-extractive", "messages": [{"role": "user", "content": question}]}
        reply = httpx.post(url + "/v1/chat/completions", json=body, timeout=60).json()
        assert reply["choices"][0]["message"]["citations"] == expected

    async def ask_over_mcp(url: str) -> dict[str, Any]:
        async with streamable_http_client(url) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            result = await session.call_tool("ask", {"question": question})
            assert not result.is_error, result.content
            return dict(result.structured_content)

    with live_server(build_mcp(assistant).streamable_http_app(host="127.0.0.1")) as url:
        record = anyio.run(ask_over_mcp, url + "/mcp")
    assert record["citations"] == expected
