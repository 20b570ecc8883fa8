"""A PDF citation in real Chromium: clicking it shows the cited page as an image with boxes that lie over the
quoted words as pdfium reports them (a screenshot goes to test-artifacts/; ui/screenshot-pdf.png shows the same view
over eval/formats with MiniLM)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from qa import Assistant, Settings
from tests.conftest import COVERAGE_RANKER
from tests.fakes import HashEmbeddings
from tests.ingest.pdfs import write_pdf
from tests.ingest.test_pdf import pdfium_word_boxes
from tests.servers import live_server
from tests.test_ui_browser import ARTIFACTS, ask, browser, page  # noqa: F401  (fixtures)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
]

WORDS = ["north", "east", "south", "west", "upper", "lower", "outer"]
LEASE = [
    f"Clause {n} of the lease binds the tenant to repair the {WORDS[n % 7]} fences by {1990 + n}." for n in range(150)
]
QUESTION = "By which year must the tenant repair the west fences under clause 73?"
TOLERANCE = 0.006  # of the page: the boxes' 2-pixel border and the image's rounding


@pytest.fixture(scope="module")
def pdf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Assistant]]:
    from ui.app import build_server

    root = tmp_path_factory.mktemp("pdf-ui")
    corpus = root / "corpus"
    corpus.mkdir()
    write_pdf(corpus / "lease.pdf", [LEASE], header="Lease of Marsh Farm, page {page}", footer="Draft for the tenants")
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", engine="extractive", ranker_path=COVERAGE_RANKER)
    assistant = Assistant.load(settings, embedder=HashEmbeddings())
    with live_server(build_server(assistant)) as url:
        yield url + "/", assistant


def test_a_pdf_citation_shows_its_page_with_boxes_over_the_quoted_words(
    pdf_server: tuple[str, Assistant],
    page: Any,  # noqa: F811
) -> None:
    url, assistant = pdf_server
    expected = assistant.ask(QUESTION)
    assert expected.citations and expected.citations[0].boxes
    cited = expected.citations[0]
    page.goto(url)
    ask(page, QUESTION)
    answer = page.locator("#qa-conversation .qa-answer.qa-cited")
    answer.wait_for()
    answer.locator("p button.qa-cite", has_text="[1]").click()
    image = page.locator("#qa-source-panel figure.qa-page img.qa-page-image").first
    image.wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('#qa-source-panel img.qa-page-image');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    assert page.locator("#qa-source-panel mark.qa-highlight").first.text_content() in cited.quote
    shown = page.evaluate(
        """() => Array.from(document.querySelectorAll('#qa-source-panel figure.qa-page')).flatMap(function (f) {
            const img = f.querySelector('img').getBoundingClientRect();
            return Array.from(f.querySelectorAll('.qa-box')).map(function (b) {
                const r = b.getBoundingClientRect();
                return {page: Number(f.dataset.page), x0: (r.left - img.left) / img.width,
                        y0: (r.top - img.top) / img.height, x1: (r.right - img.left) / img.width,
                        y1: (r.bottom - img.top) / img.height};
            });
        })"""
    )
    assert [box["page"] for box in shown] == [box.page for box in cited.boxes]  # one box per line, each page
    path = assistant.original(cited.source)
    for word in set(re.findall(r"[A-Za-z]{4,}|\d{4}", cited.quote)):
        found = [
            (number, b) for number in {box.page for box in cited.boxes} for b in pdfium_word_boxes(path, number, word)
        ]
        assert any(covered(b, number, shown) for number, b in found), f"no box lies over pdfium's {word!r}"
    for box in shown:  # one printed line each: about the font's height (11 pt on a 792 pt page), not more
        assert 0.01 < box["y1"] - box["y0"] < 0.03 and box["x1"] > box["x0"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-pdf-citation.png"))
    if len(expected.citations) > 1:  # "next citation" opens [2], "previous" goes back to [1]
        where = page.locator("#qa-source-panel .qa-where")
        page.locator("#qa-source-panel [data-qa-step='1']").click()
        second = expected.citations[1]
        page.wait_for_function(
            "(wanted) => (document.querySelector('#qa-source-panel .qa-where') || {}).textContent.includes(wanted)",
            arg=f"characters {second.start}–{second.end}",
        )
        page.locator("#qa-source-panel [data-qa-step='-1']").click()
        page.wait_for_function(
            "(wanted) => (document.querySelector('#qa-source-panel .qa-where') || {}).textContent.includes(wanted)",
            arg=f"characters {cited.start}–{cited.end}",
        )
        assert f"characters {cited.start}–{cited.end}" in (where.text_content() or "")


def covered(word: tuple[float, float, float, float], number: int, shown: list[dict[str, float]]) -> bool:
    x0, y0, x1, y1 = word
    return any(
        box["page"] == number
        and box["x0"] - TOLERANCE <= x0
        and x1 <= box["x1"] + TOLERANCE
        and box["y0"] - TOLERANCE <= y0
        and y1 <= box["y1"] + TOLERANCE
        for box in shown
    )
