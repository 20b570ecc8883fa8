"""qa.ingest.docx: a Word file made here with python-docx; paragraphs and tables in document order."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import docx
import pytest

from qa.errors import DocumentTooLarge, EncryptedDocument, UnreadableDocument
from qa.ingest import extraction as extraction_module
from qa.ingest.docx import extract_docx
from qa.ingest.extraction import NO_TEXT

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def make_docx(path: Path) -> None:
    document = docx.Document()
    document.core_properties.title = "Harbour survey 2024"
    document.add_heading("Harbour survey", level=1)
    document.add_paragraph("The survey counted 312 moorings in the east basin.\tMost were occupied.")
    table = document.add_table(rows=3, cols=3)
    for row, cells in enumerate([["Basin", "Moorings", "Free"], ["East", "312", "40"], ["West", "198", "12"]]):
        for column, text in enumerate(cells):
            table.cell(row, column).text = text
    merged = document.add_table(rows=2, cols=2)
    merged.cell(0, 0).merge(merged.cell(0, 1)).text = "Both basins together"
    merged.cell(1, 0).text, merged.cell(1, 1).text = "Total", "510"
    paragraph = document.add_paragraph("Dredging of the \ufb01rst channel starts in ")
    paragraph.add_run("March").bold = True
    paragraph.add_run(" and ends in June.")
    document.add_paragraph("")  # empty paragraphs leave no empty lines
    document.sections[0].header.paragraphs[0].text = "CONFIDENTIAL HEADER"
    document.save(str(path))


def test_paragraphs_and_tables_in_document_order(tmp_path: Path) -> None:
    path = tmp_path / "survey.docx"
    make_docx(path)
    extraction = extract_docx(path)
    assert extraction.text == (
        "Harbour survey\n"
        "The survey counted 312 moorings in the east basin. Most were occupied.\n"
        "Basin | Moorings | Free\nEast | 312 | 40\nWest | 198 | 12\n"
        "Both basins together\nTotal | 510\n"
        "Dredging of the first channel starts in March and ends in June.\n"
    )
    assert extraction.title == "Harbour survey 2024"
    assert extraction.extractor.startswith("python-docx ")
    assert not CONTROL.search(extraction.text) and "CONFIDENTIAL" not in extraction.text


def test_title_falls_back_to_the_first_heading(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Minutes of the March meeting", level=1)
    document.add_paragraph("The meeting opened at seven.")
    path = tmp_path / "minutes.docx"
    document.save(str(path))
    assert extract_docx(path).title == "Minutes of the March meeting"


def test_decompression_bomb_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extraction_module, "MAX_ZIP_BYTES", 1_000_000)
    path = tmp_path / "bomb.docx"
    make_docx(path)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("word/media/padding.bin", "w") as member:
            for _ in range(4):
                member.write(bytes(1_000_000))  # 4 MB of zeros in a few KB
    assert path.stat().st_size < 100_000
    with pytest.raises(DocumentTooLarge, match="decompression bomb"):
        extract_docx(path)


def test_password_protected_word_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "locked.docx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(EncryptedDocument, match="password-protected"):
        extract_docx(path)


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 truncated", b"plain text, not a zip"])
def test_broken_word_file_is_a_clear_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(data)
    with pytest.raises(UnreadableDocument, match="broken.docx"):
        extract_docx(path)


def test_zip_that_is_not_a_word_file(tmp_path: Path) -> None:
    path = tmp_path / "other.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hello")
    with pytest.raises(UnreadableDocument, match="not a readable Word document"):
        extract_docx(path)


def test_document_without_text_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.docx"
    docx.Document().save(str(path))
    extraction = extract_docx(path)
    assert extraction.text == "" and extraction.warnings == (NO_TEXT,)
