"""Corpus -> index -> the records and vectors retrieval reads. One protocol (`Store`), two backends: FAISS files in a
folder (`faiss`) and PostgreSQL + pgvector (`pg`, written by `pg_build`; `pgserver` runs an embedded server).

`build` holds the steps every build shares, `checks` the checks every store's records pass, `factory` chooses
the backend from `Settings.store`. Code outside this package uses these names only.
"""

from qa.store.base import Kind, Snapshot, Store
from qa.store.build import Prepared
from qa.store.checks import check_owner
from qa.store.factory import build_store, load_store, open_store, stale_sources
from qa.store.faiss import FILES, FaissStore, build_faiss, load_faiss, vector_index
from qa.store.pg import PgStore, load_pg
from qa.store.pg_build import drop_pg, write_pg_index
from qa.store.pgserver import LocalPostgres, free_port, start_postgres

__all__ = [
    "FILES",
    "FaissStore",
    "Kind",
    "LocalPostgres",
    "PgStore",
    "Prepared",
    "Snapshot",
    "Store",
    "build_faiss",
    "build_store",
    "check_owner",
    "drop_pg",
    "free_port",
    "load_faiss",
    "load_pg",
    "load_store",
    "open_store",
    "stale_sources",
    "start_postgres",
    "vector_index",
    "write_pg_index",
]
