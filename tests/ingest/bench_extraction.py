"""Extraction speed: PDF pages per second, HTML, DOCX and EPUB documents per second.

Run: .venv/bin/python -m tests.ingest.bench_extraction [--pages 1000]
Prints wall-clock and CPU rates (CPU is steadier on a shared machine). `measure()` returns the figures, for
`qa bench` to take over in phase 2.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import docx

from qa.ingest.docx import extract_docx
from qa.ingest.epub import extract_epub
from qa.ingest.html import extract_html
from qa.ingest.pdf import extract_pdf
from tests.ingest.pdfs import write_pdf
from tests.ingest.test_epub import make_epub
from tests.ingest.test_html import ARTICLE

DOCS = Path(__file__).resolve().parent.parent / "data" / "docs"
WORDS = "the survey counted moorings in each basin and the harbour master noted which were free".split()


def timed(work: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Wall and CPU seconds for `repeats` runs of `work`."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        work()
    return time.perf_counter() - wall, time.process_time() - cpu


def generated_paragraphs(count: int) -> list[list[str]]:
    def sentence(n: int) -> str:
        return " ".join(WORDS[(n + k) % len(WORDS)] for k in range(12 + n % 9)).capitalize() + f" {n}."

    return [[sentence(n) for n in range(i, i + 3)] for i in range(0, count * 3, 3)]


def measure(*, pages: int = 200, repeats: int = 3) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    register = DOCS / "federal-register-2020-17221.pdf"
    wall, cpu = timed(lambda: extract_pdf(register), repeats)
    results["pdf: Federal Register (15 dense pages, 3 columns)"] = {"unit": 15 * repeats, "wall": wall, "cpu": cpu}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        generated = root / "generated.pdf"
        drawn = write_pdf(generated, generated_paragraphs(pages * 11), columns=2, header="Harbour report")
        wall, cpu = timed(lambda: extract_pdf(generated), 1)
        results[f"pdf: generated ({drawn.pages} pages, 2 columns)"] = {"unit": drawn.pages, "wall": wall, "cpu": cpu}
        book = DOCS / "gutenberg-17997-passamaquoddy.htm"
        for name, source in (("html: news article (2 KB)", ARTICLE), ("html: Gutenberg book (100 KB)", book)):
            wall, cpu = timed(lambda source=source: extract_html(source), repeats * 5)  # type: ignore[misc]
            results[name] = {"unit": repeats * 5, "wall": wall, "cpu": cpu}
        word_file = root / "report.docx"
        document = docx.Document()
        for paragraph in generated_paragraphs(60):
            document.add_paragraph(" ".join(paragraph))
        table = document.add_table(rows=20, cols=4)
        for row in range(20):
            for column in range(4):
                table.cell(row, column).text = f"{row * column}"
        document.save(str(word_file))
        wall, cpu = timed(lambda: extract_docx(word_file), repeats * 5)
        results["docx: 60 paragraphs and a 20x4 table"] = {"unit": repeats * 5, "wall": wall, "cpu": cpu}
        book_file = root / "book.epub"
        make_epub(book_file)
        wall, cpu = timed(lambda: extract_epub(book_file), repeats * 5)
        results["epub: 2 short chapters"] = {"unit": repeats * 5, "wall": wall, "cpu": cpu}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200, help="pages of the generated PDF (default 200)")
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    for name, figures in measure(pages=arguments.pages, repeats=arguments.repeats).items():
        unit = "pages" if name.startswith("pdf") else "documents"
        print(
            f"{name:55} {figures['unit'] / figures['wall']:8.1f} {unit}/s wall  "
            f"{figures['unit'] / max(figures['cpu'], 1e-9):8.1f} {unit}/s of CPU"
        )


if __name__ == "__main__":
    main()
