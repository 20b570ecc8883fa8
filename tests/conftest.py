"""Shared fixtures: the real MiniLM model, a real index of seeds/ built once per session, a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa import Assistant, Settings
from qa.embed import SentenceEmbedder

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
TINY = Path(__file__).resolve().parent / "data" / "tiny"


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
    return Settings(corpus_dir=SEEDS, index_dir=tmp_path_factory.mktemp("seeds-index") / "index",
                    engine="extractive")


@pytest.fixture(scope="session")
def assistant(seeds_settings: Settings, embedder: SentenceEmbedder) -> Assistant:
    """The extractive assistant over a real index of seeds/, built once for the whole session."""
    from qa.api import open_index

    return Assistant(seeds_settings, open_index(seeds_settings, embedder=embedder), embedder)


@pytest.fixture()
def tiny_settings(tmp_path: Path) -> Iterator[Settings]:
    yield Settings(corpus_dir=TINY, index_dir=tmp_path / "tiny-index", engine="extractive")
