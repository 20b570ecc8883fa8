"""Property: for PDFs of random paragraphs (one or two columns, one or more pages), the extracted text is the
drawn text up to the documented whitespace rules, and every sentence's offsets map to one box per drawn line,
on the pages where it was drawn, lying over that line."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.ingest.pdf import extract_pdf
from qa.layout import boxes_for
from tests.ingest.pdfs import write_pdf

TOLERANCE = 0.006  # of the page (about 4 points): pdfium's loose boxes use the font's bounds, ours the drawn size

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10)
sentences = st.lists(words, min_size=3, max_size=14).map(lambda ws: " ".join(ws).capitalize() + ".")
paragraphs = st.lists(st.lists(sentences, min_size=1, max_size=4), min_size=1, max_size=30)


def collapse(text: str) -> str:
    return " ".join(text.split())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=paragraphs, columns=st.sampled_from([1, 2]), size=st.sampled_from([9.0, 11.0, 14.0]))
def test_generated_pdf_text_and_boxes(document: list[list[str]], columns: int, size: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.pdf"
        drawn = write_pdf(path, document, columns=columns, size=size)
        extraction = extract_pdf(path)
    assert len(extraction.pages) == drawn.pages
    assert collapse(extraction.text) == collapse(" ".join(" ".join(paragraph) for paragraph in document))
    assert extraction.text.count("\n") <= sum(len(p) for p in document) + drawn.pages * columns  # no stray breaks
    position = 0
    for number, sentence in enumerate(s for paragraph in document for s in paragraph):
        found = re.compile(r"\s".join(map(re.escape, sentence.split()))).search(extraction.text, position)
        assert found, sentence
        position = found.end()
        boxes = boxes_for(extraction.chars, found.start(), found.end())
        lines = drawn.of_sentence(number)
        assert [box.page for box in boxes] == [line.page for line in lines]
        for box, line in zip(boxes, lines, strict=True):
            assert line.x0 - TOLERANCE <= box.x0 < box.x1 <= line.x1 + TOLERANCE
            assert line.y0 - TOLERANCE <= box.y0 < box.y1 <= line.y1 + TOLERANCE
