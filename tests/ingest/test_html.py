"""qa.ingest.html: trafilatura's main text, the tag walker, scripts and styles kept out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qa.errors import UnreadableDocument
from qa.ingest.extraction import NO_TEXT
from qa.ingest.html import extract_html

DOCS = Path(__file__).resolve().parent.parent / "data" / "docs"
GUTENBERG = DOCS / "gutenberg-17997-passamaquoddy.htm"
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")

ARTICLE = b"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Bridge opens | The Valley Times</title>
<style>body { color: red } .hidden { display: none }</style>
<script>var tracking = "SECRET-TRACKER"; document.write("INJECTED");</script></head>
<body><nav><a href="/">Home</a> | <a href="/news">News</a> | <a href="/sport">Sport</a></nav>
<article><h1>New bridge opens over the Swale</h1>
<p>The council opened the new bridge on Tuesday, two years after the <b>flood</b> destroyed the old one.</p>
<p>It cost 4.2 million pounds\xe2\x80\x94a third more than planned\xe2\x80\x94and carries\r\n two lanes of traffic.
<script>alert("MIDDLE-SCRIPT")</script></p>
<p>Residents said the \xef\xac\x81rst crossing took under a minute, against forty minutes by the old detour.</p>
<table><tr><th>Year</th><th>Crossings</th></tr><tr><td>2023</td><td>1,200</td></tr></table>
<noscript>Enable JavaScript NOSCRIPT</noscript></article>
<footer>Copyright 2024 The Valley Times. <a href="/privacy">Privacy</a></footer></body></html>"""


@pytest.mark.parametrize("main_content", [True, False])
def test_article_text_without_scripts_or_styles(main_content: bool) -> None:
    extraction = extract_html(ARTICLE, main_content=main_content)
    text = extraction.text
    assert "The council opened the new bridge on Tuesday, two years after the flood destroyed the old one." in text
    assert "It cost 4.2 million pounds\u2014a third more than planned\u2014and carries two lanes of traffic." in text
    assert "Residents said the first crossing took under a minute" in text  # the ligature spelt out
    for hidden in ("SECRET", "INJECTED", "MIDDLE-SCRIPT", "color: red", "NOSCRIPT"):
        assert hidden not in text
    assert not CONTROL.search(text) and "\r" not in text and "  " not in text
    assert text.endswith("\n") and "\n\n" not in text
    assert extraction.title == "Bridge opens | The Valley Times"
    assert extraction.pages == () and extraction.chars is None


def test_main_content_leaves_the_menu_out_and_the_walker_keeps_it() -> None:
    main, everything = extract_html(ARTICLE), extract_html(ARTICLE, main_content=False)
    assert main.extractor.startswith("trafilatura ") and "Sport" not in main.text
    assert everything.extractor.endswith("tag walker") and "Home | News | Sport" in everything.text
    assert "2023 1,200" in everything.text  # a table row is one line, cells apart


def test_page_without_main_text_falls_back_to_the_walker() -> None:
    extraction = extract_html(
        b"<html><body><div>Opening hours: 9 to 5.</div><div>Closed on Sundays.</div></body></html>"
    )
    assert extraction.text == "Opening hours: 9 to 5.\nClosed on Sundays.\n"


def test_gutenberg_book() -> None:
    extraction = extract_html(GUTENBERG)
    text = extraction.text
    assert extraction.title == (
        "The Project Gutenberg eBook of Contribution to Passamaquoddy Folk-Lore, by J. Walter Fewkes"
    )
    assert (
        "The study of aboriginal folk-lore cannot reach its highest scientific value until some method is adopted "
        "by means of which an accurate record of the stories can be obtained and preserved."
    ) in text
    assert (
        "The K\u0101klan, a Zu\u00f1i ritual, for instance, which is recited by the priest once in four years" in text
    )
    assert "text-align: justify" not in text and "margin-top" not in text  # the <style> block
    assert not CONTROL.search(text) and "\r" not in text  # the file's CRLF line ends
    assert len(text) > 50_000


def test_walker_keeps_preformatted_lines() -> None:
    extraction = extract_html(
        b"<html><body><pre>line one\nline  two</pre><p>a\nb</p></body></html>", main_content=False
    )
    assert extraction.text == "line one\nline two\na b\n"


@pytest.mark.parametrize("data", [b"", b"   \n"])
def test_empty_page_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(UnreadableDocument, match="empty"):
        extract_html(data)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UnreadableDocument, match="cannot be read"):
        extract_html(tmp_path / "missing.html")


@pytest.mark.parametrize("main_content", [True, False])
def test_page_without_text_says_so(main_content: bool) -> None:
    extraction = extract_html(
        b"<html><body><img src='a.png'><script>x()</script></body></html>", main_content=main_content
    )
    assert extraction.text == "" and extraction.warnings == (NO_TEXT,)
