"""qa.ingest.pdf on public-domain PDFs (tests/data/docs/SOURCES.md) and on PDFs drawn here with known content."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from reportlab.pdfgen import canvas

from qa.errors import CorpusError, EncryptedDocument, UnreadableDocument
from qa.ingest.extraction import Extraction
from qa.ingest.pdf import extract_pdf, render_page
from qa.layout import Box, CharMap, boxes_for
from qa.segment import split_sentences
from qa.types import Document
from tests.ingest.pdfs import register_dejavu, write_lines, write_pdf

DOCS = Path(__file__).resolve().parent.parent / "data" / "docs"
FEDERAL_REGISTER = DOCS / "federal-register-2020-17221.pdf"
NICS = DOCS / "nics-background-checks-2015-11.pdf"
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\ufffe\uffff]")
TOLERANCE = 0.004  # of the page: 3 points on a letter page


@pytest.fixture(scope="module")
def register() -> Extraction:
    return extract_pdf(FEDERAL_REGISTER)


def unskipped(extraction: Extraction) -> str:
    kept, position = [], 0
    for start, end, _ in extraction.skipped:
        kept.append(extraction.text[position:start])
        position = end
    return "".join(kept) + extraction.text[position:]


def pdfium_word_boxes(path: Path, page: int, word: str) -> list[tuple[float, float, float, float]]:
    """Tight boxes pdfium reports for each occurrence of `word` on `page` (1-based), 0-1 from the top-left."""
    document = pdfium.PdfDocument(path)
    try:
        pdf_page = document[page - 1]
        width, height = pdf_page.get_size()
        textpage = pdf_page.get_textpage()
        searcher = textpage.search(word, match_case=True, match_whole_word=True)
        boxes = []
        while (found := searcher.get_next()) is not None:
            index, count = found
            for rect in range(textpage.count_rects(index, count)):
                left, bottom, right, top = textpage.get_rect(rect)
                boxes.append((left / width, 1 - top / height, right / width, 1 - bottom / height))
            for char in range(index, index + count):  # every glyph's own box lies in that word's rectangle too
                left, bottom, right, top = textpage.get_charbox(char)
                boxes.append((left / width, 1 - top / height, right / width, 1 - bottom / height))
        return boxes
    finally:
        document.close()


def inside(box: tuple[float, float, float, float], boxes: list[Box], page: int) -> bool:
    x0, y0, x1, y1 = box
    return any(
        b.page == page
        and b.x0 - TOLERANCE <= x0
        and x1 <= b.x1 + TOLERANCE
        and b.y0 - TOLERANCE <= y0
        and y1 <= b.y1 + TOLERANCE
        for b in boxes
    )


# --- the Federal Register issue: 15 pages, three columns, running heads, hyphenation, footnotes -------------------


def test_federal_register_pages_and_text(register: Extraction) -> None:
    assert [page.index for page in register.pages] == list(range(1, 16))
    assert [page.label for page in register.pages] == [str(n) for n in range(1, 16)]  # the file has no labels
    assert register.pages[0].start == 0 and register.pages[-1].end == len(register.text)
    assert all(a.end == b.start for a, b in zip(register.pages, register.pages[1:], strict=False))
    assert (register.pages[0].width, register.pages[0].height) == (612.0, 792.0)
    assert not CONTROL.search(register.text)
    assert "\r" not in register.text and "  " not in register.text
    assert register.extractor.startswith("pypdfium2 ")
    assert not register.warnings
    # sentences that run over line ends, hyphenated words among them, come out whole
    assert (
        "The Stabilizer Trim Inoperative checklist of the AFM would be revised to better align with the other "
        "nonnormal checklists, and modified to provide guidance for manually trimming the stabilizer for pitch control"
    ) in register.text
    assert "Since AD 2018–23–51 was issued, the agency has determined that final corrective action" in register.text
    # a footnote's superscript number is set apart from its text
    assert "\n1 Preliminary KNKT.18.10.35.04 Aircraft Accident Investigation Report" in register.text
    assert "\n10 A flight control law generates commands" in register.text


def test_federal_register_running_heads_are_skipped(register: Extraction) -> None:
    skipped = [register.text[start:end] for start, end, _ in register.skipped]
    heads = [text for text in skipped if "Federal Register / Vol. 85, No. 152" in text]
    assert len(heads) == 14  # every page but the first, whose head is laid out differently
    assert sum("VerDate Sep<11>2014" in text for text in skipped) == 15  # the printer's line in the bottom margin
    body = unskipped(register)
    assert "Federal Register / Vol. 85" not in body and "VerDate" not in body
    assert "The FAA proposes to supersede Airworthiness Directive (AD) 2018–23–51" in body  # content is kept
    for start, end, _ in register.skipped:  # each running line is a whole line of its own
        assert start == 0 or register.text[start - 1] == "\n"
        assert register.text[end - 1] == "\n"


def test_federal_register_quote_boxes_match_pdfium_words(register: Extraction) -> None:
    quote = "The Stabilizer Trim Inoperative checklist of the AFM would be revised to better align"
    start = register.text.index(quote)
    boxes = boxes_for(register.chars, start, start + len(quote))
    page = register.page_at(start)
    assert page is not None and page.index == 4
    assert len(boxes) == 3 and {box.page for box in boxes} == {4}  # one box per printed line
    assert all(0 <= box.x0 < box.x1 <= 1 and 0 <= box.y0 < box.y1 <= 1 for box in boxes)
    for word in ("Stabilizer", "Inoperative", "checklist", "revised", "align"):
        found = [b for b in pdfium_word_boxes(FEDERAL_REGISTER, 4, word) if inside(b, boxes, 4)]
        assert found, f"no box covers pdfium's {word!r}"
    # and nothing else: the boxes hold the quoted words only (the line above and below are outside)
    above = "used to correct an out-of-trim condition."
    assert above in register.text
    for box in pdfium_word_boxes(FEDERAL_REGISTER, 4, "out-of-trim"):
        assert not inside(box, boxes, 4)


def test_federal_register_quote_across_a_page_break_has_boxes_on_both_pages(register: Extraction) -> None:
    page_two, page_three = register.pages[1], register.pages[2]
    start, end = page_two.end - 120, page_three.start + 400
    boxes = boxes_for(register.chars, start, end)
    assert {box.page for box in boxes} == {2, 3}
    assert [box.page for box in boxes] == sorted(box.page for box in boxes)  # in text order


def test_character_map_round_trips_without_pickle(register: Extraction) -> None:
    chars = register.chars
    assert chars is not None and len(chars) == len(register.text)
    data = chars.to_bytes()
    loaded = CharMap.from_bytes(data)
    assert np.array_equal(loaded.char_line, chars.char_line)
    assert np.array_equal(loaded.char_box, chars.char_box, equal_nan=True)
    assert np.array_equal(loaded.line_page, chars.line_page)
    with np.load(__import__("io").BytesIO(data), allow_pickle=False) as archive:  # plain arrays, no objects
        assert all(archive[name].dtype != object for name in archive.files)
    assert len(data) < 20 * len(register.text)
    pages = chars.char_pages()
    for page in register.pages:
        drawn = pages[page.start : page.end]
        assert set(drawn[drawn > 0].tolist()) == {page.index}
    with pytest.raises(CorpusError, match="re-index"):
        CharMap.from_bytes(b"not an archive")


def test_nics_table_rows_stay_one_a_line() -> None:
    extraction = extract_pdf(NICS)
    assert len(extraction.pages) == 1 and extraction.pages[0].width == 1008.0
    assert "\nAlabama 18,870 23,022 22,650 859 1,178 0 14 15 0 2,179 2,307 11 0 0 0 13 14 0 3 2 0 71,137\n" in (
        extraction.text
    )
    start = extraction.text.index("Alabama")
    (box,) = boxes_for(extraction.chars, start, start + len("Alabama"))
    (expected,) = [b for b in pdfium_word_boxes(NICS, 1, "Alabama")][:1]
    assert inside(expected, [box], 1)


def test_rotated_page_boxes_follow_the_rotation(tmp_path: Path) -> None:
    """The same table on a page displayed turned by /Rotate 90: the box moves with the page, the text does not."""
    source = pdfium.PdfDocument(NICS)
    source[0].set_rotation(90)
    rotated_path = tmp_path / "rotated.pdf"
    source.save(rotated_path)
    source.close()
    upright, rotated = extract_pdf(NICS), extract_pdf(rotated_path)
    assert sorted(rotated.text.splitlines()) == sorted(upright.text.splitlines())  # pdfium may reorder the notes
    assert (rotated.pages[0].width, rotated.pages[0].height) == (612.0, 1008.0)
    start = upright.text.index("Alabama")
    (box,) = boxes_for(upright.chars, start, start + 7)
    (turned,) = boxes_for(rotated.chars, start, start + 7)
    # turned clockwise: x becomes 1 - y, y becomes x
    assert turned.x0 == pytest.approx(1 - box.y1, abs=1e-5) and turned.x1 == pytest.approx(1 - box.y0, abs=1e-5)
    assert turned.y0 == pytest.approx(box.x0, abs=1e-5) and turned.y1 == pytest.approx(box.x1, abs=1e-5)


# --- PDFs drawn here -------------------------------------------------------------------------------------------

SENTENCES = [
    ["Annual rainfall in the valley reached nine hundred millimetres.", "The river flooded twice in spring."],
    ["Farmers planted barley after the second flood.", "Yields were the highest in a decade."],
    ["The council approved a new bridge in October."],
]


WORDS = ["again", "as before", "in the north", "once more", "we are told", "by all accounts", "in the records"]


def test_two_columns_headers_labels_and_an_image_page(tmp_path: Path) -> None:
    paragraphs = [
        [f"Paragraph {n} says that item {n} costs {n * 7} crowns.", f"{SENTENCES[n % 3][0]} {WORDS[n % 7]} {n}."]
        for n in range(1, 90)
    ]
    path = tmp_path / "report.pdf"
    drawn = write_pdf(
        path, paragraphs, columns=2, header="ACME Annual Report 2024", footer="Page {page}",
        labels=[(0, "ROMAN_LOWER", 1), (2, "ARABIC", 1)], image_pages=(3,),
    )  # fmt: skip
    extraction = extract_pdf(path)
    assert len(extraction.pages) == drawn.pages >= 5
    assert [page.label for page in extraction.pages][:4] == ["i", "ii", "1", "2"]
    assert extraction.warnings == ("page 3 has no text layer (scanned? no OCR is done); it has no citable text.",)
    reasons = [reason for _, _, reason in extraction.skipped]
    assert reasons.count("no text layer") == 1
    for page in extraction.pages:  # header and footer set after the page's first paragraph: one skipped range
        if page.index != 3:
            head = f"ACME Annual Report 2024\nPage {page.index}\n"
            start = extraction.text.index(head, page.start)
            assert start + len(head) <= page.end and extraction.text[start - 1] == "\n"
            assert (start, start + len(head), "running header or footer") in extraction.skipped
    body = unskipped(extraction)
    assert "ACME" not in body and "Page " not in body
    image_page = extraction.pages[2]
    assert extraction.text[image_page.start : image_page.end] == "[page 3: no text layer]\n"
    assert boxes_for(extraction.chars, image_page.start, image_page.end) == []
    for paragraph in paragraphs:
        for sentence in paragraph:
            assert sentence in extraction.text


def test_hyphenation_rule(tmp_path: Path) -> None:
    path = tmp_path / "hyphens.pdf"
    write_lines(path, ["The word hyphen-", "ation is joined, and a well-", "known compound too; the years 2018\u2013",
                       "23 stay apart. An anti-", "American remark."])  # fmt: skip
    text = extract_pdf(path).text
    assert text == (
        "The word hyphenation is joined, and a wellknown compound too; the years 2018\u201323 stay apart. An "
        "anti-American remark.\n"
    )


def test_ligatures_are_spelt_out_with_their_share_of_the_box(tmp_path: Path) -> None:
    font = register_dejavu()
    if font is None:
        pytest.skip("DejaVu Sans (matplotlib) is not installed")
    path = tmp_path / "ligatures.pdf"
    write_lines(path, ["The \ufb01nal \ufb02ow of \ufb03ce work."], font=font)
    extraction = extract_pdf(path)
    assert extraction.text == "The final flow of ffice work.\n"
    start = extraction.text.index("fi")
    (f_box,), (i_box,) = (
        boxes_for(extraction.chars, start, start + 1),
        boxes_for(extraction.chars, start + 1, start + 2),
    )
    (both,) = boxes_for(extraction.chars, start, start + 2)
    assert f_box.x1 == pytest.approx(i_box.x0) and f_box.x0 == both.x0 and i_box.x1 == both.x1


def test_encrypted_pdf_needs_its_password(tmp_path: Path) -> None:
    path = tmp_path / "secret.pdf"
    write_pdf(path, SENTENCES, encrypt="opensesame")
    with pytest.raises(EncryptedDocument, match="encrypted with a password"):
        extract_pdf(path)
    assert "Farmers planted barley" in extract_pdf(path, password="opensesame").text


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9, 0.99])
def test_truncated_pdf_is_an_error_or_a_warning_never_a_crash(tmp_path: Path, cut: float) -> None:
    whole = tmp_path / "whole.pdf"
    write_pdf(whole, SENTENCES * 20)
    data = whole.read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: int(len(data) * cut)])
    try:
        extraction = extract_pdf(path)
    except UnreadableDocument as exc:
        assert "truncated?" in str(exc) and str(path) in str(exc)
    else:  # pdfium repaired what it could: every page is there, the text clean
        assert not CONTROL.search(extraction.text)


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7\n garbage", b"<html>not a pdf</html>", bytes(range(256)) * 8])
def test_malformed_pdf_is_a_clear_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(data)
    with pytest.raises(UnreadableDocument, match="cannot read the PDF"):
        extract_pdf(path)


def test_missing_pdf_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UnreadableDocument, match="cannot read the PDF"):
        extract_pdf(tmp_path / "missing.pdf")


def test_render_page_gives_a_png_of_the_page(tmp_path: Path) -> None:
    png = render_page(NICS, 1, scale=0.5)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (504, 306)
    with pytest.raises(UnreadableDocument, match="no page 2"):
        render_page(NICS, 2)


def test_progress_counts_pages(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    extract_pdf(NICS, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 1)]


@pytest.mark.slow
def test_time_is_linear_in_pages(tmp_path: Path) -> None:
    """A long PDF costs per page what a short one does (no step looks back over the whole document)."""
    paragraphs = [[f"Sentence {n} of the long report names item {n} and its price in crowns."] * 3 for n in range(2400)]
    short, long = tmp_path / "short.pdf", tmp_path / "long.pdf"
    pages_short = write_pdf(short, paragraphs[:240]).pages
    pages_long = write_pdf(long, paragraphs).pages
    timings = []
    for path in (short, long):
        start = time.process_time()
        extract_pdf(path)
        timings.append(time.process_time() - start)
    per_page_short, per_page_long = timings[0] / pages_short, timings[1] / pages_long
    assert pages_long >= 9 * pages_short
    assert per_page_long < 2 * per_page_short


def test_scanned_pdf_warns_once_per_run_of_pages(tmp_path: Path) -> None:
    path = tmp_path / "scanned.pdf"
    write_pdf(path, [["A typed cover page."]], image_pages=(2, 3, 4))
    extraction = extract_pdf(path)
    assert extraction.warnings == (
        "pages 2-4 have no text layer (scanned? no OCR is done); they have no citable text.",
    )
    assert unskipped(extraction) == "A typed cover page.\n"
    assert [extraction.text[page.start : page.end] for page in extraction.pages[1:]] == [
        f"[page {n}: no text layer]\n" for n in (2, 3, 4)
    ]


def test_boxes_stay_on_the_page(tmp_path: Path) -> None:
    """Loose boxes reach past the page's edge and some PDFs draw text off it: boxes are clipped to 0-1."""
    path = tmp_path / "off.pdf"
    pdf = canvas.Canvas(str(path), pagesize=(300, 300))
    pdf.drawString(-30, 150, "Half of this line is off the page.")
    pdf.drawString(20, 295, "This line touches the top edge.")
    pdf.save()
    extraction = extract_pdf(path)
    assert "line is off the page." in extraction.text and "touches the top edge" in extraction.text
    boxes = boxes_for(extraction.chars, 0, len(extraction.text))
    assert len(boxes) == 2
    assert all(0.0 <= value <= 1.0 for box in boxes for value in (box.x0, box.y0, box.x1, box.y1))
    assert boxes[0].x0 == 0.0 or boxes[1].x0 == 0.0


