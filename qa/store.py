"""Corpus -> on-disk index (manifest.json, documents/sentences/chunks JSONL, two FAISS files) and back.

`Store` is what retrieval and evidence read, whichever backend holds the index: `Index` here (FAISS files, BM25 in
memory) or `PgStore` (qa/store_pg.py, PostgreSQL + pgvector). Builds are incremental (vectors of unchanged texts
are reused) and atomic (written aside, then swapped in). Nothing is pickled: JSON for records, FAISS's own writer
for vectors.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import bm25s
import faiss
import numpy as np
from langchain_core.embeddings import Embeddings

from qa.chunk import ENCODING
from qa.config import Settings
from qa.corpus import load_corpus
from qa.embed import SentenceEmbedder
from qa.errors import IndexCorrupt, IndexNotFound, IndexProblem, QAError
from qa.integrity import (
    FORMAT_VERSION,
    check_compatible,
    check_consistent,
    check_format,
    check_unique,
    corpus_of,
    one_line,
    sentence_digest,
)
from qa.prepare import no_text, prepare, text_digest
from qa.text import tokenize
from qa.types import Chunk, Document, Progress, Sentence

logger = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG

FILES = ("manifest.json", "documents.jsonl", "sentences.jsonl", "chunks.jsonl", "chunks.faiss", "sentences.faiss")


Kind = Literal["chunks", "sentences"]


@runtime_checkable
class Store(Protocol):
    """One consistent corpus as retrieval and evidence see it. Ids are positions in `chunks` / `sentences`."""

    @property
    def location(self) -> str:
        """The folder or the database URL (never with a password): for messages."""

    @property
    def manifest(self) -> Mapping[str, Any]: ...

    @property
    def documents(self) -> Mapping[str, Document]: ...

    @property
    def sentences(self) -> Sequence[Sentence]: ...

    @property
    def chunks(self) -> Sequence[Chunk]: ...

    def text(self, item: Sentence | Chunk) -> str:
        """The exact document slice of a sentence or chunk."""

    def search(self, kind: Kind, query: np.ndarray, count: int) -> list[int]:
        """Ids of the `count` chunks or sentences nearest to a unit `query` vector (inner product), best first."""

    def vectors(self, kind: Kind, ids: Sequence[int]) -> np.ndarray:
        """The stored unit vectors of `ids`, one row each, in the order given."""

    def lexical(self, query: str, count: int) -> list[int]:
        """Ids of at most `count` chunks sharing words with `query`, best first (none when no word matches)."""


@dataclass(frozen=True)
class Index:
    """The FAISS store: records plus the two vector indexes (chunks and sentences), BM25 built at first use."""

    path: Path
    manifest: dict[str, Any]
    documents: dict[str, Document]
    sentences: list[Sentence]
    chunks: list[Chunk]
    chunk_vectors: Any  # faiss.Index
    sentence_vectors: Any  # faiss.Index
    _bm25: list[Any] = field(default_factory=list, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def location(self) -> str:
        return str(self.path)

    def text(self, item: Sentence | Chunk) -> str:
        return self.documents[item.source].text[item.start : item.end]

    def search(self, kind: Kind, query: np.ndarray, count: int) -> list[int]:
        return search_one(self.chunk_vectors if kind == "chunks" else self.sentence_vectors, query, count)

    def vectors(self, kind: Kind, ids: Sequence[int]) -> np.ndarray:
        index = self.chunk_vectors if kind == "chunks" else self.sentence_vectors
        if not ids:
            return np.zeros((0, index.d), dtype="float32")
        return np.stack([index.reconstruct(int(i)) for i in ids])

    def lexical(self, query: str, count: int) -> list[int]:
        if not self.chunks:
            return []
        bm25 = self.bm25()
        vocabulary = getattr(bm25, "vocab_dict", None) or {}
        tokens = [t for t in tokenize([query])[0] if t in vocabulary]
        if not tokens:
            return []
        ids, scores = bm25.retrieve([tokens], k=min(count, len(self.chunks)), show_progress=False)
        return [int(i) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]

    def bm25(self) -> Any:
        """The BM25 index of the chunks (bm25s), built once, at first use, by one thread."""
        with self._lock:
            if not self._bm25:
                bm25 = bm25s.BM25()
                tokens = tokenize([chunk.text for chunk in self.chunks])
                if any(tokens):  # bm25s divides by the mean length: a corpus of stop words only gets no lexical search
                    bm25.index(tokens, show_progress=False)
                self._bm25.append(bm25)
        return self._bm25[0]


def search_one(vectors: Any, query: np.ndarray, count: int) -> list[int]:
    """Ids of the `count` nearest vectors to one query, best first.

    subtle: one query is too little work for OpenMP threads; on a busy 2-core machine a search over 10^4 vectors took
    16-24 ms with them and 0.3 ms without (`qa bench`). The setting applies to the calling thread only.
    """
    faiss.omp_set_num_threads(1)
    _, ids = vectors.search(query[None, :].astype("float32"), count)
    return [int(i) for i in ids[0] if i >= 0]


def build_index(
    settings: Settings,
    *,
    documents: Sequence[Document] | None = None,
    embedder: Embeddings | None = None,
    progress: Progress | None = None,
) -> Index:
    """Index `settings.corpus_dir` (or `documents` read from it) into `settings.index_dir`, embedding only
    texts not already indexed there. The new index is checked before it replaces the old one.

    `progress` reports two steps, each starting at (0, total): characters split into sentences, then texts embedded.
    """
    started = time.perf_counter()
    if documents is None:
        documents = load_corpus(settings.corpus_dir, skip=[settings.index_dir])
    check_unique(documents)
    owner = corpus_of(settings.index_dir)
    if owner is not None and owner != settings.corpus_dir.resolve():
        logger.warning(
            "Replacing the index at %s, built from %s, with one of %s.", settings.index_dir, owner, settings.corpus_dir
        )
    load = lambda: embedder or SentenceEmbedder(settings.embed_model)  # noqa: E731 - the model loads only if needed
    prepared = prepare(documents, settings, lambda digests: _cached_vectors(settings), load, progress)
    sentences, chunks = prepared.sentences, prepared.chunks
    if not chunks:
        raise no_text(settings)
    chunk_index = vector_index(prepared.chunk_vectors, settings)
    sentence_index = vector_index(prepared.sentence_vectors, settings)
    dim = prepared.chunk_vectors.shape[1]
    manifest = _manifest(documents, sentences, chunks, dim, settings, time.perf_counter() - started)
    records = (documents, sentences, chunks, chunk_index, sentence_index)
    index = _write_atomically(settings.index_dir, manifest, *records, settings=settings)
    logger.info("Indexed %d documents, %d chunks in %.1f s", len(documents), len(chunks), manifest["build_seconds"])
    return index


def load_index(index_dir: Path, settings: Settings | None = None) -> Index:
    """Load and check an index; raise IndexNotFound, IndexCorrupt or IndexMismatch with the fix."""
    manifest_path = index_dir / "manifest.json"
    if not manifest_path.is_file():
        raise IndexNotFound(f"No index at {index_dir}: build one with `qa index --index-dir {index_dir}`.")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError(f"manifest.json holds a JSON {type(manifest).__name__}, not an object")
        check_format(index_dir, manifest)
        documents = {d.source: d for d in _read_jsonl(index_dir / "documents.jsonl", _document)}
        raw_sentences = list(_read_jsonl(index_dir / "sentences.jsonl", dict))
        sentences = [_sentence(dict(r)) for r in raw_sentences]
        chunks = list(_read_jsonl(index_dir / "chunks.jsonl", _chunk))
        chunk_vectors = faiss.read_index(str(index_dir / "chunks.faiss"))
        sentence_vectors = faiss.read_index(str(index_dir / "sentences.faiss"))
    except (OSError, ValueError, TypeError, KeyError, RuntimeError, AttributeError) as exc:
        raise IndexCorrupt(
            f"Index at {index_dir} is unreadable ({one_line(exc)}): rebuild it with `qa index`."
        ) from exc
    index = Index(index_dir, manifest, documents, sentences, chunks, chunk_vectors, sentence_vectors)
    check_consistent(index, [r.get("digest") for r in raw_sentences])
    if settings is not None:
        check_compatible(manifest, settings)
    return index


def stale_sources(index: Store, documents: Iterable[Document]) -> list[str]:
    """Sources added, changed or removed since the index was built."""
    current = {d.source: d.sha256 for d in documents}
    indexed = {source: doc.sha256 for source, doc in index.documents.items()}
    return sorted(s for s in current.keys() | indexed.keys() if current.get(s) != indexed.get(s))


def _cached_vectors(settings: Settings) -> dict[str, np.ndarray]:
    """Vectors of the texts already in the index at settings.index_dir, keyed by text hash."""
    try:
        old = load_index(settings.index_dir, settings)
    except QAError:
        return {}
    cached: dict[str, np.ndarray] = {}
    pairs: list[tuple[Sequence[Sentence | Chunk], Any]] = [
        (old.chunks, old.chunk_vectors),
        (old.sentences, old.sentence_vectors),
    ]
    for items, vectors in pairs:
        if len(items):
            matrix = vectors.reconstruct_n(0, len(items))
            cached.update({text_digest(old.text(item)): matrix[i] for i, item in enumerate(items)})
    return cached


def vector_index(vectors: np.ndarray, settings: Settings) -> Any:
    """A FAISS inner-product index of `vectors`: exact, or HNSW above settings.approx_index_above."""
    dim = vectors.shape[1]
    index: Any
    if len(vectors) > settings.approx_index_above:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(vectors)
    return index


def _manifest(
    documents: Sequence[Document],
    sentences: Sequence[Sentence],
    chunks: Sequence[Chunk],
    dim: int,
    settings: Settings,
    seconds: float,
) -> dict[str, Any]:
    chunk_counts = Counter(c.source for c in chunks)
    per_doc = {
        d.source: {"sha256": d.sha256, "chars": len(d.text), "chunks": chunk_counts[d.source]} for d in documents
    }
    return {
        "format_version": FORMAT_VERSION,
        "embed_model": settings.embed_model,
        "dim": dim,
        "tokenizer": ENCODING,
        "chunk_tokens": settings.chunk_tokens,
        "overlap_tokens": settings.overlap_tokens,
        "vector_index": "hnsw" if len(chunks) > settings.approx_index_above else "flat",
        "corpus_dir": str(settings.corpus_dir.resolve()),
        "counts": {"documents": len(documents), "sentences": len(sentences), "chunks": len(chunks)},
        "documents": per_doc,
        "build_seconds": round(seconds, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _write_atomically(
    target: Path,
    manifest: dict[str, Any],
    documents: Sequence[Document],
    sentences: Sequence[Sentence],
    chunks: Sequence[Chunk],
    chunk_index: Any,
    sentence_index: Any,
    *,
    settings: Settings,
) -> Index:
    """Write every file into a fresh folder beside `target`, load and check it, then swap it in with renames."""
    if target.exists() and any(target.iterdir()) and not (target / "manifest.json").exists():
        raise QAError(f"{target} holds files that are not an index: choose an empty or new --index-dir.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        _write_jsonl(staging / "documents.jsonl", (_document_record(d) for d in documents))
        text_of = {d.source: d.text for d in documents}
        _write_jsonl(staging / "sentences.jsonl", (_sentence_record(s, text_of[s.source]) for s in sentences))
        _write_jsonl(staging / "chunks.jsonl", (asdict(c) for c in chunks))
        faiss.write_index(chunk_index, str(staging / "chunks.faiss"))
        faiss.write_index(sentence_index, str(staging / "sentences.faiss"))
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        try:
            index = load_index(staging, settings)
        except IndexProblem as exc:  # subtle: never swap in an index that the next load would refuse
            raise IndexCorrupt(
                f"The new index of {settings.corpus_dir} failed its check ({exc}); the previous index at {target} "
                "is kept. Please report this with the corpus that caused it."
            ) from exc
        _swap(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dataclasses.replace(index, path=target)


def _swap(staging: Path, target: Path) -> None:
    retired = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def _document_record(document: Document) -> dict[str, Any]:
    record = asdict(document)
    record["skipped"] = [list(r) for r in document.skipped]
    return record


def _document(record: dict[str, Any]) -> Document:
    record["skipped"] = tuple(tuple(r) for r in record["skipped"])
    return Document(**record)


def _sentence_record(sentence: Sentence, text: str) -> dict[str, Any]:
    return {**asdict(sentence), "digest": sentence_digest(text[sentence.start : sentence.end])}


def _sentence(record: dict[str, Any]) -> Sentence:
    record.pop("digest", None)
    return Sentence(**record)


def _chunk(record: dict[str, Any]) -> Chunk:
    record["sentence_ids"] = tuple(record["sentence_ids"])
    return Chunk(**record)


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path, make: Callable[[dict[str, Any]], Any]) -> Iterable[Any]:
    with path.open(encoding="utf-8") as handle:
        return [make(json.loads(line)) for line in handle if line.strip()]
