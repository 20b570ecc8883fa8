"""Documents of eval/formats -> extraction speed: PDF pages per second, HTML, DOCX and EPUB documents per second.

Each reader runs as `qa index` runs it (`Reader.read`, file hashing included). Rates are given per second of wall
time and per second of CPU (steadier on a shared machine). A 150-page PDF made of ten copies of the Federal
Register shows that time grows linearly with pages.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium

from qa.bench.stats import BenchPlan
from qa.ingest import reader_for

DOCUMENTS = Path("eval/formats/documents")
SAMPLES = (  # (label, file, what one unit is)
    ("pdf: Federal Register (15 pages, 3 columns)", "federal-register-2020-17221.pdf", "pages"),
    ("pdf: NASA digest (5 pages, running lines)", "nasa-artemis-ii-crew-training.pdf", "pages"),
    ("html: Gutenberg book (100 KB)", "gutenberg-17997-passamaquoddy.htm", "documents"),
    ("docx: NASA article (13 paragraphs)", "nasa-orion-heat-shield-findings.docx", "documents"),
    ("epub: NASA book (2 chapters)", "nasa-blue-ghost-mission-one.epub", "documents"),
)


def run_extraction(plan: BenchPlan, say: Callable[[str], None]) -> dict[str, Any]:
    """Rates of each sample, and of a 150-page PDF; `plan.quick` repeats each sample fewer times."""
    repeats = 2 if plan.quick else 5
    rows = []
    for label, name, unit in SAMPLES:
        path = DOCUMENTS / name
        say(f"extraction: {label}")
        units = _units(path, unit)
        rows.append(_rates(label, unit, units, repeats, lambda path=path: _read(path)))  # type: ignore[misc]
    with tempfile.TemporaryDirectory(prefix="qa-bench-pdf-") as folder:
        long = Path(folder) / "register-x10.pdf"
        _repeat_pdf(DOCUMENTS / SAMPLES[0][1], long, copies=10)
        say("extraction: 150-page PDF")
        rows.append(_rates("pdf: 150 pages (10 x Federal Register)", "pages", 150, 1, lambda: _read(long)))
    return {"rows": rows}


def _read(path: Path) -> None:
    reader = reader_for(path)
    if reader is None:
        raise ValueError(f"no reader for {path}")
    documents = list(reader.read(path, path.name, set()))
    if not documents or not documents[0].text:
        raise ValueError(f"{path} gave no text")


def _units(path: Path, unit: str) -> int:
    if unit == "documents":
        return 1
    document = pdfium.PdfDocument(path)
    try:
        return len(document)
    finally:
        document.close()


def _rates(label: str, unit: str, units: int, repeats: int, work: Callable[[], None]) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = units * repeats
    return {
        "sample": label,
        "unit": unit,
        "units": done,
        "seconds": round(wall, 3),
        "per_s_wall": round(done / max(wall, 1e-9), 1),
        "per_s_cpu": round(done / max(cpu, 1e-9), 1),
    }


def _repeat_pdf(source: Path, target: Path, *, copies: int) -> None:
    original = pdfium.PdfDocument(source)
    combined = pdfium.PdfDocument.new()
    try:
        for _ in range(copies):
            combined.import_pages(original)
        combined.save(target)
    finally:
        combined.close()
        original.close()
