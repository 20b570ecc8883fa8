from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from qa.errors import CorpusError, EmptyCorpus
from qa.ingest import MAX_ARTICLE_CHARS, find_boilerplate, load_corpus, make_document
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
    (tmp_path / "ignored.odt").write_bytes(b"PK\x03\x04")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4")
    with caplog.at_level(logging.WARNING):
        documents = load_corpus(tmp_path)
    assert [d.source for d in documents] == ["broken.pdf", "good.txt"]
    assert documents[0].text == "" and "damaged" in documents[0].warnings[0]  # kept, so the index names it
    assert "Not indexing broken.pdf: " in caplog.text
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
    assert "feed.jsonl line 2: the source name 'x' is taken" in caplog.text


def test_source_names_are_unique_by_construction(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A JSONL id equal to a file's name, or to the name given to a repeated id, never yields a second document
    with the same source (the index is keyed by source)."""
    (tmp_path / "b.jsonl").write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": "y.txt", "text": "Record named like the file next to it."},
                {"id": "x", "text": "First x."},
                {"id": "x@3", "text": "An id that looks like a renamed repeat."},
                {"id": "x", "text": "Second x, on line 4."},
                {"id": "x@4", "text": "Another look-alike."},
            ]
        ),
        encoding="utf-8",
    )
    (tmp_path / "b.jsonl#y.txt").write_text("The file whose name the record takes.", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        documents = load_corpus(tmp_path)
    sources = [d.source for d in documents]
    assert len(sources) == len(set(sources)) == 6
    by_source = {d.source: d.text for d in documents}
    assert by_source["b.jsonl#y.txt"] == "The file whose name the record takes."  # files keep their own names
    assert by_source["b.jsonl#x"] == "First x." and by_source["b.jsonl#x@3"].startswith("An id")
    assert "Second x, on line 4." in by_source.values() and "Another look-alike." in by_source.values()
    assert "is taken" in caplog.text


def test_index_and_hidden_folders_inside_the_corpus_are_not_articles(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a.txt").write_text("An article about lakes.", encoding="utf-8")
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "manifest.json").write_text("{}", encoding="utf-8")
    (tmp_path / "idx" / "documents.jsonl").write_text(json.dumps({"text": "indexed copy"}), encoding="utf-8")
    (tmp_path / "other-index").mkdir()
    (tmp_path / "other-index" / "manifest.json").write_text("{}", encoding="utf-8")
    (tmp_path / "other-index" / "chunks.jsonl").write_text(json.dumps({"text": "chunk"}), encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.txt").write_text("Hidden folder text.", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("A nested article.", encoding="utf-8")
    with caplog.at_level(logging.INFO):
        documents = load_corpus(tmp_path, skip=[tmp_path / "idx"])
    assert [d.source for d in documents] == ["a.txt", "sub/b.md"]
    assert "other-index" in caplog.text and "holds an index" in caplog.text


def test_symlinks_leaving_the_corpus_are_not_followed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("A private file outside the corpus.", encoding="utf-8")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("An article about lakes.", encoding="utf-8")
    (corpus / "passwd.txt").symlink_to("/etc/passwd")
    (corpus / "secret.txt").symlink_to(outside / "secret.txt")
    (corpus / "linked-dir").symlink_to(outside, target_is_directory=True)
    (corpus / "alias.txt").symlink_to(corpus / "a.txt")  # stays inside: allowed
    with caplog.at_level(logging.WARNING):
        documents = load_corpus(corpus)
    assert [d.source for d in documents] == ["a.txt", "alias.txt"]
    assert "passwd.txt" in caplog.text and "outside the corpus folder" in caplog.text
    assert "linked-dir" in caplog.text


def test_a_jsonl_record_with_a_lone_surrogate_is_skipped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [
        '{"id": "bad", "text": "Broken \\ud800 text."}',
        '{"id": "ok", "title": "T \\udc00", "text": "A good article."}',
        '{"id": "id \\ud800", "text": "Another good article."}',
    ]
    (tmp_path / "feed.jsonl").write_text("\n".join(lines), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        documents = load_corpus(tmp_path)
    assert [d.text for d in documents] == ["A good article.", "Another good article."]
    for document in documents:
        (document.source + document.title + document.text).encode("utf-8")
    assert "feed.jsonl line 1" in caplog.text and "not valid Unicode" in caplog.text


def test_articles_above_the_documented_size_are_skipped_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "huge.txt").write_bytes(b"The harbor reopened on Monday after repairs. " * 450_000)  # 20 MB, one line
    (tmp_path / "ok.txt").write_text("A normal article.", encoding="utf-8")
    (tmp_path / "feed.jsonl").write_text(json.dumps({"id": "big", "text": "x " * (MAX_ARTICLE_CHARS // 2 + 1)}))
    with caplog.at_level(logging.WARNING):
        documents = load_corpus(tmp_path)
    assert [d.source for d in documents] == ["ok.txt"]
    assert f"longer than {MAX_ARTICLE_CHARS:,} characters" in caplog.text
    assert "huge.txt" in caplog.text and "feed.jsonl line 1" in caplog.text


def test_a_file_name_that_is_not_utf8_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "good.txt").write_text("A readable article about rivers.", encoding="utf-8")
    (tmp_path / b"caf\xe9.txt".decode("utf-8", "surrogateescape")).write_text("Latin-1 name.", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        documents = load_corpus(tmp_path)
    assert [d.source for d in documents] == ["good.txt"]
    assert "not valid UTF-8" in caplog.text
    caplog.text.encode("utf-8")


def test_a_document_of_short_lines_only_is_not_a_trailing_listing() -> None:
    document = make_document("doc.txt", "río uno.\r\nrío dos.\r\nrío tres. ")
    assert document.skipped == ()


def test_a_jsonl_record_may_hold_raw_line_separators(tmp_path: Path) -> None:
    """json.dumps(ensure_ascii=False) writes U+2028 and U+0085 raw; str.splitlines cut the record there and lost it
    (found by tests/test_fuzz.py)."""
    text = "Kabul reopened.\u2028Trade resumed.\u0085Roads\x1cclosed."
    (tmp_path / "news.jsonl").write_text(json.dumps({"id": "a", "text": text}, ensure_ascii=False) + "\r\n", "utf-8")
    assert [(d.source, d.text) for d in load_corpus(tmp_path)] == [("news.jsonl#a", text)]
