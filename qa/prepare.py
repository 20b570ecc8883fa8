"""Documents -> what a store writes: sentences and chunks with offsets, a vector per span (reusing known ones).

Shared by both stores (qa/store.py, qa/store_pg.py), with the settings an index must have been built with.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from qa.chunk import chunk_document
from qa.config import Settings
from qa.embed import embed_vectors
from qa.errors import EmptyCorpus, IndexMismatch
from qa.segment import split_sentences
from qa.types import Chunk, Document, Progress, Sentence

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Prepared:
    """Documents split into sentences and chunks (ids numbered from 0 here), one unit vector per span, id order."""

    documents: Sequence[Document]
    sentences: Sequence[Sentence]
    chunks: Sequence[Chunk]
    sentence_vectors: np.ndarray
    chunk_vectors: np.ndarray


def prepare(
    documents: Sequence[Document],
    settings: Settings,
    known: Callable[[list[str]], Mapping[str, np.ndarray]],
    embedder: Callable[[], Embeddings],
    progress: Progress | None = None,
) -> Prepared:
    """Segment `documents` and give every span a vector: one the store already has (`known(digests)` gives
    them by text digest) or embedded now."""
    sentences, chunks = segment_corpus(documents, settings)
    text_of = {d.source: d.text for d in documents}
    spans: list[Chunk | Sentence] = [*chunks, *sentences]
    texts = [text_of[item.source][item.start : item.end] for item in spans]
    if not texts:
        empty = np.zeros((0, 0), dtype="float32")
        return Prepared(documents, sentences, chunks, empty, empty)
    cached = dict(known(sorted({text_digest(text) for text in texts})))
    vectors = embed_missing(texts, cached, embedder, progress)
    return Prepared(documents, sentences, chunks, vectors[len(chunks) :], vectors[: len(chunks)])


def check_compatible(
    manifest: Mapping[str, Any], settings: Settings, *, location: str = "", fix: str = "rebuild it with `qa index`."
) -> None:
    """Raise IndexMismatch when the index was built with other settings than `settings`."""
    wanted = {
        "format_version": FORMAT_VERSION,
        "embed_model": settings.embed_model,
        "chunk_tokens": settings.chunk_tokens,
        "overlap_tokens": settings.overlap_tokens,
    }
    for key, value in wanted.items():
        if manifest.get(key) != value:
            raise IndexMismatch(
                f"Index at {location or settings.store_location} was built with {key}={manifest.get(key)!r}, but the "
                f"settings ask for {value!r}: {fix}"
            )


def segment_corpus(documents: Sequence[Document], settings: Settings) -> tuple[list[Sentence], list[Chunk]]:
    """Sentences and chunks of `documents`, numbered from 0 in document order (a chunk's sentence_ids too)."""
    sentences: list[Sentence] = []
    chunks: list[Chunk] = []
    for document in documents:
        found = split_sentences(document)
        chunks += chunk_document(
            document,
            found,
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.overlap_tokens,
            first_id=len(chunks),
            first_sentence_id=len(sentences),
        )
        sentences += found
    return sentences, chunks


def no_text(settings: Settings) -> EmptyCorpus:
    return EmptyCorpus(
        f"No text to index in {settings.corpus_dir}: every article there is empty or boilerplate "
        "(see the warnings above); add articles with body text."
    )


def text_digest(text: str) -> str:
    """The key under which a text's vector is reused by the next build."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def embed_missing(
    texts: list[str], cached: dict[str, np.ndarray], embedder: Callable[[], Embeddings], progress: Progress | None
) -> np.ndarray:
    """Vectors for `texts`, computed only for those not in `cached` (the model loads only if needed)."""
    keys = [text_digest(text) for text in texts]
    missing = sorted({key: text for key, text in zip(keys, texts, strict=True) if key not in cached}.items())
    logger.info("Embedding %d new texts, reusing %d", len(missing), len(texts) - len(missing))
    if progress:
        progress(0, len(missing))
    if missing:
        fresh = embed_vectors(embedder(), [text for _, text in missing], progress=progress)
        cached = {**cached, **{key: fresh[i] for i, (key, _) in enumerate(missing)}}
    dim = len(next(iter(cached.values())))
    matrix = np.zeros((len(texts), dim), dtype="float32")
    for row, key in enumerate(keys):
        matrix[row] = cached[key]
    return matrix
