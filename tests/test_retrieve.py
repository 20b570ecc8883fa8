from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document as LCDocument

from qa import Assistant, Settings
from qa.retrieve import HybridRetriever
from qa.store import build_faiss
from tests.conftest import TINY
from tests.fakes import HashEmbeddings


@pytest.fixture()
def retriever(tmp_path: Path) -> HybridRetriever:
    settings = Settings(corpus_dir=TINY, index_dir=tmp_path / "index", embed_model="hash", k=3)
    embedder = HashEmbeddings()
    return HybridRetriever(index=build_faiss(settings, embedder=embedder), embedder=embedder, settings=settings)


def test_hand_worked_three_document_ranking(retriever: HybridRetriever) -> None:
    # Only volcano.txt uses "erupted" and "villagers"; only lake.txt "Baikal"; only chess.md "draw".
    # Files are indexed in sorted order: chess.md is chunk 0, lake.txt chunk 1, volcano.txt chunk 2.
    assert [c.source for c in retriever.index.chunks] == ["chess.md", "lake.txt", "volcano.txt"]
    assert retriever.retrieve("When was Mount Kelud erupted and villagers evacuated?").hits[0].chunk_id == 2
    for query, source in [
        ("Baikal freshwater lake", "lake.txt"),
        ("chess final draw", "chess.md"),
        ("volcano villagers evacuated", "volcano.txt"),
    ]:
        top = retriever.passages(retriever.retrieve(query))[0]
        assert top.source == source, query


def test_is_a_langchain_retriever_with_offsets(retriever: HybridRetriever) -> None:
    documents = retriever.invoke("Lake Baikal seal population")
    assert isinstance(documents[0], LCDocument)
    meta = documents[0].metadata
    text = retriever.index.documents[meta["source"]].text
    assert documents[0].page_content == text[meta["start"] : meta["end"]]
    assert meta["source"] == "lake.txt" and "\r\n" in documents[0].page_content  # CRLF kept


def test_fusion_keeps_each_retrievers_top_hits(retriever: HybridRetriever) -> None:
    fused = retriever._fuse([5, 1, 2, 3], [9, 1, 2, 3])
    assert [chunk_id for chunk_id, _ in fused[:4]] == [1, 5, 9, 2]  # top-2 of each first, by fused score


def test_question_without_known_words_still_retrieves_densely(assistant: Assistant) -> None:
    passages = assistant.retrieve("zzzqqq xyzzy", k=3)
    assert len(passages) == 3
