"""A store's records -> their checks: format and settings, corpus ownership, and consistency (counts, document and
sentence hashes, spans, chunk sentence ids), the same for every backend. Every problem is an IndexProblem naming
the fix.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from qa.config import Settings
from qa.errors import CorpusError, IndexMismatch, QAError
from qa.ingest import describe_formats
from qa.store.base import Snapshot
from qa.types import Chunk, Document, Sentence

# 2: sentences carry a digest of their text (both stores); 3: text addressed to an assistant or posing as a
# citation is skipped at ingestion (older indexes hold it as sentences), FAISS files carry a digest; 4: documents
# carry their extraction (pages, character map) in both stores
FORMAT_VERSION = 4


def check_owner(settings: Settings) -> None:
    """Refuse to use or rebuild an index built from another corpus folder than settings.corpus_dir.

    An index belongs to the corpus its manifest names; a question about another folder must not be answered from
    it, nor rewrite it in place. A database (settings.store) is checked once read: `check_database_owner`.
    """
    if settings.uses_postgres:
        return
    owner = corpus_of(settings.index_dir)
    if owner is None and not (settings.index_dir / "manifest.json").exists() and not settings.corpus_dir.is_dir():
        raise CorpusError(
            f"Corpus folder {settings.corpus_dir} does not exist, and there is no index at {settings.index_dir} to "
            f"answer from: pass --corpus DIR (or set QA_CORPUS_DIR) to a folder of {describe_formats()} articles."
        )
    if owner is None or owner == settings.corpus_dir.resolve():
        return
    if not settings.corpus_dir.is_dir():
        raise CorpusError(
            f"Corpus folder {settings.corpus_dir} does not exist or is not a folder (the index at "
            f"{settings.index_dir} belongs to {owner}): pass --corpus DIR (or set QA_CORPUS_DIR) to a folder of "
            "articles."
        )
    raise IndexMismatch(
        f"Index at {settings.index_dir} was built from {owner}, not from {settings.corpus_dir}, so it is left as "
        f"it is: give this corpus its own index with --index-dir (e.g. `qa --corpus {settings.corpus_dir} "
        f"--index-dir index/{settings.corpus_dir.resolve().name} ask ...`), or replace this one with "
        f"`qa index --corpus {settings.corpus_dir} --index-dir {settings.index_dir}`."
    )


def check_database_owner(manifest: Mapping[str, Any], settings: Settings) -> None:
    """`check_owner` for a PostgreSQL store: one corpus per database (or schema), the one its manifest names."""
    owner = owner_in(manifest)
    if owner is None or owner == settings.corpus_dir.resolve():
        return
    location = settings.store_location
    raise IndexMismatch(
        f"The index in {location} was built from {owner}, not from {settings.corpus_dir}, so it is left as it is: "
        f"give this corpus its own database (another database name in --store), or replace this one with "
        f"`qa index --corpus {settings.corpus_dir} --store URL`."
    )


def owner_in(manifest: Mapping[str, Any]) -> Path | None:
    """The corpus folder a manifest names (None when it names none)."""
    owner = manifest.get("corpus_dir")
    return Path(owner).resolve() if isinstance(owner, str) and owner else None


def corpus_of(index_dir: Path) -> Path | None:
    """The corpus folder an index was built from, as its manifest records it (None if unknown or unreadable)."""
    try:
        manifest = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return owner_in(manifest) if isinstance(manifest, dict) else None


def check_compatible(
    manifest: Mapping[str, Any], settings: Settings, *, location: str = "", fix: str = "rebuild it with `qa index`."
) -> None:
    """Raise IndexMismatch when the index (at `location`, settings.store_location by default) was built with other
    settings than `settings`; `fix` ends the message."""
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


def check_format(index_dir: Path, manifest: dict[str, Any]) -> None:
    found = manifest.get("format_version")
    if found != FORMAT_VERSION:
        raise IndexMismatch(
            f"Index at {index_dir} has format_version={found!r}; this version of qa reads {FORMAT_VERSION}: "
            "rebuild it with `qa index`."
        )


def records_problem(
    store: Snapshot, digests: Sequence[str | None], digest: Callable[[str], str], *, held: str = "the files"
) -> str | None:
    """What is wrong with a store's records, or None: counts against the manifest, document hashes, spans, each
    sentence's stored text `digest`, chunk texts and sentence ids. `held` names where the records are."""
    counts = store.manifest.get("counts") or {}
    found = {"documents": len(store.documents), "sentences": len(store.sentences), "chunks": len(store.chunks)}
    if counts != found:
        return f"the manifest counts {counts}, {held} hold {found} (two documents with one source name?)"
    for doc in store.documents.values():
        if hashlib.sha256(doc.text.encode("utf-8")).hexdigest() != doc.sha256:
            return f"text of {doc.source} does not match its hash"
        problem = layout_problem(doc)
        if problem:
            return problem
    spans: list[Sentence | Chunk] = [*store.chunks, *store.sentences]
    for item in spans:
        document = store.documents.get(item.source)
        if document is None or not 0 <= item.start < item.end <= len(document.text):
            return f"span {item.source}[{item.start}:{item.end}] is outside its document"
    for number, (sentence, stored) in enumerate(zip(store.sentences, digests, strict=True)):
        if stored != digest(store.text(sentence)):
            return f"sentence {number} {sentence.source}[{sentence.start}:{sentence.end}] no longer matches its text"
    sentences = store.sentences
    for chunk in store.chunks:
        if chunk.text != store.text(chunk):
            return f"a chunk's text differs from its document slice (chunk {chunk.id})"
        if not all(0 <= i < len(sentences) and sentences[i].source == chunk.source for i in chunk.sentence_ids):
            return f"chunk {chunk.id} has sentence_ids {list(chunk.sentence_ids)} outside its document's sentences"
    return None


def layout_problem(document: Document) -> str | None:
    """What is wrong with a document's page table or character map, or None: pages must tile the text in order,
    and the map must have one entry per character."""
    position = 0
    for page in document.pages:
        if page.start != position or page.end < page.start:
            return f"the page table of {document.source} does not tile its text (page {page.index})"
        position = page.end
    if document.pages and position != len(document.text):
        return f"the page table of {document.source} ends at {position}, its text at {len(document.text)}"
    if document.chars is not None and len(document.chars) != len(document.text):
        return f"the character map of {document.source} has {len(document.chars)} entries for {len(document.text)}"
    return None


def sentence_digest(text: str) -> str:
    """A short hash of a sentence's text: edited offsets in sentences.jsonl point at other text and fail it."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def check_unique(documents: Sequence[Document]) -> None:
    counts = Counter(d.source for d in documents)
    repeated = sorted(source for source, count in counts.items() if count > 1)
    if repeated:
        raise QAError(
            f"{len(repeated)} source name(s) belong to more than one document (e.g. {repeated[0]!r}), but citations "
            "find their article by name: give every article its own name (load_corpus does)."
        )


def one_line(error: BaseException) -> str:
    """An exception's message on one line (FAISS and JSON errors can span several)."""
    return " ".join(str(error).split())
