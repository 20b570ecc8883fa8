"""Settings.store -> the backend holding the index: FAISS files in settings.index_dir, or a PostgreSQL database."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.embeddings import Embeddings

from qa.config import Settings
from qa.store import Store, build_index, load_index
from qa.store_pg import PgStore, load_pg
from qa.store_pg_build import build_pg
from qa.types import Document, Progress


def load_store(settings: Settings) -> Store:
    """The index settings.store names, checked against `settings` (IndexProblem subclasses say the fix)."""
    if settings.uses_postgres:
        return load_pg(settings)
    return load_index(settings.index_dir, settings)


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
    return build_index(settings, documents=documents, embedder=embedder, progress=progress)


def newer_store(store: Store) -> Store | None:
    """The current corpus when another process re-indexed the database since `store` was read; else None.

    A FAISS index is read into memory once: a worker restarts to serve a rebuilt folder.
    """
    return store.newer() if isinstance(store, PgStore) else None
