"""qa.ingest.extraction: the shared text rules, boxes from a character map, the page lookup."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qa.errors import CorpusError, DocumentTooLarge
from qa.ingest.extraction import Extraction, check_zip_size, clean_text
from qa.layout import Box, CharMap, Page, boxes_for

NAN = math.nan


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\r\nb\rc\n", "a\nb\nc\n"),
        ("  spaced \t\u00a0 out  \n\n\n next", "spaced out\nnext\n"),
        ("\ufb01ne \ufb02at \ufb00 \ufb03 \ufb04", "fine flat ff ffi ffl\n"),
        ("bell\x07 null\x00 esc\x1b del\x7f c1\x85", "bell null esc del c1\n"),
        ("soft\u00adhyphen zero\u200bwidth \ufeffbom", "softhyphen zerowidth bom\n"),
        ("", ""),
        ("\n \n", ""),
        ("Ünïcödé 東京 👍", "Ünïcödé 東京 👍\n"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def small_map() -> CharMap:
    """'ab cd\\nef': 'ab', 'cd' on lines 0 and 1 of page 1, 'ef' on line 2 of page 2; space and newline inserted."""
    boxes = [
        (0.1, 0.1, 0.2, 0.12), (0.2, 0.1, 0.3, 0.12), (NAN, NAN, NAN, NAN),
        (0.1, 0.2, 0.2, 0.22), (0.2, 0.2, 0.35, 0.23), (NAN, NAN, NAN, NAN),
        (0.5, 0.5, 0.6, 0.52), (0.6, 0.5, 0.7, 0.52),
    ]  # fmt: skip
    return CharMap(
        char_line=np.array([0, 0, -1, 1, 1, -1, 2, 2], dtype=np.int32),
        char_box=np.array(boxes, dtype=np.float32),
        line_page=np.array([1, 1, 2], dtype=np.int32),
    )


def rounded(boxes: list[Box]) -> list[tuple[float, ...]]:
    return [(box.page, *(round(value, 4) for value in (box.x0, box.y0, box.x1, box.y1))) for box in boxes]


def test_boxes_for_gives_one_box_per_line_on_every_page() -> None:
    chars = small_map()
    assert rounded(boxes_for(chars, 0, 8)) == [
        (1, 0.1, 0.1, 0.3, 0.12),
        (1, 0.1, 0.2, 0.35, 0.23),
        (2, 0.5, 0.5, 0.7, 0.52),
    ]
    assert rounded(boxes_for(chars, 1, 4)) == [(1, 0.2, 0.1, 0.3, 0.12), (1, 0.1, 0.2, 0.2, 0.22)]
    assert boxes_for(chars, 2, 3) == []  # only an inserted space
    assert boxes_for(chars, 5, 5) == []
    assert chars.char_pages().tolist() == [1, 1, -1, 1, 1, -1, 2, 2]


def test_boxes_for_an_extraction_without_a_map_is_empty() -> None:
    extraction = Extraction(text="plain\n", title=None, extractor="test")
    assert boxes_for(extraction.chars, 0, 5) == []
    assert extraction.page_at(0) is None


def test_page_at_and_equality_ignore_the_map() -> None:
    pages = (Page(1, "i", 0, 3, 612.0, 792.0), Page(2, "ii", 3, 8, 612.0, 792.0))
    one = Extraction(text="ab cd\nef", title=None, extractor="test", pages=pages, chars=small_map())
    other = Extraction(text="ab cd\nef", title=None, extractor="test", pages=pages, chars=small_map())
    assert one == other
    assert one.page_at(0) == pages[0] and one.page_at(3) == pages[1] and one.page_at(8) is None
    assert one.pages_of(1, 5) == pages and one.pages_of(0, 3) == pages[:1] and one.pages_of(3, 4) == pages[1:]
    assert one.pages_of(8, 9) == () and Extraction(text="x", title=None, extractor="t").pages_of(0, 1) == ()


def test_zip_limits() -> None:
    check_zip_size([("word/document.xml", 10_000)], "small.docx")
    with pytest.raises(DocumentTooLarge, match="bomb") as raised:
        check_zip_size([("a", 150_000_000), ("b", 150_000_000)], "big.docx")
    assert isinstance(raised.value, CorpusError) and "big.docx" in str(raised.value)
    with pytest.raises(DocumentTooLarge):
        check_zip_size([(str(n), 1) for n in range(30_000)], "many.epub")


def test_record_round_trip_through_json() -> None:
    pages = (Page(1, "i", 0, 3, 612.0, 792.0), Page(2, "ii", 3, 8, 612.0, 792.0))
    extraction = Extraction(
        text="ab cd\nef", title="T", extractor="test 1", pages=pages, skipped=((6, 8, "running header or footer"),),
        warnings=("page 3 has no text layer",), chars=small_map(),
    )  # fmt: skip
    record = json.loads(json.dumps(extraction.to_record()))
    chars = CharMap.from_bytes(extraction.chars.to_bytes())  # type: ignore[union-attr]
    loaded = Extraction.from_record(record, chars)
    assert loaded == extraction and rounded(boxes_for(loaded.chars, 0, 8)) == rounded(boxes_for(extraction.chars, 0, 8))
    assert Extraction.from_record(record).chars is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"text": "tampered"}, "does not match its hash"),
        ({"pages": [{"index": 1}]}, "malformed"),
        ({"skipped": [[1, 2]]}, "malformed"),
    ],
)
def test_damaged_record_is_a_clear_error(change: dict[str, object], message: str) -> None:
    record = {**Extraction(text="abc\n", title=None, extractor="test").to_record(), **change}
    with pytest.raises(CorpusError, match=message):
        Extraction.from_record(record)


def test_character_map_must_fit_the_text() -> None:
    record = Extraction(text="abc\n", title=None, extractor="test").to_record()
    with pytest.raises(CorpusError, match="does not fit"):
        Extraction.from_record(record, small_map())
