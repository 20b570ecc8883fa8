"""What only the PostgreSQL store has: generations, atomic builds, and a database that is down or not ours."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import psycopg
import pytest
from click.testing import CliRunner

from qa import Assistant, Settings
from qa.chunk import chunk_document
from qa.cli import cli
from qa.errors import IndexCorrupt, IndexNotFound, IndexUnavailable
from qa.store import LocalPostgres, build_store, free_port, load_store
from qa.types import Chunk, Document, Sentence
from tests.fakes import HashEmbeddings

SEAL = "What is the seal population of Lake Baikal?"
QUESTION = "How many people were killed in the suicide bombing at Kabul airport?"


def sql(settings: Settings, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(settings.store, autocommit=True) as conn:
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else []


def assert_names_url_not_password(message: str, url: str) -> None:
    parts = urlsplit(url)
    assert f"{parts.hostname}:{parts.port}" in message and (parts.password or "") not in message


def test_a_failed_build_leaves_the_old_corpus_whole(pg_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    build_store(pg_settings, embedder=HashEmbeddings())
    (pg_settings.corpus_dir / "lake.txt").write_text("Lake Baikal was renamed.\n", encoding="utf-8")
    import qa.store.pg_build as build

    real_copy = build._copy_rows

    def copy_then_crash(*args: object) -> None:
        real_copy(*args)  # type: ignore[arg-type]
        raise KeyboardInterrupt  # rows written, generation not committed

    monkeypatch.setattr(build, "_copy_rows", copy_then_crash)
    with pytest.raises(KeyboardInterrupt):
        build_store(pg_settings, embedder=HashEmbeddings())
    store = load_store(pg_settings)
    assert store.generation == 1 and "100,000" in store.documents["lake.txt"].text
    assert sql(pg_settings, "SELECT count(*) FROM qa_documents WHERE born > 1 OR died IS NOT NULL") == [(0,)]


def test_a_new_generation_is_checked_before_it_is_committed(
    pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_store(pg_settings, embedder=HashEmbeddings())
    (pg_settings.corpus_dir / "lake.txt").write_text("Changed text about a lake. It is deep.\n", encoding="utf-8")

    def broken(document: Document, sentences: list[Sentence], **options: Any) -> list[Chunk]:
        chunks = chunk_document(document, sentences, **options)
        return [dataclasses.replace(c, sentence_ids=(*c.sentence_ids, 10_000)) for c in chunks]

    monkeypatch.setattr("qa.store.build.chunk_document", broken)
    with pytest.raises(IndexCorrupt, match="failed its check.*previous index in"):
        build_store(pg_settings, embedder=HashEmbeddings())
    store = load_store(pg_settings)
    assert store.generation == 1 and "100,000" in store.documents["lake.txt"].text


def test_an_old_snapshot_keeps_answering_while_the_corpus_changes(pg_settings: Settings) -> None:
    embedder = HashEmbeddings()
    assistant = Assistant.load(pg_settings, embedder=embedder)
    old = assistant.index
    lake = pg_settings.corpus_dir / "lake.txt"
    original = lake.read_text("utf-8")
    for population in ("120,000", "130,000"):  # two re-indexes: rows of generation 1 are still kept
        lake.write_text("Update.\n\n" + original.replace("100,000", population), encoding="utf-8")
        build_store(pg_settings, embedder=embedder)
    query = np.asarray(embedder.embed_query(SEAL), dtype="float32")
    ids = old.search("sentences", query, 5)
    assert "100,000" in " ".join(old.text(old.sentences[i]) for i in ids)  # its own corpus, its own offsets
    assert old.vectors("sentences", ids).shape == (5, embedder.dim)
    answer = assistant.ask(SEAL)  # the assistant moves to the newest corpus first
    assert assistant.index.generation == 3 and any("130,000" in c.quote for c in answer.citations)
    assert all(assistant.documents[c.source].text[c.start : c.end] == c.quote for c in answer.citations)


def test_a_server_that_is_down_is_named_with_the_fix(pg_settings: Settings) -> None:
    url = f"postgresql://postgres:secret-pw@127.0.0.1:{free_port()}/qa"
    with pytest.raises(IndexUnavailable, match="qa db start") as raised:
        load_store(pg_settings.replace(store=url))
    assert_names_url_not_password(str(raised.value), url)
    with pytest.raises(IndexUnavailable):
        Assistant.load(pg_settings.replace(store=url), embedder=HashEmbeddings())


def test_a_wrong_password_is_refused_without_showing_it(pg_settings: Settings) -> None:
    password = urlsplit(pg_settings.store).password or ""
    url = pg_settings.store.replace(password, "Wrong-Password-42")
    with pytest.raises(IndexUnavailable, match="check the user and password") as raised:
        build_store(pg_settings.replace(store=url), embedder=HashEmbeddings())
    assert "Wrong-Password-42" not in str(raised.value) and password not in str(raised.value)
    assert_names_url_not_password(str(raised.value), url)


def test_a_database_without_pgvector_or_rights_says_what_to_do(postgres: LocalPostgres, pg_settings: Settings) -> None:
    admin = postgres.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS reader")
        conn.execute("CREATE ROLE reader LOGIN PASSWORD 'reader-pw'")
    database = urlsplit(pg_settings.store).path.lstrip("/")
    url = f"postgresql://reader:reader-pw@127.0.0.1:{postgres.port}/{database}"
    try:
        with pytest.raises(IndexUnavailable, match=re.escape("CREATE EXTENSION vector;")) as raised:
            build_store(pg_settings.replace(store=url), embedder=HashEmbeddings())
        assert "'reader'" in str(raised.value) and "reader-pw" not in str(raised.value)
        with pytest.raises(IndexNotFound):  # reading an empty database: nothing built yet
            load_store(pg_settings.replace(store=url))
        with psycopg.connect(pg_settings.store, autocommit=True) as conn:  # a superuser enables it ...
            conn.execute("CREATE EXTENSION vector")
        with pytest.raises(IndexUnavailable, match="allowed to create tables"):  # ... but reader may not write
            build_store(pg_settings.replace(store=url), embedder=HashEmbeddings())
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {database} WITH (FORCE)")
            conn.execute("DROP ROLE reader")
            conn.execute(f"CREATE DATABASE {database}")  # for the fixture to drop


@pytest.mark.parametrize(
    ("edit", "found"),
    [
        ("UPDATE qa_chunks SET body = 'edited' WHERE ordinal = 0", "chunk's text differs"),
        ("DELETE FROM qa_sentences WHERE ordinal = 1", "names a missing sentence"),
        ("DELETE FROM qa_chunks WHERE ordinal = 1", "manifest counts"),
        ("UPDATE qa_documents SET body = body || ' more'", "does not match its hash"),
        ("UPDATE qa_sentences SET start_at = start_at + 1 WHERE ordinal = 0", "no longer matches its text"),
        ("ALTER TABLE qa_sentences ALTER COLUMN embedding TYPE vector", "qa_sentences.embedding of type vector"),
        ("DROP TABLE qa_chunks CASCADE", "lacks table(s) qa_chunks"),
    ],
)
def test_tables_edited_by_hand_are_refused(pg_settings: Settings, edit: str, found: str) -> None:
    build_store(pg_settings, embedder=HashEmbeddings())
    sql(pg_settings, edit)
    with pytest.raises(IndexCorrupt, match=re.escape(found)) as raised:
        load_store(pg_settings)
    assert "qa db drop" in str(raised.value)
    assert_names_url_not_password(str(raised.value), pg_settings.store)
    with pytest.raises(IndexCorrupt):  # never rebuilt behind the other workers' back
        Assistant.load(pg_settings, embedder=HashEmbeddings())


def test_a_column_dropped_while_serving_is_an_index_problem(pg_settings: Settings) -> None:
    store = build_store(pg_settings, embedder=HashEmbeddings())
    sql(pg_settings, "ALTER TABLE qa_lexical DROP COLUMN lexemes")
    with pytest.raises(IndexCorrupt, match="edited by hand"):
        store.lexical("Baikal", 3)


def test_db_commands(postgres: LocalPostgres, pg_settings: Settings) -> None:
    build_store(pg_settings, embedder=HashEmbeddings())
    runner = CliRunner()
    dropped = runner.invoke(cli, ["db", "drop", "--store", pg_settings.store])
    assert dropped.exit_code == 0 and "Dropped qa index tables" in dropped.output
    assert urlsplit(pg_settings.store).password not in dropped.output
    with pytest.raises(IndexNotFound):
        load_store(pg_settings)
    assert runner.invoke(cli, ["db", "stop", "--data-dir", str(postgres.data_dir)]).exit_code == 0
    started = runner.invoke(cli, ["db", "start", "--data-dir", str(postgres.data_dir)])
    assert started.exit_code == 0 and started.stdout.strip() == postgres.url()
    assert runner.invoke(cli, ["db", "drop"]).exit_code == 2  # no database given


@pytest.mark.slow  # the CLI loads the real MiniLM model
def test_cli_indexes_and_answers_from_the_database(pg_url: str) -> None:
    from tests.conftest import SEEDS

    runner = CliRunner()
    built = runner.invoke(cli, ["--corpus", str(SEEDS), "index", "--store", pg_url])
    assert built.exit_code == 0, built.output
    assert "Indexed 5 documents" in built.output and urlsplit(pg_url).password not in built.output
    asked = runner.invoke(
        cli, ["--corpus", str(SEEDS), "ask", "--json", "--engine", "extractive", "--store", pg_url, QUESTION]
    )
    assert asked.exit_code == 0, asked.output
    record = json.loads(asked.stdout)
    assert "85" in record["answer"] and record["citations"]
    for citation in record["citations"]:
        text = (SEEDS / citation["source"]).read_text(encoding="utf-8")
        assert text[citation["start"] : citation["end"]] == citation["quote"]


def test_a_pdf_keeps_its_extraction_in_the_database(pg_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from qa.ingest.pdf import PdfReader
    from tests.ingest.pdfs import write_pdf

    sentences = [f"Clause {n} of the lease binds the tenant to repair the fences by {1990 + n}." for n in range(150)]
    write_pdf(pg_settings.corpus_dir / "lease.pdf", [sentences], header="Lease of Marsh Farm {page}", footer="Draft")
    built = build_store(pg_settings, embedder=HashEmbeddings()).documents["lease.pdf"]
    loaded = load_store(pg_settings).documents["lease.pdf"]
    assert loaded == built and len(loaded.pages) >= 3 and loaded.extractor == PdfReader.version
    assert loaded.chars is not None and built.chars is not None
    assert np.array_equal(loaded.chars.char_line, built.chars.char_line)
    start = loaded.text.index(sentences[70])
    answer_box = Assistant.load(pg_settings, embedder=HashEmbeddings()).citation("lease.pdf", start, start + 20)
    assert answer_box.page_start is not None and answer_box.boxes
    monkeypatch.setattr(PdfReader, "extract", lambda *args: pytest.fail("an unchanged PDF was extracted again"))
    build_store(pg_settings, embedder=HashEmbeddings())  # incremental: the database's extraction is reused
