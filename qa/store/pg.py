"""A PostgreSQL database (pgvector + full-text search) -> `PgStore`, a consistent snapshot of its corpus.

Records (documents, sentences, chunks) are read once per generation into memory; vectors and the lexical index
stay in the database and are searched there. Every row carries the generations it is visible in (`born` <=
g < `died`), so a worker keeps answering from its snapshot while another process re-indexes, and moves to the
new corpus at its next question (`PgStore.newer`). Schema and writes: qa/store/pg_build.py. The connection pool
and the snapshot reader share their error handling, hence one module a little over 300 lines.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import numpy as np

from qa.config import Settings, password_of
from qa.errors import IndexCorrupt, IndexMismatch, IndexNotFound, IndexUnavailable, require
from qa.store.base import Kind, Snapshot
from qa.store.build import text_digest
from qa.store.checks import check_compatible, records_problem
from qa.store.records import with_extraction
from qa.text import tokenize
from qa.types import Chunk, Document, Sentence

logger = logging.getLogger(__name__)

INSTALL = "pip install 'qa[pg]'"
EF_SEARCH = 100  # HNSW candidates per query (recall@10 >= 0.95 at 10^5 in `qa bench --only store`)
# subtle: with a WHERE clause HNSW filters its candidates afterwards; iterative scans fetch more until LIMIT is met.
SESSION_OPTIONS = f"-c hnsw.ef_search={EF_SEARCH} -c hnsw.iterative_scan=strict_order"
TABLES = ("qa_state", "qa_documents", "qa_sentences", "qa_chunks", "qa_lexical", "qa_lexemes")
VISIBLE = "born <= %(g)s AND (died IS NULL OR died > %(g)s)"
SEARCH = {
    kind: f"SELECT id FROM qa_{kind} WHERE {VISIBLE} ORDER BY embedding <#> %(q)s LIMIT %(n)s"
    for kind in ("chunks", "sentences")
}
# Lexical search: the question's lexemes (PostgreSQL's English stemmer) with how many chunks hold each.
QUERY_LEXEMES = (
    "SELECT lexeme, chunks FROM qa_lexemes WHERE chunks > 0 "
    "AND lexeme = ANY(tsvector_to_array(to_tsvector('english', %(text)s))) ORDER BY chunks, lexeme"
)
# subtle: ranking every chunk that shares a common word costs ~10 us a row (1 s at 10^5 chunks in `qa bench`), so
# candidates are the chunks holding the rarest lexemes, up to about this many rows; common words then add nothing,
# as their BM25 weight is small anyway. Corpora under this many chunks are ranked in full.
LEXICAL_CANDIDATES = 2000
COLUMN_TYPE = (
    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
    "WHERE attrelid = to_regclass(%s) AND attname = 'embedding' AND NOT attisdropped"
)
DROP_FIX = "index into another database, or drop this index with `qa db drop --store URL` and index again."


def psycopg_module() -> Any:
    return require("psycopg", INSTALL)


def unavailable(location: str, url: str, exc: Exception) -> IndexUnavailable:
    """A clear error for a database we cannot use; the password never appears in it."""
    text = " ".join(str(exc).split())
    password = password_of(url)
    if password:
        text = text.replace(password, "***").replace(quote(password), "***")
    if "password authentication failed" in text or "no password supplied" in text:
        fix = "check the user and password in the URL (--store or QA_STORE)"
    elif "does not exist" in text and "database" in text:
        fix = "create the database (createdb) or fix its name in the URL"
    else:
        fix = "start the server (`qa db start` for the embedded one) or check the host and port in the URL"
    return IndexUnavailable(f"Cannot use the PostgreSQL database at {location}: {text}. Fix: {fix}.")


def connect(url: str, location: str, *, autocommit: bool = True) -> Any:
    """A psycopg connection with pgvector's types registered when the extension is there."""
    psycopg = psycopg_module()
    try:
        conn = psycopg.connect(
            url, autocommit=autocommit, connect_timeout=10, application_name="qa", options=SESSION_OPTIONS
        )
    except psycopg.Error as exc:
        raise unavailable(location, url, exc) from exc
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
        require("pgvector.psycopg", INSTALL).register_vector(conn)
    if not autocommit:
        conn.rollback()
    return conn


class Pool:
    """Idle autocommit connections, reused by threads one at a time (a `qa chat` worker serves many sessions)."""

    def __init__(self, url: str, location: str, *, keep: int = 32) -> None:
        self.url, self.location, self.keep = url, location, keep
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        conn = conn or connect(self.url, self.location)
        psycopg = psycopg_module()
        healthy = False
        try:
            yield conn
            healthy = True
        except psycopg.OperationalError as exc:  # the server went away: this connection is dead
            raise unavailable(self.location, self.url, exc) from exc
        except psycopg.Error as exc:
            raise IndexCorrupt(
                f"The index in {self.location} cannot be read ({' '.join(str(exc).split())}): was a qa_ table "
                f"edited by hand? Fix: {DROP_FIX}"
            ) from exc
        finally:
            with self._lock:
                kept = healthy and not conn.closed and len(self._idle) < self.keep
                if kept:
                    self._idle.append(conn)
            if not kept:
                conn.close()

    def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self.connection() as conn:
            return list(conn.execute(sql, params).fetchall())

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