def test_sentence_running_over_a_page_break_stays_whole(tmp_path: Path) -> None:
    sentences = [f"Clause {n} of the lease binds the tenant to repair the {WORDS[n % 7]} fences." for n in range(120)]
    path = tmp_path / "lease.pdf"
    drawn = write_pdf(path, [sentences])  # one long paragraph flowing over the pages
    extraction = extract_pdf(path)
    crossing = [n for n in range(len(sentences)) if len({line.page for line in drawn.of_sentence(n)}) == 2]
    assert crossing, "the test needs a sentence drawn over a page break"
    for number in crossing:
        start = extraction.text.index(sentences[number])  # whole: no line break inside it
        boxes = boxes_for(extraction.chars, start, start + len(sentences[number]))
        assert [box.page for box in boxes] == [line.page for line in drawn.of_sentence(number)]
    assert " ".join(extraction.text.split()) == " ".join(sentences)  # breaks only where a sentence ends
    assert all(line.endswith(".") for line in extraction.text.splitlines())


def test_sentence_over_a_page_break_between_running_lines_stays_whole_and_citable(tmp_path: Path) -> None:
    """The footer of one page and the header of the next are drawn between the halves of the sentence: they are
    set aside (still skipped, still on their page), so the sentence is one span that the segmenter can cite."""
    sentences = [f"Clause {n} of the lease binds the tenant to repair the {WORDS[n % 7]} fences." for n in range(200)]
    path = tmp_path / "lease.pdf"
    drawn = write_pdf(path, [sentences], header="Lease of the farm, page {page}", footer="Draft for review")
    extraction = extract_pdf(path)
    document = Document("lease.pdf", extraction.text, "lease", "", extraction.skipped, pages=extraction.pages)
    spans = {extraction.text[s.start : s.end] for s in split_sentences(document)}
    crossing = [n for n in range(len(sentences)) if len({line.page for line in drawn.of_sentence(n)}) == 2]
    assert len(crossing) >= 2, "the test needs sentences drawn over page breaks"
    for number in crossing:
        start = extraction.text.index(sentences[number])
        end = start + len(sentences[number])
        assert not any(s < end and start < e for s, e, _ in extraction.skipped)
        assert sentences[number] in spans
        boxes = boxes_for(extraction.chars, start, end)
        assert [box.page for box in boxes] == [line.page for line in drawn.of_sentence(number)]
        assert [p.index for p in extraction.pages_of(start, end)] == sorted({box.page for box in boxes})
    running = [extraction.text[s:e] for s, e, reason in extraction.skipped if reason == "running header or footer"]
    assert len(running) == 2 * drawn.pages or len(running) == drawn.pages  # merged when adjacent
    assert "Draft for review" not in unskipped(extraction) and "Lease of the farm" not in unskipped(extraction)
    for page in extraction.pages:  # every running line stays within its own page's range
        text = extraction.text[page.start : page.end]
        assert f"Lease of the farm, page {page.index}\n" in text and "Draft for review\n" in text
