"""The build steps every store shares: the documents to index, the embedding model loaded only when needed, and
what a store writes: sentences and chunks with offsets and a vector per span (reusing known ones).

Used by both writers (qa/store/faiss.py, qa/store/pg_build.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from qa.chunk import chunk_document
from qa.config import Settings
from qa.embed import SentenceEmbedder, embed_vectors
from qa.errors import EmptyCorpus
from qa.ingest import load_corpus
from qa.segment import split_sentences
from qa.store.checks import check_unique
from qa.types import Chunk, Document, Progress, Sentence

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildInput:
    """What a build starts from: the documents (unique source names) and the embedding model, loaded on first call."""

    documents: list[Document]
    embedder: Callable[[], Embeddings]


def build_input(
    settings: Settings,
    documents: Sequence[Document] | None,
    embedder: Embeddings | None,
    *,
    previous: Mapping[str, Document] | None = None,
    progress: Progress | None = None,
) -> BuildInput:
    """`documents`, or every article of settings.corpus_dir (never the index folder itself; documents of
    `previous` reused when their file is unchanged), checked for unique names; `embedder`, or the configured model,
    which loads only if some text needs embedding. `progress` gets the reading step, (0, total) first."""
    if documents is None:
        found = load_corpus(settings.corpus_dir, skip=[settings.index_dir], previous=previous, progress=progress)
    else:
        found = list(documents)
        if progress:  # the step is done already: report it, so that the steps after it keep their places
            progress(0, 1)
            progress(1, 1)
    check_unique(found)
    return BuildInput(found, lambda: embedder or SentenceEmbedder(settings.embed_model))


def warn_replacing(owner: Path | None, settings: Settings) -> None:
    """Log that the index of another corpus folder (`owner`) is being replaced by one of settings.corpus_dir."""
    if owner is not None and owner != settings.corpus_dir.resolve():
        logger.warning(
            "Replacing the index at %s, built from %s, with one of %s.",
            settings.store_location,
            owner,
            settings.corpus_dir,
        )


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
    them by text digest) or embedded now. `progress` reports two steps, each from (0, total): characters split into
    sentences, then texts embedded."""
    sentences, chunks = segment_corpus(documents, settings, progress)
    text_of = {d.source: d.text for d in documents}
    spans: list[Chunk | Sentence] = [*chunks, *sentences]
    texts = [text_of[item.source][item.start : item.end] for item in spans]
    if not texts:
        empty = np.zeros((0, 0), dtype="float32")
        return Prepared(documents, sentences, chunks, empty, empty)
    cached = dict(known(sorted({text_digest(text) for text in texts})))
    vectors = embed_missing(texts, cached, embedder, progress)
    return Prepared(documents, sentences, chunks, vectors[len(chunks) :], vectors[: len(chunks)])


def segment_corpus(
    documents: Sequence[Document], settings: Settings, progress: Progress | None = None
) -> tuple[list[Sentence], list[Chunk]]:
    """Sentences and chunks of `documents`, numbered from 0 in document order (a chunk's sentence_ids too).

    `progress` gets (characters split, all characters), starting at (0, total)."""
    sentences: list[Sentence] = []
    chunks: list[Chunk] = []
    total = sum(len(document.text) for document in documents)
    done = 0
    if progress:
        progress(0, total)
    for document in documents:
        report = None if progress is None else _shifted(progress, done, total)
        found = split_sentences(document, progress=report)
        chunks += chunk_document(
            document,
            found,
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.overlap_tokens,
            first_id=len(chunks),
            first_sentence_id=len(sentences),
        )
        sentences += found
        done += len(document.text)
    return sentences, chunks


def _shifted(progress: Progress, offset: int, total: int) -> Progress:
    """One document's (characters done, its length) as the corpus's (characters done, all characters)."""
    return lambda done, _: progress(offset + done, total)


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