@dataclass(frozen=True)
class PgStore(Snapshot):
    """One generation of the corpus in a PostgreSQL database: records in memory, vectors and words searched there."""

    generation: int
    settings: Settings = field(repr=False)
    pool: Pool = field(repr=False, compare=False)
    keys: dict[str, list[int]] = field(repr=False, compare=False)  # database id of each position, per kind
    positions: dict[str, dict[int, int]] = field(repr=False, compare=False)

    def search(self, kind: Kind, query: np.ndarray, count: int) -> list[int]:
        rows = self.pool.fetch(SEARCH[kind], {"g": self.generation, "q": _vector(query), "n": count})
        return self._positions(kind, rows)

    def vectors(self, kind: Kind, ids: Sequence[int]) -> np.ndarray:
        keys = [self.keys[kind][i] for i in ids]
        rows = self.pool.fetch(f"SELECT id, embedding FROM qa_{kind} WHERE id = ANY(%(ids)s)", {"ids": keys})
        found = {key: vector.to_numpy() for key, vector in rows}
        if len(found) < len(set(keys)):
            raise IndexMismatch(f"The index in {self.location} changed twice while answering: ask again.")
        return np.asarray([found[key] for key in keys], dtype="float32").reshape(len(keys), self.manifest["dim"])

    def lexical(self, query: str, count: int) -> list[int]:
        """Chunks holding the question's rarest words, ranked by BM25-like IDF-weighted `ts_rank` (see README)."""
        words = " ".join(tokenize([query])[0])
        found = self.pool.fetch(QUERY_LEXEMES, {"text": words}) if words else []
        picked: list[tuple[str, int]] = []
        for lexeme, chunks in found:  # rarest first
            if picked and sum(n for _, n in picked) + chunks > LEXICAL_CANDIDATES:
                break
            picked.append((lexeme, chunks))
        if not picked:
            return []
        total = max(int(self.manifest["counts"]["chunks"]), 1)
        params: dict[str, Any] = {"g": self.generation, "n": count, "q": " | ".join(_term(t) for t, _ in picked)}
        for i, (lexeme, chunks) in enumerate(picked):
            params[f"t{i}"], params[f"w{i}"] = _term(lexeme), math.log(1 + (total - chunks + 0.5) / (chunks + 0.5))
        score = " + ".join(f"%(w{i})s * ts_rank(lexemes, %(t{i})s::tsquery, 1)" for i in range(len(picked)))
        sql = (
            f"SELECT chunk_id FROM qa_lexical WHERE lexemes @@ %(q)s::tsquery AND {VISIBLE} "
            f"ORDER BY {score} DESC, chunk_id LIMIT %(n)s"
        )
        return self._positions("chunks", self.pool.fetch(sql, params))

    def newer(self) -> PgStore | None:
        """A snapshot of the database's current generation when another process has re-indexed since this one."""
        rows = self.pool.fetch("SELECT generation FROM qa_state", {})
        if rows and rows[0][0] != self.generation:
            return read_snapshot(self.settings, self.pool)
        return None

    def disk_bytes(self) -> dict[str, int]:
        """Bytes on disk of each qa_ table with its indexes (and of each index alone)."""
        rows = self.pool.fetch(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "WHERE c.relname LIKE 'qa\\_%%' AND c.relkind IN ('r', 'i')",
            {},
        )
        return {name: int(size) for name, size in rows}

    def _positions(self, kind: str, rows: list[tuple[Any, ...]]) -> list[int]:
        known = self.positions[kind]
        return [known[row[0]] for row in rows if row[0] in known]


def load_pg(settings: Settings) -> PgStore:
    """Open the index in the database of settings.store; IndexNotFound / IndexMismatch / IndexCorrupt say the fix."""
    return read_snapshot(settings, Pool(settings.store, settings.store_location))


def read_snapshot(settings: Settings, pool: Pool) -> PgStore:
    """Every record of the current generation, read in one repeatable-read transaction, and checked."""
    location = pool.location
    psycopg = psycopg_module()
    conn = connect(pool.url, location, autocommit=False)
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            return snapshot_in(conn, settings, pool)
    except psycopg.OperationalError as exc:
        raise unavailable(location, pool.url, exc) from exc
    except psycopg.Error as exc:
        raise IndexCorrupt(
            f"The index in {location} cannot be read ({' '.join(str(exc).split())}): was a qa_ table edited by "
            f"hand? Fix: {DROP_FIX}"
        ) from exc
    finally:
        conn.close()


