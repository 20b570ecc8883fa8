"""Synthetic corpora of 10^3..10^5 chunks -> retrieval latency, exact vs approximate FAISS, recall@10, memory.

Embedding 10^5 chunks with MiniLM on 2 cores would take about an hour, so the vectors are synthetic: unit
vectors built from shared parts (corpus, topic, article) plus a chunk's own part, weighted so that their cosine
statistics match MiniLM on seeds/ (reported side by side). Uniform random vectors would be a poor stand-in:
in 384 dimensions every pair is nearly orthogonal, nearest neighbours barely stand out, and HNSW recall drops
to 0.3-0.7 (measured), which no text embedding shows. Texts are synthetic too, for BM25 and the query embedding.
"""

from __future__ import annotations

import logging
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
from langchain_core.embeddings import Embeddings

from qa import Document, Settings
from qa.bench.stats import BenchPlan, latency_summary, ratio
from qa.ingest import make_document
from qa.retrieve import HybridRetriever
from qa.store import FaissStore, vector_index
from qa.types import Chunk

logger = logging.getLogger(__name__)

Log = Callable[[str], None]
DIM = 384
SEED = 20260
CHUNKS_PER_ARTICLE = 8
ARTICLES_PER_TOPIC = 50
K = 10
# Squared weights of a chunk vector's parts (they sum to 1): cosine of two chunks ~ the weight they share.
CHUNK_WEIGHTS = (0.15, 0.33, 0.05, 0.47)  # corpus, topic, article, the chunk's own
# A query shares less of the topic than a chunk does and a little of its target chunk's own part.
QUERY_WEIGHTS = (0.12, 0.26, 0.04, 0.053)  # the rest (0.527) is the query's own part


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    rows: np.ndarray = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype("float32")
    return rows


@dataclass(frozen=True)
class SyntheticVectors:
    """Chunk vectors built from unit parts: one for the corpus, one per topic, per article and per chunk."""

    parts: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    articles: np.ndarray  # article of each chunk
    topics: np.ndarray  # topic of each chunk

    @classmethod
    def generate(cls, count: int, *, seed: int = SEED) -> SyntheticVectors:
        rng = np.random.default_rng(seed)
        articles = np.arange(count) // CHUNKS_PER_ARTICLE
        topics = articles // ARTICLES_PER_TOPIC
        sizes = (1, int(topics[-1]) + 1, int(articles[-1]) + 1, count)
        return cls(tuple(unit_rows(rng.standard_normal((n, DIM))) for n in sizes), articles, topics)  # type: ignore[arg-type]

    def mix(self, chunk_ids: np.ndarray, weights: Sequence[float]) -> np.ndarray:
        """Unit rows mixing the parts of `chunk_ids` with `weights` (squared; the rest is fresh noise)."""
        corpus, topic, article, own = self.parts
        rows = (
            np.sqrt(weights[0]) * corpus[np.zeros_like(chunk_ids)]
            + np.sqrt(weights[1]) * topic[self.topics[chunk_ids]]
            + np.sqrt(weights[2]) * article[self.articles[chunk_ids]]
            + np.sqrt(weights[3]) * own[chunk_ids]
        )
        rest = 1 - sum(weights)
        if rest > 1e-6:
            noise = np.random.default_rng(SEED + len(chunk_ids)).standard_normal((len(chunk_ids), DIM))
            rows = rows + np.sqrt(rest) * unit_rows(noise)
        return unit_rows(rows)

    def vectors(self) -> np.ndarray:
        return self.mix(np.arange(len(self.articles)), CHUNK_WEIGHTS)

    def queries(self, count: int) -> np.ndarray:
        """Query vectors, each about one random chunk."""
        targets = np.random.default_rng(SEED + 1).integers(0, len(self.articles), count)
        return self.mix(targets, QUERY_WEIGHTS)


