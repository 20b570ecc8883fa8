"""Corpus -> PostgreSQL tables (documents, sentences and chunks with offsets, vector(dim) + HNSW, tsvector + GIN).

One build is one transaction under an advisory lock: readers see the old generation or the new one, never half,
and two builders take turns. Only documents whose content hash changed get new rows (their vectors reused by
text digest where the database already has them); their old rows die with the new generation and are deleted
`KEEP_GENERATIONS` builds later, so a worker still answering from the old snapshot keeps finding them.
The schema and the steps of one build transaction stay together (a little over 300 lines): each step relies on it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings

from qa.config import Settings
from qa.errors import IndexCorrupt, IndexMismatch, IndexProblem, IndexUnavailable, QAError, require
from qa.store.build import Prepared, build_input, no_text, prepare, text_digest, warn_replacing
from qa.store.checks import FORMAT_VERSION, check_compatible, owner_in
from qa.store.pg import (
    DROP_FIX,
    INSTALL,
    TABLES,
    VISIBLE,
    PgStore,
    Pool,
    connect,
    load_pg,
    psycopg_module,
    snapshot_in,
    unavailable,
)
from qa.store.records import extraction_record
from qa.text import ENCODING
from qa.types import Document, Progress

logger = logging.getLogger(__name__)

LOCK_KEY = 7_160_016  # pg_advisory_xact_lock key: one qa build at a time per database
KEEP_GENERATIONS = 2  # rows replaced this many builds ago are deleted
HNSW = "WITH (m = 16, ef_construction = 64)"  # pgvector's defaults


def schema(dim: int) -> list[str]:
    return [
        "CREATE TABLE qa_state (id int PRIMARY KEY CHECK (id = 1), generation bigint NOT NULL, "
        "manifest jsonb NOT NULL)",
        "CREATE TABLE qa_documents (id bigserial PRIMARY KEY, source text NOT NULL, title text NOT NULL, "
        "sha256 text NOT NULL, body text NOT NULL, skipped jsonb NOT NULL, born bigint NOT NULL, died bigint, "
        "extraction jsonb NOT NULL DEFAULT '{}', chars bytea)",  # extracted documents: origin, pages, character map
        "CREATE TABLE qa_sentences (id bigserial PRIMARY KEY, "
        "document_id bigint NOT NULL REFERENCES qa_documents ON DELETE CASCADE, ordinal int NOT NULL, "
        "start_at int NOT NULL, end_at int NOT NULL, kind text NOT NULL, digest text NOT NULL, "
        f"embedding vector({dim}) NOT NULL, born bigint NOT NULL, died bigint)",
        "CREATE TABLE qa_chunks (id bigserial PRIMARY KEY, "
        "document_id bigint NOT NULL REFERENCES qa_documents ON DELETE CASCADE, ordinal int NOT NULL, "
        "start_at int NOT NULL, end_at int NOT NULL, body text NOT NULL, sentence_ordinals int[] NOT NULL, "
        f"digest text NOT NULL, embedding vector({dim}) NOT NULL, born bigint NOT NULL, died bigint)",
        # subtle: the words live in a narrow table of their own: beside a text and a vector they would be moved
        # out of line (TOAST), and ranking read them back row by row at several times the cost (`qa bench`)
        "CREATE TABLE qa_lexical (chunk_id bigint PRIMARY KEY REFERENCES qa_chunks ON DELETE CASCADE, "
        "lexemes tsvector NOT NULL, born bigint NOT NULL, died bigint) WITH (toast_tuple_target = 8160)",
        "ALTER TABLE qa_lexical ALTER COLUMN lexemes SET STORAGE MAIN",
        "CREATE TABLE qa_lexemes (lexeme text PRIMARY KEY, chunks int NOT NULL)",  # chunks holding each lexeme
        "CREATE UNIQUE INDEX qa_documents_live ON qa_documents (source) WHERE died IS NULL",
    ]


INDEXES = [  # built after the first load (much faster than inserting into them row by row)
    f"CREATE INDEX qa_chunks_embedding ON qa_chunks USING hnsw (embedding vector_ip_ops) {HNSW}",
    f"CREATE INDEX qa_sentences_embedding ON qa_sentences USING hnsw (embedding vector_ip_ops) {HNSW}",
    "CREATE INDEX qa_lexical_lexemes ON qa_lexical USING gin (lexemes)",
    *(f"CREATE INDEX qa_{t}_document ON qa_{t} (document_id)" for t in ("chunks", "sentences")),
    *(f"CREATE INDEX qa_{t}_digest ON qa_{t} (digest)" for t in ("chunks", "sentences")),
]


def build_pg(
    settings: Settings,
    *,
    documents: Sequence[Document] | None = None,
    embedder: Embeddings | None = None,
    progress: Progress | None = None,
) -> PgStore:
    """Index `settings.corpus_dir` (or `documents`) into the database at settings.store, embedding only new texts."""
    started = time.perf_counter()
    build = build_input(settings, documents, embedder, previous=_previous_documents(settings), progress=progress)
    documents = build.documents

    def write(conn: Any, state: tuple[int, dict[str, Any]] | None) -> bool:
        warn_replacing(owner_in(state[1]) if state else None, settings)
        indexed = _indexed(conn, state[0]) if state else {}
        changed = [d for d in documents if indexed.get(d.source, (0, ""))[1] != _version(d)]
        current = {d.source for d in documents}
        replaced = {d.source for d in changed}
        retired = [key for source, (key, _) in indexed.items() if source not in current or source in replaced]
        if state and not changed and not retired:
            return False
        known = (lambda digests: _known_vectors(conn, digests)) if state else (lambda digests: {})
        prepared = prepare(changed, settings, known, build.embedder, progress)
        kept_chunks = _count(conn, "qa_chunks", state[0]) - _count_of(conn, retired) if state else 0
        if kept_chunks + len(prepared.chunks) == 0:
            raise no_text(settings)
        _write_generation(conn, settings, state, prepared, retired, started)
        return True

    return _in_build_transaction(settings, write)


def write_pg_index(settings: Settings, prepared: Prepared) -> PgStore:
    """Replace the whole corpus in the database with `prepared` (spans and vectors made elsewhere), atomically."""
    started = time.perf_counter()

    def write(conn: Any, state: tuple[int, dict[str, Any]] | None) -> bool:
        retired = list(key for key, _ in _indexed(conn, state[0]).values()) if state else []
        _write_generation(conn, settings, state, prepared, retired, started)
        return True

    return _in_build_transaction(settings, write)


def drop_pg(settings: Settings) -> bool:
    """Drop the qa_ tables of the database at settings.store (in one transaction); False when there were none."""
    conn = connect(settings.store, settings.store_location, autocommit=False)
    try:
        with conn.transaction():
            found = [t for t in TABLES if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is not None]
            if found:
                conn.execute(f"DROP TABLE {', '.join(found)} CASCADE")
        return bool(found)
    except psycopg_module().Error as exc:
        raise IndexUnavailable(
            f"Cannot drop the index in {settings.store_location}: {' '.join(str(exc).split())}. Fix: connect as "
            "the owner of the qa_ tables."
        ) from exc
    finally:
        conn.close()


def _in_build_transaction(
    settings: Settings, write: Callable[[Any, tuple[int, dict[str, Any]] | None], bool]
) -> PgStore:
    """Run `write(conn, state)` in one transaction holding the build lock, with pgvector enabled; the corpus it
    leaves is read and checked before the transaction commits (a new generation failing its check is rolled back,
    and the previous one is kept)."""
    location = settings.store_location
    psycopg = psycopg_module()
    conn = connect(settings.store, location, autocommit=False)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            _enable_pgvector(conn, location)
            conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
            state = _read_state(conn, settings)
            pool = Pool(settings.store, location)
            if not write(conn, state):
                return snapshot_in(conn, settings, pool)
            store = _checked(conn, settings, pool)
            logger.info("Wrote a new generation of the index in %s", location)
        return store
    except psycopg.OperationalError as exc:
        raise unavailable(location, settings.store, exc) from exc
    except psycopg.Error as exc:  # e.g. a user who may not create tables: nothing was written
        raise IndexUnavailable(
            f"Cannot write the index into the database at {location}: {' '.join(str(exc).split())}. Fix: use a "
            "user allowed to create tables in that database (GRANT CREATE ON SCHEMA public), or another database."
        ) from exc
    finally:
        conn.close()


def _checked(conn: Any, settings: Settings, pool: Pool) -> PgStore:
    try:
        return snapshot_in(conn, settings, pool)
    except IndexProblem as exc:  # subtle: never commit an index that the next load would refuse
        raise IndexCorrupt(
            f"The new index of {settings.corpus_dir} failed its check ({exc}); the previous index in "
            f"{settings.store_location} is kept. Please report this with the corpus that caused it."
        ) from exc


def _enable_pgvector(conn: Any, location: str) -> None:
    psycopg = psycopg_module()
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone() is None:
            raise IndexUnavailable(
                f"The PostgreSQL server of {location} has no pgvector extension. Fix: install pgvector on that "
                "server (e.g. the postgresql-NN-pgvector package), or use the embedded server (`qa db start`)."
            )
        try:
            with conn.transaction():  # a savepoint: the error message below is the useful part
                conn.execute("CREATE EXTENSION vector")
        except psycopg.errors.InsufficientPrivilege as exc:
            user = conn.execute("SELECT current_user").fetchone()[0]
            raise IndexUnavailable(
                f"The database at {location} does not have the pgvector extension enabled, and user {user!r} may "
                "not enable it. Fix: run `CREATE EXTENSION vector;` in that database as a superuser or its owner."
            ) from exc
    require("pgvector.psycopg", INSTALL).register_vector(conn)


def _read_state(conn: Any, settings: Settings) -> tuple[int, dict[str, Any]] | None:
    if conn.execute("SELECT to_regclass('qa_state')").fetchone()[0] is None:
        return None
    row = conn.execute("SELECT generation, manifest FROM qa_state").fetchone()
    if row is None:
        return None
    manifest = dict(row[1])
    check_compatible(manifest, settings, location=settings.store_location, fix=DROP_FIX)
    return int(row[0]), manifest


def _indexed(conn: Any, generation: int) -> dict[str, tuple[int, str]]:
    """Each indexed document's row id and version (`_version`)."""
    rows = conn.execute(
        "SELECT source, id, sha256 || ' ' || coalesce(extraction->>'extractor', '') || ' ' || "
        f"coalesce(extraction->>'file_sha256', '') FROM qa_documents WHERE {VISIBLE}",
        {"g": generation},
    )
    return {source: (key, version) for source, key, version in rows.fetchall()}


