from __future__ import annotations

import json
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest

from qa import Settings
from qa.corpus import load_corpus
from qa.errors import IndexCorrupt, IndexMismatch, IndexNotFound, QAError
from qa.store import build_index, load_index, stale_sources
from tests.conftest import TINY
from tests.fakes import HashEmbeddings


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    shutil.copytree(TINY, corpus)
    return Settings(
        corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="hash", chunk_tokens=40, overlap_tokens=8
    )


def test_build_save_load_gives_the_same_index(settings: Settings) -> None:
    built = build_index(settings, embedder=HashEmbeddings())
    loaded = load_index(settings.index_dir, settings)
    assert loaded.chunks == built.chunks and loaded.sentences == built.sentences
    assert loaded.documents == built.documents
    query = np.asarray([HashEmbeddings().embed_query("Mount Kelud volcano erupted")], dtype="float32")
    assert (built.chunk_vectors.search(query, 3)[1] == loaded.chunk_vectors.search(query, 3)[1]).all()
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert manifest["counts"]["documents"] == 3 and manifest["chunk_tokens"] == 40
    assert all(c.text == loaded.documents[c.source].text[c.start : c.end] for c in loaded.chunks)


def test_rebuild_embeds_only_changed_documents(settings: Settings) -> None:
    first = HashEmbeddings()
    build_index(settings, embedder=first)
    unchanged = HashEmbeddings()
    build_index(settings, embedder=unchanged)
    assert unchanged.calls == 0
    (settings.corpus_dir / "chess.md").write_text("# Chess\n\nA brand new sentence about rooks.\n", encoding="utf-8")
    edited = HashEmbeddings()
    index = build_index(settings, embedder=edited)
    assert 0 < edited.calls <= 4  # the new chunk and sentences only
    assert stale_sources(index, load_corpus(settings.corpus_dir)) == []


def test_interrupted_build_leaves_the_old_index_intact(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    build_index(settings, embedder=HashEmbeddings())
    before = (settings.index_dir / "chunks.jsonl").read_bytes()
    (settings.corpus_dir / "lake.txt").write_text("Changed text about a lake.", encoding="utf-8")

    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(faiss, "write_index", crash)
    with pytest.raises(KeyboardInterrupt):
        build_index(settings, embedder=HashEmbeddings())
    assert (settings.index_dir / "chunks.jsonl").read_bytes() == before
    assert not [p for p in settings.index_dir.parent.iterdir() if p.name.startswith(".index.")]
    load_index(settings.index_dir, settings)


def test_missing_corrupt_and_mismatched_indexes_raise_with_the_fix(settings: Settings) -> None:
    with pytest.raises(IndexNotFound, match="qa index"):
        load_index(settings.index_dir, settings)
    build_index(settings, embedder=HashEmbeddings())
    with pytest.raises(IndexMismatch, match="chunk_tokens=40"):
        load_index(settings.index_dir, settings.replace(chunk_tokens=64))
    (settings.index_dir / "chunks.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexCorrupt, match="unreadable"):
        load_index(settings.index_dir, settings)


def test_vectors_and_records_must_agree(settings: Settings) -> None:
    build_index(settings, embedder=HashEmbeddings())
    extra = faiss.read_index(str(settings.index_dir / "chunks.faiss"))
    extra.add(np.zeros((1, extra.d), dtype="float32"))
    faiss.write_index(extra, str(settings.index_dir / "chunks.faiss"))
    with pytest.raises(IndexCorrupt, match="vectors for"):
        load_index(settings.index_dir, settings)


def test_a_folder_of_other_files_is_never_overwritten(settings: Settings) -> None:
    settings.index_dir.mkdir()
    (settings.index_dir / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(QAError, match="not an index"):
        build_index(settings, embedder=HashEmbeddings())
    assert (settings.index_dir / "notes.txt").read_text() == "mine"


def test_large_indexes_switch_to_hnsw(settings: Settings) -> None:
    index = build_index(settings.replace(approx_index_above=2), embedder=HashEmbeddings())
    assert index.manifest["vector_index"] == "hnsw"
    assert isinstance(index.chunk_vectors, faiss.IndexHNSWFlat)
