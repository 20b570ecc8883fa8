"""The store contract, run on both stores: FAISS files and PostgreSQL + pgvector (a real embedded server)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from qa import Assistant, EmptyCorpus, IndexMismatch, Settings
from qa.cite import is_valid_citation
from qa.errors import IndexNotFound
from qa.ingest import load_corpus
from qa.retrieve import HybridRetriever
from qa.store import build_store, load_store, stale_sources
from tests.conftest import TINY
from tests.fakes import HashEmbeddings

QUERY = "Mount Kelud volcano erupted"


def test_build_then_load_gives_the_same_records_and_searches(store_settings: Settings) -> None:
    built = build_store(store_settings, embedder=HashEmbeddings())
    loaded = load_store(store_settings)
    assert (loaded.documents, loaded.sentences, loaded.chunks) == (built.documents, built.sentences, built.chunks)
    counts = {"documents": 3, "sentences": len(loaded.sentences), "chunks": len(loaded.chunks)}
    assert loaded.manifest["counts"] == counts
    assert all(c.text == loaded.text(c) == loaded.documents[c.source].text[c.start : c.end] for c in loaded.chunks)
    assert [c.id for c in loaded.chunks] == list(range(len(loaded.chunks)))
    query = np.asarray(HashEmbeddings().embed_query(QUERY), dtype="float32")
    assert loaded.search("chunks", query, 3) == built.search("chunks", query, 3)
    assert loaded.chunks[loaded.search("chunks", query, 1)[0]].source == "volcano.txt"
    ids = [0, len(loaded.sentences) - 1]
    expected = np.asarray(HashEmbeddings().embed_documents([loaded.text(loaded.sentences[i]) for i in ids]))
    assert np.allclose(loaded.vectors("sentences", ids), expected, atol=1e-6)
    assert loaded.vectors("chunks", []).shape[0] == 0
    assert loaded.lexical("Baikal freshwater", 5) and loaded.chunks[loaded.lexical("Baikal", 5)[0]].source == "lake.txt"
    assert loaded.lexical("zzzqqq", 5) == [] and loaded.lexical("the of and", 5) == []


def test_both_stores_hold_the_same_corpus(tmp_path: Path, pg_url: str) -> None:
    faiss_settings = Settings(corpus_dir=TINY, index_dir=tmp_path / "index", embed_model="hash")
    faiss_store = build_store(faiss_settings, embedder=HashEmbeddings())
    pg_store = build_store(faiss_settings.replace(store=pg_url), embedder=HashEmbeddings())
    assert (pg_store.documents, pg_store.sentences, pg_store.chunks) == (
        faiss_store.documents,
        faiss_store.sentences,
        faiss_store.chunks,
    )
    for text in [QUERY, "Baikal seal population", "chess prize fund euros"]:
        query = np.asarray(HashEmbeddings().embed_query(text), dtype="float32")
        for kind in ("chunks", "sentences"):  # the same ranking, up to the order of equal scores
            found = [store.vectors(kind, store.search(kind, query, 5)) @ query for store in (pg_store, faiss_store)]
            assert np.allclose(*found, atol=1e-6), (text, kind)
        assert pg_store.lexical(text, 5)[0] == faiss_store.lexical(text, 5)[0], text


def test_rebuild_embeds_only_changed_documents(store_settings: Settings) -> None:
    build_store(store_settings, embedder=HashEmbeddings())
    unchanged = HashEmbeddings()
    build_store(store_settings, embedder=unchanged)
    assert unchanged.calls == 0
    (store_settings.corpus_dir / "chess.md").write_text("# Chess\n\nA brand new sentence about rooks.\n", "utf-8")
    (store_settings.corpus_dir / "lake.txt").unlink()
    edited = HashEmbeddings()
    store = build_store(store_settings, embedder=edited)
    assert 0 < edited.calls <= 4  # the new chunk and sentences only
    assert sorted(store.documents) == ["chess.md", "volcano.txt"]
    assert stale_sources(store, load_corpus(store_settings.corpus_dir)) == []
    assert "rooks" in store.chunks[store.lexical("rooks", 3)[0]].text


def test_mismatched_settings_are_refused_naming_the_store(store_settings: Settings) -> None:
    build_store(store_settings, embedder=HashEmbeddings())
    with pytest.raises(IndexMismatch, match="chunk_tokens=40") as raised:
        load_store(store_settings.replace(chunk_tokens=64))
    assert store_settings.store_location in str(raised.value)
    assert "password" not in str(raised.value) and ":" + "@" not in str(raised.value)
    if store_settings.uses_postgres:  # a shared database is never rebuilt with other settings
        with pytest.raises(IndexMismatch, match="embed_model='hash'"):
            Assistant.load(store_settings.replace(embed_model="other"), embedder=HashEmbeddings())


def test_a_missing_index_says_how_to_build_it(store_settings: Settings) -> None:
    with pytest.raises(IndexNotFound, match="qa index"):
        load_store(store_settings)


def test_an_empty_corpus_is_refused(store_settings: Settings) -> None:
    shutil.rmtree(store_settings.corpus_dir)
    store_settings.corpus_dir.mkdir()
    (store_settings.corpus_dir / "blank.txt").write_text("   \n", encoding="utf-8")
    with pytest.raises(EmptyCorpus):
        build_store(store_settings, embedder=HashEmbeddings())


def test_hybrid_retrieval_and_answers_on_either_store(store_settings: Settings) -> None:
    embedder = HashEmbeddings()
    assistant = Assistant.load(store_settings, embedder=embedder)
    retriever = HybridRetriever(index=assistant.index, embedder=embedder, settings=store_settings.replace(k=3))
    for query, source in [("Baikal freshwater lake", "lake.txt"), ("chess final draw", "chess.md")]:
        assert retriever.passages(retriever.retrieve(query))[0].source == source, query
    answer = assistant.ask("What is the seal population of Lake Baikal?")
    assert not answer.abstained and any("100,000" in c.quote for c in answer.citations)
    assert all(is_valid_citation(c, assistant.documents) for c in answer.citations)


def test_an_index_belongs_to_its_corpus(store_settings: Settings, tmp_path: Path) -> None:
    build_store(store_settings, embedder=HashEmbeddings())
    other = tmp_path / "other-corpus"
    shutil.copytree(store_settings.corpus_dir, other)
    (other / "lake.txt").write_text("Another corpus about a lake.\n", encoding="utf-8")
    with pytest.raises(IndexMismatch, match="was built from"):
        Assistant.load(store_settings.replace(corpus_dir=other), embedder=HashEmbeddings())
    store = load_store(store_settings)  # left as it was: never re-indexed from the other folder
    assert "100,000" in store.documents["lake.txt"].text


def test_a_stop_word_corpus_gets_no_lexical_search(store_settings: Settings) -> None:
    shutil.rmtree(store_settings.corpus_dir)
    store_settings.corpus_dir.mkdir()
    (store_settings.corpus_dir / "words.txt").write_text("It was. And then it was not.\n", encoding="utf-8")
    store = build_store(store_settings, embedder=HashEmbeddings())
    assert store.lexical("was it not", 5) == []
    answer = Assistant(store_settings, store, HashEmbeddings()).ask("Was it?")
    assert all(is_valid_citation(c, store.documents) for c in answer.citations)
