from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from qa.corpus import find_boilerplate, load_corpus, make_document
from qa.errors import CorpusError, EmptyCorpus
from tests.conftest import SEEDS


def test_seeds_are_read_exactly_as_stored() -> None:
    documents = load_corpus(SEEDS)
    assert [d.source for d in documents] == sorted(p.name for p in SEEDS.glob("*.txt"))
    for document in documents:
        assert document.text == (SEEDS / document.source).read_bytes().decode("utf-8")


def test_seed_titles_are_headlines_not_slogans() -> None:
    titles = {d.source[:3]: d.title for d in load_corpus(SEEDS)}
    assert titles["002"] == "China Allies With Taliban After US Withdrawal From Afghanistan"
    assert titles["001"] == "China likely to recognize Taliban as Afghan rulers with fall of Kabul"


def test_seed_boilerplate_is_skipped_by_range_not_rewritten() -> None:
    documents = {d.source[:3]: d for d in load_corpus(SEEDS)}
    skipped = {key: [d.text[s:e] for s, e, _ in d.skipped] for key, d in documents.items()}
    assert any("Sign up to receive our latest news!" in t for t in skipped["000"])
    assert any("View original post" in t for t in skipped["001"])
    assert any("No stories found." in t for t in skipped["003"])
    # the repeated photo caption and the Japanese book listing of the long article
    assert any(t.startswith("Afghans lie on beds") for t in skipped["004"])
    assert any("遠藤 誉 (著)" in t for t in skipped["004"])
    assert not any("Kabul airport in Afghanistan killed 85 people" in t for t in skipped["004"])


def test_crlf_unicode_and_nbsp_are_kept(tmp_path: Path) -> None:
    raw = "Título\r\nLe café coûte 3\u00a0€.\r\n\r\n“Quoted” line…\r\n"
    (tmp_path / "a.txt").write_bytes(raw.encode("utf-8"))
    [document] = load_corpus(tmp_path)
    assert document.text == raw


def test_jsonl_articles_each_become_a_document(tmp_path: Path) -> None:
    lines = [{"id": "x1", "title": "First", "text": "Alpha beta gamma."}, {"url": "u", "text": "Delta."}, {"id": 3}]
    (tmp_path / "feed.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\nnot json\n", encoding="utf-8")
    documents = load_corpus(tmp_path)
    assert [(d.source, d.title, d.text) for d in documents] == [
        ("feed.jsonl#x1", "First", "Alpha beta gamma."),
        ("feed.jsonl#u", "Delta.", "Delta."),
    ]


def test_binary_and_non_utf8_files_are_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "good.txt").write_text("A readable article about rivers.", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 au lait.".encode("latin-1"))
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\x00\x00\x01binary")
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF-1.4")
    with caplog.at_level(logging.WARNING):
        documents = load_corpus(tmp_path)
    assert [d.source for d in documents] == ["good.txt"]
    assert "latin1.txt: not valid UTF-8 at byte 3" in caplog.text
    assert "image.txt: it looks binary" in caplog.text


def test_empty_and_missing_folders_raise_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "blank.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(EmptyCorpus, match="holds no readable article"):
        load_corpus(tmp_path)
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")


def test_find_boilerplate_marks_repeats_and_trailing_listings() -> None:
    text = (
        "Headline here today\n\nA real sentence that is long enough to count as prose here.\n"
        "A real sentence that is long enough to count as prose here.\nBook one\nBook two\nBook three\n"
    )
    reasons = [(text[s:e].strip(), r) for s, e, r in find_boilerplate(text)]
    assert reasons == [
        ("A real sentence that is long enough to count as prose here.\nBook one\nBook two\nBook three", "repeated line")
    ]
    assert make_document("x.txt", text).title == "Headline here today"


def test_repeated_jsonl_ids_get_distinct_sources(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = [{"id": "x", "text": "First article."}, {"id": "x", "text": "Second article."}]
    (tmp_path / "feed.jsonl").write_text("\n".join(json.dumps(r) for r in lines), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        documents = load_corpus(tmp_path)
    assert [(d.source, d.text) for d in documents] == [
        ("feed.jsonl#x", "First article."),
        ("feed.jsonl#x@2", "Second article."),
    ]
    assert "line 2 repeats the id 'x'" in caplog.text