def snapshot_in(conn: Any, settings: Settings, pool: Pool) -> PgStore:
    """The current generation as `conn`'s open transaction sees it (a build checks its own before committing)."""
    generation, manifest = _state(conn, pool.location)
    check_compatible(manifest, settings, location=pool.location, fix=DROP_FIX)
    rows = {
        name: conn.execute(sql, {"g": generation}).fetchall()
        for name, sql in (
            ("documents", f"SELECT id, source, title, sha256, body, skipped, extraction, chars FROM qa_documents "
             f"WHERE {VISIBLE}"),
            ("sentences", f"SELECT id, document_id, ordinal, start_at, end_at, kind, digest FROM qa_sentences "
             f"WHERE {VISIBLE} ORDER BY document_id, ordinal"),
            ("chunks", f"SELECT id, document_id, ordinal, start_at, end_at, body, sentence_ordinals "
             f"FROM qa_chunks WHERE {VISIBLE} ORDER BY document_id, ordinal"),
        )
    }  # fmt: skip
    store, digests = _assemble(settings, pool, generation, manifest, rows)
    check_snapshot(store, digests)
    return store


def _state(conn: Any, location: str) -> tuple[int, dict[str, Any]]:
    missing = [t for t in TABLES if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None]
    if len(missing) == len(TABLES):
        raise IndexNotFound(f"No index in the database at {location} yet: build one with `qa index --store URL`.")
    if missing:
        raise IndexCorrupt(f"The index in {location} lacks table(s) {', '.join(missing)}. Fix: {DROP_FIX}")
    state = conn.execute("SELECT generation, manifest FROM qa_state").fetchone()
    if state is None:
        raise IndexCorrupt(f"The index in {location} has an empty qa_state table. Fix: {DROP_FIX}")
    manifest = dict(state[1])
    for table in ("qa_chunks", "qa_sentences"):
        found = conn.execute(COLUMN_TYPE, (table,)).fetchone()
        if found is None or found[0] != f"vector({manifest.get('dim')})":
            raise IndexCorrupt(
                f"The index in {location} has {table}.embedding of type {found and found[0]}, not "
                f"vector({manifest.get('dim')}): was it edited by hand? Fix: {DROP_FIX}"
            )
    return int(state[0]), manifest


def _assemble(
    settings: Settings, pool: Pool, generation: int, manifest: dict[str, Any], rows: dict[str, list[Any]]
) -> tuple[PgStore, list[str]]:
    """Records in the FAISS store's order (documents by source, spans by position), ids = positions; and the
    stored digest of each sentence's text."""
    by_id = {row[0]: row for row in rows["documents"]}
    order = sorted(by_id, key=lambda key: by_id[key][1])
    grouped: dict[str, dict[int, list[Any]]] = {"sentences": defaultdict(list), "chunks": defaultdict(list)}
    for kind, group in grouped.items():
        for row in rows[kind]:
            group[row[1]].append(row)
    documents: dict[str, Document] = {}
    sentences: list[Sentence] = []
    chunks: list[Chunk] = []
    digests: list[str] = []
    keys: dict[str, list[int]] = {"sentences": [], "chunks": []}
    for document_id in order:
        _, source, title, sha256, body, skipped, extraction, chars = by_id[document_id]
        documents[source] = with_extraction(
            Document(source, body, title, sha256, tuple(tuple(r) for r in _json(skipped))), _json(extraction), chars
        )
        first = len(sentences)
        for key, _, _, start, end, kind, digest in grouped["sentences"][document_id]:
            sentences.append(Sentence(source, start, end, kind))
            digests.append(digest)
            keys["sentences"].append(key)
        count = len(sentences) - first
        for key, _, _, start, end, text, ordinals in grouped["chunks"][document_id]:
            if not all(0 <= o < count for o in ordinals):
                raise IndexCorrupt(
                    f"The index in {pool.location} is inconsistent (a chunk of {source} names a missing sentence): "
                    f"was a qa_ table edited by hand? Fix: {DROP_FIX}"
                )
            chunks.append(Chunk(len(chunks), source, start, end, text, tuple(first + o for o in ordinals)))
            keys["chunks"].append(key)
    positions = {kind: {key: i for i, key in enumerate(found)} for kind, found in keys.items()}
    store = PgStore(pool.location, manifest, documents, sentences, chunks, generation, settings, pool, keys, positions)
    return store, digests


def check_snapshot(store: PgStore, digests: Sequence[str]) -> None:
    """IndexCorrupt when the rows disagree with each other (a table edited by hand, a half-copied database): the
    checks every store's records get (`records_problem`)."""
    problem = records_problem(store, digests, text_digest, held="the tables")
    if problem:
        raise IndexCorrupt(
            f"The index in {store.location} is inconsistent ({problem}): was a qa_ table edited by hand? "
            f"Fix: {DROP_FIX}"
        )


def _term(lexeme: str) -> str:
    """A lexeme as a tsquery operand (quoted, so that nothing in it is read as an operator)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _vector(query: np.ndarray) -> Any:
    return require("pgvector", INSTALL).Vector(np.asarray(query, dtype="float32"))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