def _version(document: Document) -> str:
    """What makes a document's row new: its text, and for an extracted one its reader version and file bytes."""
    return f"{document.sha256} {document.extractor} {document.file_sha256}"


def _previous_documents(settings: Settings) -> dict[str, Document]:
    """The documents in the database (their extractions are reused), or none when it cannot be read."""
    try:
        return dict(load_pg(settings).documents)
    except QAError:
        return {}


def _count(conn: Any, table: str, generation: int) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table} WHERE {VISIBLE}", {"g": generation}).fetchone()[0])


def _count_of(conn: Any, document_ids: list[int]) -> int:
    row = conn.execute("SELECT count(*) FROM qa_chunks WHERE document_id = ANY(%s)", (document_ids,)).fetchone()
    return int(row[0])


def _known_vectors(conn: Any, digests: list[str]) -> dict[str, Any]:
    """Vectors the database already holds for these text digests (those texts are not embedded again)."""
    found: dict[str, Any] = {}
    for table in ("qa_chunks", "qa_sentences"):
        sql = f"SELECT DISTINCT ON (digest) digest, embedding FROM {table} WHERE digest = ANY(%s)"
        found.update((digest, vector.to_numpy()) for digest, vector in conn.execute(sql, (digests,)).fetchall())
    return found


def _write_generation(
    conn: Any,
    settings: Settings,
    state: tuple[int, dict[str, Any]] | None,
    prepared: Prepared,
    retired: list[int],
    started: float,
) -> None:
    generation = (state[0] if state else 0) + 1
    dim = int(prepared.chunk_vectors.shape[1]) if len(prepared.chunks) else int(state[1]["dim"]) if state else 0
    if state and dim != state[1]["dim"]:
        raise IndexMismatch(
            f"Index at {settings.store_location} holds {state[1]['dim']}-dimensional vectors, but the embedding "
            f"model gives {dim}. Fix: {DROP_FIX}"
        )
    if state is None:
        for statement in schema(dim):
            conn.execute(statement)
    for table in ("qa_documents", "qa_sentences", "qa_chunks"):
        column = "id" if table == "qa_documents" else "document_id"
        conn.execute(f"UPDATE {table} SET died = %s WHERE {column} = ANY(%s)", (generation, retired))
    conn.execute(
        "UPDATE qa_lexical SET died = %s FROM qa_chunks WHERE qa_chunks.id = chunk_id AND qa_chunks.died = %s",
        (generation, generation),
    )
    _copy_rows(conn, prepared, generation)
    _index_words(conn, generation)
    if state is None:
        for statement in INDEXES:
            conn.execute(statement)
    conn.execute("DELETE FROM qa_documents WHERE died <= %s", (generation - KEEP_GENERATIONS,))
    conn.execute(f"ANALYZE {', '.join(TABLES[1:])}")  # the planner's statistics, before the first question
    counts = {t: _count(conn, f"qa_{t}", generation) for t in ("documents", "sentences", "chunks")}
    manifest = {
        "format_version": FORMAT_VERSION,
        "embed_model": settings.embed_model,
        "dim": dim,
        "tokenizer": ENCODING,
        "chunk_tokens": settings.chunk_tokens,
        "overlap_tokens": settings.overlap_tokens,
        "vector_index": "hnsw (pgvector, m 16, ef_construction 64)",
        "lexical_index": "postgresql full text search (english stemmer), IDF-weighted ts_rank over the rarest words",
        "corpus_dir": str(settings.corpus_dir.resolve()),
        "counts": counts,
        "generation": generation,
        "build_seconds": round(time.perf_counter() - started, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    conn.execute(
        "INSERT INTO qa_state (id, generation, manifest) VALUES (1, %s, %s) "
        "ON CONFLICT (id) DO UPDATE SET generation = EXCLUDED.generation, manifest = EXCLUDED.manifest",
        (generation, json.dumps(manifest)),
    )


def _index_words(conn: Any, generation: int) -> None:
    """Lexemes of the new chunks (English stemmer), and each lexeme's chunk count moved by what was born and died."""
    conn.execute(
        "INSERT INTO qa_lexical (chunk_id, lexemes, born) "
        "SELECT id, to_tsvector('english', body), born FROM qa_chunks WHERE born = %s",
        (generation,),
    )
    for rows, sign in ((f"born = {int(generation)}", "+"), (f"died = {int(generation)}", "-")):
        conn.execute(
            f"INSERT INTO qa_lexemes (lexeme, chunks) "
            f"SELECT word, {sign}ndoc FROM ts_stat('SELECT lexemes FROM qa_lexical WHERE {rows}') "
            f"ON CONFLICT (lexeme) DO UPDATE SET chunks = qa_lexemes.chunks + EXCLUDED.chunks"
        )
    conn.execute("DELETE FROM qa_lexemes WHERE chunks <= 0")


def _copy_rows(conn: Any, prepared: Prepared, generation: int) -> None:
    """COPY the documents, then their sentences and chunks (binary, vectors included), numbered per document."""
    with conn.cursor() as cursor:
        with cursor.copy(
            "COPY qa_documents (source, title, sha256, body, skipped, born, extraction, chars) FROM STDIN"
        ) as copy:
            for d in prepared.documents:
                skipped = json.dumps([list(r) for r in d.skipped])
                chars = d.chars.to_bytes() if d.chars is not None else None
                extraction = json.dumps(extraction_record(d))
                copy.write_row((d.source, d.title, d.sha256, d.text, skipped, generation, extraction, chars))
    rows = conn.execute("SELECT source, id FROM qa_documents WHERE born = %s", (generation,)).fetchall()
    document_id = dict(rows)
    first_sentence: dict[str, int] = {}
    ordinal: dict[int, int] = {}
    for position, sentence in enumerate(prepared.sentences):
        first_sentence.setdefault(sentence.source, position)
        ordinal[position] = position - first_sentence[sentence.source]
    with conn.cursor() as cursor:
        with cursor.copy(
            "COPY qa_sentences (document_id, ordinal, start_at, end_at, kind, digest, embedding, born) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int4", "int4", "int4", "text", "text", "vector", "int8"])
            text_of = {d.source: d.text for d in prepared.documents}
            for position, s in enumerate(prepared.sentences):
                digest = text_digest(text_of[s.source][s.start : s.end])
                copy.write_row(
                    (document_id[s.source], ordinal[position], s.start, s.end, s.kind, digest,
                     prepared.sentence_vectors[position], generation)
                )  # fmt: skip
        chunk_ordinal: dict[str, int] = {}
        with cursor.copy(
            "COPY qa_chunks (document_id, ordinal, start_at, end_at, body, sentence_ordinals, digest, embedding, "
            "born) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int4", "int4", "int4", "text", "int4[]", "text", "vector", "int8"])
            for position, c in enumerate(prepared.chunks):
                number = chunk_ordinal[c.source] = chunk_ordinal.get(c.source, -1) + 1
                ordinals = [i - first_sentence[c.source] for i in c.sentence_ids]
                copy.write_row(
                    (document_id[c.source], number, c.start, c.end, c.text, ordinals, text_digest(c.text),
                     prepared.chunk_vectors[position], generation)
                )  # fmt: skip
