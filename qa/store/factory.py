"""Settings.store -> the backend holding the index (FAISS files in settings.index_dir, or a PostgreSQL database):
load it, build it, or open it (load, building or refreshing it when missing or stale)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from langchain_core.embeddings import Embeddings

from qa.config import Settings
from qa.errors import CorpusError, IndexNotFound, IndexProblem, IndexUnavailable
from qa.ingest import load_corpus
from qa.store.base import Store
from qa.store.checks import check_database_owner, check_owner
from qa.store.faiss import build_faiss, load_faiss
from qa.store.pg import load_pg
from qa.store.pg_build import build_pg
from qa.types import Document, Progress

logger = logging.getLogger(__name__)


def load_store(settings: Settings) -> Store:
    """The index settings.store names, checked against `settings` (IndexProblem subclasses say the fix)."""
    if settings.uses_postgres:
        return load_pg(settings)
    return load_faiss(settings.index_dir, settings)


def build_store(
    settings: Settings,
    *,
    documents: Sequence[Document] | None = None,
    embedder: Embeddings | None = None,
    progress: Progress | None = None,
) -> Store:
    """Index settings.corpus_dir (or `documents`) into settings.store, embedding only texts it lacks."""
    if settings.uses_postgres:
        return build_pg(settings, documents=documents, embedder=embedder, progress=progress)
    return build_faiss(settings, documents=documents, embedder=embedder, progress=progress)


def open_store(settings: Settings, *, embedder: Embeddings | None = None, progress: Progress | None = None) -> Store:
    """The index in settings.store, (re)built from settings.corpus_dir when missing, stale or mismatched.

    An index built from another corpus folder is refused (IndexMismatch), never rebuilt in place. A database is
    only ever built when it holds no index: it may serve other workers, so another model or chunking
    (IndexMismatch) or tables edited by hand (IndexCorrupt) are errors for a person to resolve.
    """
    check_owner(settings)
    try:
        index = load_store(settings)
    except IndexProblem as problem:
        if not settings.corpus_dir.is_dir() or isinstance(problem, IndexUnavailable):
            raise
        if settings.uses_postgres and not isinstance(problem, IndexNotFound):
            raise
        if isinstance(problem, IndexNotFound):
            logger.warning("No index at %s yet: building it from %s.", settings.store_location, settings.corpus_dir)
        else:
            logger.warning("%s Rebuilding it from %s.", problem, settings.corpus_dir)
        return build_store(settings, embedder=embedder, progress=progress)
    if settings.uses_postgres:
        check_database_owner(index.manifest, settings)
    try:
        documents = load_corpus(settings.corpus_dir, skip=[settings.index_dir], previous=index.documents)
    except CorpusError:
        logger.info("Corpus %s is not readable; using the index as built.", settings.corpus_dir)
        return index
    changed = stale_sources(index, documents)
    if changed:
        logger.warning("Index is stale (%d changed: %s); updating it.", len(changed), ", ".join(changed[:5]))
        return build_store(settings, documents=documents, embedder=embedder, progress=progress)
    return index


def stale_sources(index: Store, documents: Iterable[Document]) -> list[str]:
    """Sources added, changed or removed since the index was built."""
    current = {d.source: (d.sha256, d.extractor, d.file_sha256) for d in documents}
    indexed = {source: (doc.sha256, doc.extractor, doc.file_sha256) for source, doc in index.documents.items()}
    return sorted(s for s in current.keys() | indexed.keys() if current.get(s) != indexed.get(s))
