"""qa.ingest.formats: the reader of each suffix, and what an extracted document carries into the corpus."""

from __future__ import annotations

from pathlib import Path

from qa.ingest import READERS, describe_formats, load_corpus, reader_for
from qa.ingest.pdf import PdfReader

DOCS = Path(__file__).resolve().parent.parent / "data" / "docs"


def test_each_suffix_has_one_reader() -> None:
    suffixes = [suffix for reader in READERS for suffix in reader.suffixes]
    assert sorted(suffixes) == sorted({".txt", ".md", ".jsonl", ".pdf", ".html", ".htm", ".xhtml", ".docx", ".epub"})
    assert isinstance(reader_for(Path("report.PDF")), PdfReader)
    assert reader_for(Path("notes.odt")) is None
    assert describe_formats().endswith(" or .epub")


def test_extracted_documents_carry_their_extraction(tmp_path: Path) -> None:
    (tmp_path / "page.HTML").write_text("<html><body><p>Hello there, reader.</p></body></html>")
    (tmp_path / "table.pdf").write_bytes((DOCS / "nics-background-checks-2015-11.pdf").read_bytes())
    page, table = load_corpus(tmp_path)
    assert page.text == "Hello there, reader.\n" and page.extractor.startswith("trafilatura") and not page.pages
    assert table.extractor.startswith("pypdfium2") and len(table.file_sha256) == 64
    assert [p.index for p in table.pages] == [1] and table.chars is not None and len(table.chars) == len(table.text)


def test_an_unchanged_file_is_not_extracted_again(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "table.pdf").write_bytes((DOCS / "nics-background-checks-2015-11.pdf").read_bytes())
    (first,) = load_corpus(tmp_path)
    monkeypatch.setattr(PdfReader, "extract", lambda *args: (_ for _ in ()).throw(AssertionError("re-extracted")))
    (again,) = load_corpus(tmp_path, previous={first.source: first})
    assert again is first


def test_a_changed_file_or_reader_version_is_extracted_again(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "table.pdf").write_bytes((DOCS / "nics-background-checks-2015-11.pdf").read_bytes())
    (first,) = load_corpus(tmp_path)
    monkeypatch.setattr(PdfReader, "version", "pypdfium2 0, rules 0")
    (again,) = load_corpus(tmp_path, previous={first.source: first})
    assert again is not first and again.text == first.text and again.extractor == "pypdfium2 0, rules 0"


def test_reading_reports_progress_in_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("One sentence here.\n")
    (tmp_path / "table.pdf").write_bytes((DOCS / "nics-background-checks-2015-11.pdf").read_bytes())
    reports: list[tuple[int, int]] = []
    load_corpus(tmp_path, progress=lambda done, total: reports.append((done, total)))
    total = sum(path.stat().st_size for path in tmp_path.iterdir())
    assert reports[0] == (0, total) and reports[-1] == (total, total)
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)