def vector_statistics(vectors: np.ndarray, owners: Sequence[Any] | np.ndarray, queries: np.ndarray) -> dict[str, float]:
    """Mean cosine of chunk pairs (other article / same article) and of each query's 1st and 10th neighbour."""
    rng = np.random.default_rng(SEED)
    owner = np.asarray(owners)
    left, right = rng.integers(0, len(vectors), 4000), rng.integers(0, len(vectors), 4000)
    cosines = np.einsum("ij,ij->i", vectors[left], vectors[right])
    other = owner[left] != owner[right]
    same = ~other & (left != right)
    neighbours = np.sort(queries @ vectors.T, axis=1)[:, ::-1]
    return {
        "pair_other_article": round(float(cosines[other].mean()), 3),
        "pair_same_article": round(float(cosines[same].mean()), 3) if same.any() else float("nan"),
        "query_top1": round(float(neighbours[:, 0].mean()), 3),
        "query_top10": round(float(neighbours[:, min(K, neighbours.shape[1]) - 1].mean()), 3),
    }


def run_scale(
    plan: BenchPlan, embedder: Embeddings, log: Log, *, reference: dict[str, float] | None = None
) -> dict[str, Any]:
    """FAISS exact vs approximate at each size, the HNSW efSearch trade-off, and hybrid retrieval latency."""
    settings = Settings()
    queries_per_size = 100 if plan.quick else 200
    rows, sweep, calibration = [], [], {"seeds_minilm": reference}
    for count in plan.scale_sizes:
        log(f"scale: FAISS exact vs HNSW at {count:,} synthetic chunks")
        synthetic = SyntheticVectors.generate(count)
        vectors, queries = synthetic.vectors(), synthetic.queries(queries_per_size)
        if count == plan.scale_sizes[0]:
            calibration["synthetic"] = vector_statistics(vectors, synthetic.articles, queries)
        row, approx, truth = faiss_row(vectors, queries, settings)
        rows.append(row)
        if count == plan.scale_sizes[-1]:
            sweep = ef_search_sweep(approx, queries, truth)
    hybrid = [hybrid_row(count, embedder, settings, log) for count in plan.hybrid_sizes]
    return {
        "vectors": "synthetic (see calibration)",
        "dim": DIM,
        "approx_index_above": settings.approx_index_above,
        "calibration": calibration,
        "faiss": rows,
        "hnsw_ef_search": sweep,
        "hybrid": hybrid,
    }


