"""Writes the mixed-format evaluation corpus (eval/formats/documents): two real documents copied byte for byte from
tests/data/docs, and NASA news articles of eval/second/corpus (public domain) set as a PDF, a DOCX, an EPUB and a
text file. Run once: `python -m tests.ingest.formats_corpus`; the files are committed, with their origins in
eval/formats/README.md.
"""

from __future__ import annotations

import html
import re
import shutil
import zipfile
from pathlib import Path

import docx

from tests.ingest.pdfs import write_pdf

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "tests" / "data" / "docs"
NASA = ROOT / "eval" / "second" / "corpus"
TARGET = ROOT / "eval" / "formats" / "documents"
SENTENCE = re.compile(r"(?<=[.!?”])\s+(?=[“A-Z0-9])")


def article(name: str) -> tuple[str, list[str]]:
    """A NASA article's headline and paragraphs (blank-line separated in the file)."""
    blocks = [b.strip() for b in (NASA / name).read_text(encoding="utf-8").split("\n\n") if b.strip()]
    return blocks[0], blocks[1:]


def write_pdf_article(path: Path, names: list[str]) -> None:
    paragraphs: list[list[str]] = []
    for name in names:
        headline, body = article(name)
        paragraphs += [[headline], *(SENTENCE.split(p) for p in body)]
    write_pdf(path, paragraphs, header="NASA Artemis news digest", footer="Page {page}")


def write_docx(path: Path, name: str) -> None:
    headline, body = article(name)
    document = docx.Document()
    document.core_properties.title = headline
    document.add_heading(headline, level=1)
    for paragraph in body:
        document.add_paragraph(paragraph)
    document.save(str(path))


def write_epub(path: Path, names: list[str], title: str) -> None:
    chapters = {}
    for number, name in enumerate(names, start=1):
        headline, body = article(name)
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in body)
        chapters[f"OEBPS/chapter{number}.xhtml"] = (
            '<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
            f"<title>{html.escape(headline)}</title></head><body><h1>{html.escape(headline)}</h1>{paragraphs}"
            "</body></html>"
        )
    items = "".join(
        f'<item id="c{n}" href="chapter{n}.xhtml" media-type="application/xhtml+xml"/>'
        for n in range(1, len(names) + 1)
    )
    spine = "".join(f'<itemref idref="c{n}"/>' for n in range(1, len(names) + 1))
    package = (
        '<?xml version="1.0" encoding="utf-8"?>\n<package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:identifier id="id">qa-formats-{path.stem}</dc:identifier><dc:title>{html.escape(title)}</dc:title>'
        f"<dc:language>en</dc:language></metadata><manifest>{items}</manifest><spine>{spine}</spine></package>"
    )
    container = (
        '<?xml version="1.0"?>\n<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("OEBPS/content.opf", package)
        for name, text in chapters.items():
            archive.writestr(name, text)


def main() -> None:
    TARGET.mkdir(parents=True, exist_ok=True)
    for name in ("federal-register-2020-17221.pdf", "gutenberg-17997-passamaquoddy.htm"):
        shutil.copyfile(DOCS / name, TARGET / name)
    write_pdf_article(
        TARGET / "nasa-artemis-ii-crew-training.pdf",
        [
            "029_crew-trains-in-orion.txt",
            "033_crew-night-launch-training.txt",
            "039_artemis-ii-mission-masterminds.txt",
        ],
    )
    write_docx(TARGET / "nasa-orion-heat-shield-findings.docx", "001_orion-heat-shield-findings.txt")
    write_epub(
        TARGET / "nasa-blue-ghost-mission-one.epub",
        ["015_blue-ghost-surface-operations.txt", "017_blue-ghost-eclipse-from-moon.txt"],
        "Blue Ghost Mission 1 on the Moon",
    )
    shutil.copyfile(NASA / "020_south-korean-cubesat.txt", TARGET / "nasa-south-korean-cubesat.txt")


if __name__ == "__main__":
    main()
