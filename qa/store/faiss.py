"""Corpus -> the FAISS store on disk (manifest.json, documents/sentences/chunks JSONL, two FAISS files) and back.

Builds are incremental (vectors of unchanged texts are reused) and atomic (written aside, then swapped in).
Nothing is pickled: JSON for records, FAISS's own writer for vectors. BM25 (bm25s) is built in memory at first use.
The reader and the writer of these files stay in one module (about 350 lines) so the format is defined once; how
the folder is written (staging, swap, modes, errors) is `qa.store.folders`.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import logging
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import bm25s
import faiss
import numpy as np
from langchain_core.embeddings import Embeddings

from qa.config import Settings
from qa.errors import ExtractionError, IndexCorrupt, IndexNotFound, IndexProblem, QAError
from qa.store.base import Kind, Snapshot
from qa.store.build import build_input, no_text, prepare, text_digest, warn_replacing
from qa.store.checks import (
    FORMAT_VERSION,
    check_compatible,
    check_format,
    corpus_of,
    one_line,
    records_problem,
    sentence_digest,
)
from qa.store.folders import folder_mode, staging_folder, swap, unwritable
from qa.store.records import extraction_record, with_extraction
from qa.text import ENCODING, tokenize
from qa.types import Chunk, Document, Progress, Sentence

logger = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG

FILES = ("manifest.json", "documents.jsonl", "sentences.jsonl", "chunks.jsonl", "chunks.faiss", "sentences.faiss")
VECTOR_FILES = ("chunks.faiss", "sentences.faiss")
CHARS = "chars"  # the folder of PDF character maps, one .npz (no pickle) per document that has one


@dataclass(frozen=True)
class FaissStore(Snapshot):
    """The FAISS store: the records plus the two vector indexes (chunks and sentences), BM25 built at first use."""

    chunk_vectors: Any  # faiss.Index
    sentence_vectors: Any  # faiss.Index
    _bm25: list[Any] = field(default_factory=list, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def path(self) -> Path:
        return Path(self.location)

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

    def newer(self) -> None:
        """Files are read into memory once: a worker restarts to serve a rebuilt folder."""
        return None

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


def build_faiss(
    settings: Settings,
    *,
    documents: Sequence[Document] | None = None,
    embedder: Embeddings | None = None,
    progress: Progress | None = None,
) -> FaissStore:
    """Index `settings.corpus_dir` (or `documents` read from it) into `settings.index_dir`, embedding only
    texts not already indexed there. The new index is checked before it replaces the old one.

    `progress` reports two steps, each starting at (0, total): characters split into sentences, then texts embedded.
    """
    started = time.perf_counter()
    build = build_input(settings, documents, embedder, previous=_previous_documents(settings), progress=progress)
    warn_replacing(corpus_of(settings.index_dir), settings)
    prepared = prepare(build.documents, settings, lambda digests: _cached_vectors(settings), build.embedder, progress)
    sentences, chunks = prepared.sentences, prepared.chunks
    if not chunks:
        raise no_text(settings)
    chunk_index = vector_index(prepared.chunk_vectors, settings)
    sentence_index = vector_index(prepared.sentence_vectors, settings)
    dim = prepared.chunk_vectors.shape[1]
    manifest = _manifest(build.documents, sentences, chunks, dim, settings, time.perf_counter() - started)
    records = (build.documents, sentences, chunks, chunk_index, sentence_index)
    index = _write_atomically(settings.index_dir, manifest, *records, settings=settings)
    logger.info(
        "Indexed %d documents, %d chunks in %.1f s", len(build.documents), len(chunks), manifest["build_seconds"]
    )
    return index


def load_faiss(index_dir: Path, settings: Settings | None = None) -> FaissStore:
    """Load and check an index; raise IndexNotFound, IndexCorrupt or IndexMismatch with the fix."""
    manifest_path = index_dir / "manifest.json"
    if not manifest_path.is_file():
        raise IndexNotFound(f"No index at {index_dir}: build one with `qa index --index-dir {index_dir}`.")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError(f"manifest.json holds a JSON {type(manifest).__name__}, not an object")
        check_format(index_dir, manifest)
        documents = {d.source: d for d in _read_jsonl(index_dir / "documents.jsonl", lambda r: _document(r, index_dir))}
        raw_sentences = list(_read_jsonl(index_dir / "sentences.jsonl", dict))
        sentences = [_sentence(dict(r)) for r in raw_sentences]
        chunks = list(_read_jsonl(index_dir / "chunks.jsonl", _chunk))
        data = {name: np.fromfile(index_dir / name, dtype="uint8") for name in VECTOR_FILES}
        chunk_vectors = faiss.deserialize_index(data["chunks.faiss"])
        sentence_vectors = faiss.deserialize_index(data["sentences.faiss"])
    except (OSError, ValueError, TypeError, KeyError, RuntimeError, AttributeError, ExtractionError) as exc:
        raise IndexCorrupt(
            f"Index at {index_dir} is unreadable ({one_line(exc)}): rebuild it with `qa index`."
        ) from exc
    index = FaissStore(str(index_dir), manifest, documents, sentences, chunks, chunk_vectors, sentence_vectors)
    problem = (
        _vector_problem(index)
        or _digest_problem(manifest, data)
        or records_problem(index, [r.get("digest") for r in raw_sentences], sentence_digest)
    )
    if problem:
        raise IndexCorrupt(f"Index at {index_dir} is inconsistent ({problem}): rebuild it with `qa index`.")
    if settings is not None:
        check_compatible(manifest, settings)
    return index


def _digest_problem(manifest: dict[str, Any], data: dict[str, np.ndarray]) -> str | None:
    """Whether the FAISS files are the bytes the build wrote (zeroed, absurd or swapped vectors load fine as FAISS
    files: only their digest tells)."""
    digests = manifest.get("vectors_sha256")
    for name, content in data.items():
        expected = digests.get(name) if isinstance(digests, dict) else None
        if expected is None:
            return f"manifest.json holds no digest of {name}"
        if hashlib.sha256(content.data).hexdigest() != expected:
            return f"{name} does not match its digest in manifest.json: its vectors changed after the build"
    return None


def _vector_problem(index: FaissStore) -> str | None:
    """What is wrong with the FAISS files beside the records, or None: vector counts and dimensions."""
    dim = index.manifest.get("dim")
    if index.chunk_vectors.ntotal != len(index.chunks):
        return f"chunks.faiss has {index.chunk_vectors.ntotal} vectors for {len(index.chunks)} chunks"
    if index.sentence_vectors.ntotal != len(index.sentences):
        return f"sentences.faiss has {index.sentence_vectors.ntotal} vectors, for {len(index.sentences)} sentences"
    if not index.chunk_vectors.d == index.sentence_vectors.d == dim:
        return f"vector dimension {index.chunk_vectors.d}/{index.sentence_vectors.d} differs from the manifest's {dim}"
    return None


def _previous_documents(settings: Settings) -> dict[str, Document]:
    """The documents of the index at settings.index_dir (their extractions are reused), or none if unreadable."""
    try:
        return {d.source: d for d in load_faiss(settings.index_dir, settings).documents.values()}
    except QAError:
        return {}


def _cached_vectors(settings: Settings) -> dict[str, np.ndarray]:
    """Vectors of the texts already in the index at settings.index_dir, keyed by text hash."""
    try:
        old = load_faiss(settings.index_dir, settings)
    except IndexCorrupt as problem:  # subtle: its vectors may be the damaged part, so none is reused
        logger.warning("%s Embedding every text again.", problem)
        return {}
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
    per_doc = {d.source: _manifest_entry(d, chunk_counts[d.source]) for d in documents}
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


def _manifest_entry(document: Document, chunks: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"sha256": document.sha256, "chars": len(document.text), "chunks": chunks}
    if document.extractor:  # an extracted document: what read it, from which bytes, and what it could not read
        entry |= {"extractor": document.extractor, "file_sha256": document.file_sha256, "pages": len(document.pages)}
        entry |= {"warnings": list(document.warnings)} if document.warnings else {}
    return entry


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
) -> FaissStore:
    """Write every file into a fresh folder beside `target`, load and check it, then swap it in with renames
    (`qa.store.folders`: the old folder's mode is kept, and staging folders of killed builds are removed)."""
    if target.exists() and any(target.iterdir()) and not (target / "manifest.json").exists():
        raise QAError(f"{target} holds files that are not an index: choose an empty or new --index-dir.")
    staging = staging_folder(target)
    try:
        _write_jsonl(staging / "documents.jsonl", (_document_record(d, n, staging) for n, d in enumerate(documents)))
        text_of = {d.source: d.text for d in documents}
        _write_jsonl(staging / "sentences.jsonl", (_sentence_record(s, text_of[s.source]) for s in sentences))
        _write_jsonl(staging / "chunks.jsonl", (asdict(c) for c in chunks))
        digests = {
            name: _write_vectors(vectors, staging / name)
            for name, vectors in zip(VECTOR_FILES, (chunk_index, sentence_index), strict=True)
        }
        manifest = {**manifest, "vectors_sha256": digests}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        try:
            index = load_faiss(staging, settings)
        except IndexProblem as exc:  # subtle: never swap in an index that the next load would refuse
            raise IndexCorrupt(
                f"The new index of {settings.corpus_dir} failed its check ({exc}); the previous index at {target} "
                "is kept. Please report this with the corpus that caused it."
            ) from exc
        staging.chmod(folder_mode(target, staging))
        swap(staging, target)
    except OSError as exc:
        raise unwritable(target, exc) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dataclasses.replace(index, location=str(target))


def _write_vectors(vectors: Any, path: Path) -> str:
    """Write a FAISS index to `path`; return the sha256 of its bytes. FAISS reports a failed write (a full disk)
    as a RuntimeError: it becomes the OSError it is."""
    try:
        faiss.write_index(vectors, str(path))
    except RuntimeError as exc:
        code = errno.ENOSPC if "No space left" in str(exc) else errno.EIO
        raise OSError(code, one_line(exc)) from exc
    return hashlib.sha256(np.fromfile(path, dtype="uint8").data).hexdigest()


def _document_record(document: Document, number: int, folder: Path) -> dict[str, Any]:
    """A document's JSON record; its character map, if any, goes to chars/<number>.npz, named in the record."""
    record: dict[str, Any] = {"source": document.source, "title": document.title, "sha256": document.sha256}
    record["text"] = document.text
    record |= {"skipped": [list(r) for r in document.skipped], "extraction": extraction_record(document), "chars": None}
    if document.chars is not None:
        record["chars"] = f"{CHARS}/{number}.npz"
        (folder / CHARS).mkdir(exist_ok=True)
        (folder / record["chars"]).write_bytes(document.chars.to_bytes())
    return record


def _document(record: dict[str, Any], folder: Path) -> Document:
    name = record["chars"]
    if name is not None and (not isinstance(name, str) or not name.startswith(f"{CHARS}/") or ".." in name):
        raise ValueError(f"a document names {name!r} as its character map")
    skipped = tuple((int(start), int(end), str(reason)) for start, end, reason in record["skipped"])
    document = Document(record["source"], record["text"], record["title"], record["sha256"], skipped)
    return with_extraction(document, record["extraction"], (folder / name).read_bytes() if name else None)


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
