"""Question -> ranked chunks: dense and lexical retrieval from a `Store` fused by reciprocal rank.

On the FAISS store dense is FAISS and lexical BM25 (bm25s); on PostgreSQL, pgvector and full-text search.

`HybridRetriever` is a LangChain `BaseRetriever`, so it plugs into any LangChain chain; its `Document`s carry
`source`, `start`, `end` and `chunk_id` in their metadata.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from qa.config import Settings
from qa.embed import query_vector as query_vector_of
from qa.store import Store
from qa.types import Passage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Hit:
    chunk_id: int
    score: float  # fused reciprocal-rank score
    dense: float  # cosine similarity of question and chunk
    dense_rank: int | None
    lexical_rank: int | None


@dataclass(frozen=True, slots=True)
class Retrieval:
    query: str
    query_vector: np.ndarray
    hits: list[Hit]


class HybridRetriever(BaseRetriever):
    """Dense + lexical retrieval over a `Store`, fused with reciprocal-rank fusion."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Store
    embedder: Embeddings
    settings: Settings

    def retrieve(self, query: str, *, k: int | None = None) -> Retrieval:
        """The top `k` chunks for `query` with their scores, plus the query vector for later stages."""
        k = k or self.settings.k
        query_vector = query_vector_of(self.embedder, query)
        dense = self._dense(query_vector) if self.settings.retrieval != "lexical" else []
        lexical = self._lexical(query) if self.settings.retrieval != "dense" else []
        fused = self._fuse(dense, lexical)
        similarity = self._similarities(query_vector, [chunk_id for chunk_id, _ in fused[:k]])
        hits = [
            Hit(chunk_id, score, similarity[chunk_id], _rank(dense, chunk_id), _rank(lexical, chunk_id))
            for chunk_id, score in fused[:k]
        ]
        return Retrieval(query, query_vector, hits)

    def passages(self, retrieval: Retrieval) -> list[Passage]:
        chunks = self.index.chunks
        return [
            Passage(
                chunks[h.chunk_id].source,
                chunks[h.chunk_id].start,
                chunks[h.chunk_id].end,
                chunks[h.chunk_id].text,
                round(h.score, 6),
            )
            for h in retrieval.hits
        ]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        retrieval = self.retrieve(query)
        return [
            LCDocument(
                page_content=passage.text,
                metadata={
                    "source": passage.source,
                    "start": passage.start,
                    "end": passage.end,
                    "chunk_id": hit.chunk_id,
                    "score": passage.score,
                    "dense": hit.dense,
                },
            )
            for passage, hit in zip(self.passages(retrieval), retrieval.hits, strict=True)
        ]

    def _dense(self, query_vector: np.ndarray) -> list[int]:
        count = min(self.settings.fetch_k, len(self.index.chunks))
        return self.index.search("chunks", query_vector, count)

    def _lexical(self, query: str) -> list[int]:
        return self.index.lexical(query, min(self.settings.fetch_k, len(self.index.chunks)))

    def _fuse(self, *rankings: list[int]) -> list[tuple[int, float]]:
        """Reciprocal-rank fusion; each ranking's top `keep_top` stay ahead of everything else.

        subtle: plain RRF buries a chunk one retriever ranks first and the other ranks very low.
        """
        scores: dict[int, float] = {}
        for ranking in rankings:
            for rank, chunk_id in enumerate(ranking):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (self.settings.rrf_k + rank + 1)
        protected = {chunk_id for ranking in rankings for chunk_id in ranking[: self.settings.keep_top]}
        return sorted(scores.items(), key=lambda item: (item[0] not in protected, -item[1], item[0]))

    def _similarities(self, query_vector: np.ndarray, chunk_ids: list[int]) -> dict[int, float]:
        vectors = self.index.vectors("chunks", chunk_ids)
        return {i: float(vector @ query_vector) for i, vector in zip(chunk_ids, vectors, strict=True)}


def _rank(ranking: list[int], chunk_id: int) -> int | None:
    return ranking.index(chunk_id) if chunk_id in ranking else None