def faiss_row(vectors: np.ndarray, queries: np.ndarray, settings: Settings) -> tuple[dict[str, Any], Any, np.ndarray]:
    exact = faiss.IndexFlatIP(DIM)
    exact.add(vectors)
    started = time.perf_counter()
    approx = vector_index(vectors, settings.replace(approx_index_above=0))  # what the store builds above it
    build_s = time.perf_counter() - started
    exact_ms, truth = _search_each(exact, queries)
    # subtle: OpenMP threads busy-wait on a loaded 2-core machine; one thread shows what a single query needs.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    exact_one_ms, _ = _search_each(exact, queries)
    faiss.omp_set_num_threads(threads)
    approx_ms, found = _search_each(approx, queries)
    return (
        {
            "chunks": len(vectors),
            "auto_index": "hnsw" if len(vectors) > settings.approx_index_above else "flat",
            "exact": latency_summary(exact_ms),
            "exact_one_thread": latency_summary(exact_one_ms),
            "approx": latency_summary(approx_ms),
            "recall_at_10": round(recall(found, truth), 4),
            "approx_build_s": round(build_s, 2),
            "bytes_per_vector_exact": len(faiss.serialize_index(exact)) // len(vectors),
            "bytes_per_vector_approx": len(faiss.serialize_index(approx)) // len(vectors),
            "ef_search": int(approx.hnsw.efSearch),
            "hnsw_m": int(approx.hnsw.nb_neighbors(0) // 2),
        },
        approx,
        truth,
    )


def ef_search_sweep(approx: Any, queries: np.ndarray, truth: np.ndarray) -> list[dict[str, Any]]:
    """Recall@10 and latency of the approximate index for several efSearch values (then restored)."""
    chosen = approx.hnsw.efSearch
    points = []
    for ef in (16, 32, 64, 128, 256):
        approx.hnsw.efSearch = ef
        latencies, found = _search_each(approx, queries)
        points.append(
            {
                "ef_search": ef,
                "recall_at_10": round(recall(found, truth), 4),
                "p50_ms": latency_summary(latencies)["p50_ms"],
            }
        )
    approx.hnsw.efSearch = chosen
    return points


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row's true top-k ids that `found` also returned."""
    hits = [len(set(f[f >= 0]) & set(t[t >= 0])) / max(len(t[t >= 0]), 1) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def _search_each(index: Any, queries: np.ndarray) -> tuple[list[float], np.ndarray]:
    """One query at a time, as a server answers them; returns latencies (ms) and the top-K ids."""
    latencies, ids = [], []
    for query in queries:
        started = time.perf_counter()
        _, found = index.search(query[None, :], K)
        latencies.append((time.perf_counter() - started) * 1000)
        ids.append(found[0])
    return latencies, np.stack(ids)


def synthetic_texts(count: int, *, seed: int = SEED) -> list[str]:
    """`count` chunk texts of about 120 words: Zipf-distributed common words plus their topic's own words."""
    rng = np.random.default_rng(seed)
    syllables = np.array(["ka", "lo", "mi", "tra", "sen", "dor", "vi", "pe", "qua", "ren", "sto", "bal", "ni", "gu"])
    vocabulary = np.array(
        ["".join(rng.choice(syllables, rng.integers(1, 4))) + str(i % 7 or "") for i in range(20_000)]
    )
    common = 1 / np.arange(1, len(vocabulary) + 1)
    common /= common.sum()
    texts = []
    for chunk in range(count):
        topic = chunk // (CHUNKS_PER_ARTICLE * ARTICLES_PER_TOPIC)
        topical = vocabulary[(topic * 97 + rng.integers(0, 300, 36)) % len(vocabulary)]
        words = np.concatenate([rng.choice(vocabulary, 84, p=common), topical])
        rng.shuffle(words)
        texts.append(". ".join(" ".join(words[i : i + 15]).capitalize() for i in range(0, len(words), 15)) + ".")
    return texts


def hybrid_row(count: int, embedder: Embeddings, settings: Settings, log: Log) -> dict[str, Any]:
    """Full hybrid retrieval (query embedding + FAISS + BM25 + fusion) over synthetic texts, and its memory."""
    log(f"scale: hybrid retrieval at {count:,} synthetic chunks")
    texts = synthetic_texts(count)
    vectors = SyntheticVectors.generate(count).vectors()
    # Python objects and numpy arrays (records, texts, BM25) are traced; FAISS's C++ memory is its serialized size.
    tracemalloc.start()
    index = _in_memory_index(texts, vectors, settings)
    retriever = HybridRetriever(index=index, embedder=embedder, settings=settings)
    index.bm25()  # built at first use: counted here
    python_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    vector_bytes = len(faiss.serialize_index(index.chunk_vectors))
    rng = np.random.default_rng(SEED + 2)
    questions = [" ".join(rng.choice(texts[i].replace(".", "").split(), 7)) for i in rng.integers(0, count, 40)]
    retriever.retrieve(questions[0])
    latencies = []
    for question in questions:
        started = time.perf_counter()
        retriever.retrieve(question)
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "chunks": count,
        "latency": latency_summary(latencies),
        "bytes_per_chunk": (python_bytes + vector_bytes) // count,
        "vector_share": ratio(vector_bytes, python_bytes + vector_bytes),
    }


def _in_memory_index(texts: list[str], vectors: np.ndarray, settings: Settings) -> FaissStore:
    """A FAISS store of synthetic articles (CHUNKS_PER_ARTICLE chunks each) without sentences, never written."""
    documents, chunks = synthetic_records(texts)
    return FaissStore("synthetic", {}, documents, [], chunks, vector_index(vectors, settings), faiss.IndexFlatIP(DIM))


def synthetic_records(texts: list[str]) -> tuple[dict[str, Document], list[Chunk]]:
    """Articles of CHUNKS_PER_ARTICLE texts each, and one chunk per text (chunk i is texts[i])."""
    documents: dict[str, Document] = {}
    chunks: list[Chunk] = []
    for first in range(0, len(texts), CHUNKS_PER_ARTICLE):
        parts = texts[first : first + CHUNKS_PER_ARTICLE]
        document = make_document(f"synthetic/{first // CHUNKS_PER_ARTICLE:06d}.txt", "\n\n".join(parts))
        documents[document.source] = document
        offset = 0
        for text in parts:  # each chunk holds its own copy of its text, as after load_index
            end = offset + len(text)
            chunks.append(Chunk(len(chunks), document.source, offset, end, document.text[offset:end], ()))
            offset = end + 2
    return documents, chunks
