"""Corpus folder -> list[Document]: every article file under it, read by the reader of its format.

Text is decoded as UTF-8 from bytes (no newline translation, no normalisation), so offsets point into the file.
Hidden folders, index folders and links leading outside the corpus are left out.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from qa.errors import CorpusError, EmptyCorpus
from qa.ingest.formats import describe_formats, reader_for
from qa.text import SURROGATE
from qa.types import Document, Progress

logger = logging.getLogger(__name__)

INDEX_RECORDS = ("documents.jsonl", "sentences.jsonl", "chunks.jsonl")


def load_corpus(
    corpus_dir: Path,
    *,
    skip: Iterable[Path] = (),
    previous: Mapping[str, Document] | None = None,
    progress: Progress | None = None,
) -> list[Document]:
    """Read every article under `corpus_dir`; unreadable files are skipped with a warning naming them.

    Hidden folders, the folders in `skip` (the index being built) and any folder holding an index are left out;
    symbolic links that lead outside `corpus_dir` are not followed. Source names are unique: a JSONL record whose
    name is taken (a repeated id, or the name of a file) gets another one, with a warning. An extracted document
    of `previous` (the index's) is kept as it is when its file's bytes and its reader's version are unchanged.
    `progress` gets (bytes read, bytes of all files), from (0, total).
    """
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"Corpus folder {corpus_dir} does not exist or is not a folder: "
            f"pass --corpus DIR (or set QA_CORPUS_DIR) to a folder of {describe_formats()} articles."
        )
    paths = sorted(_article_paths(corpus_dir, {folder.resolve() for folder in skip}))
    taken = {p.as_posix() for p in paths}  # files keep their own names
    sizes = [_size(corpus_dir / path) for path in paths]
    total, done = sum(sizes), 0
    if progress:
        progress(0, total)
    documents: list[Document] = []
    for path, size in zip(paths, sizes, strict=True):
        report = None if progress is None else _within(progress, done, size, total)
        documents += _read_path(corpus_dir / path, path.as_posix(), taken, previous or {}, report)
        done += size
        if progress:
            progress(done, total)
    if not documents:
        raise EmptyCorpus(
            f"Corpus folder {corpus_dir} holds no readable article ({describe_formats()} with UTF-8 text): "
            "add articles there or point --corpus at another folder."
        )
    return documents


def is_index_folder(folder: Path) -> bool:
    """Whether `folder` holds an index written by qa.store (its records are JSONL and would read as articles)."""
    return (folder / "manifest.json").is_file() and any((folder / name).is_file() for name in INDEX_RECORDS)


def _article_paths(root: Path, skip: set[Path]) -> Iterator[Path]:
    """Paths (relative to `root`) of candidate article files, without following links out of `root`."""
    real_root = root.resolve()
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        kept = []
        for name in sorted(subfolders):
            path = here / name
            if name.startswith(".") or path.resolve() in skip:
                continue
            if path.is_symlink():
                _warn_link(path, root, real_root)
            elif is_index_folder(path):
                logger.info("Skipping folder %s: it holds an index, not articles.", path.relative_to(root))
            else:
                kept.append(name)
        subfolders[:] = kept  # os.walk descends only into these
        for name in files:
            path = here / name
            if name.startswith(".") or reader_for(path) is None:
                continue
            if SURROGATE.search(str(path)):  # its name would be the source name, and must be printable text
                shown = SURROGATE.sub("\ufffd", str(path.relative_to(root)))
                logger.warning("Skipping %s: its name is not valid UTF-8; rename the file to include it.", shown)
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                _warn_link(path, root, real_root)
                continue
            yield path.relative_to(root)


def _warn_link(path: Path, root: Path, real_root: Path) -> None:
    target = path.resolve()
    if target.is_relative_to(real_root):  # a folder linked from inside: its files are read where they are
        logger.info("Not following %s: a link to %s inside the corpus.", path.relative_to(root), target)
        return
    logger.warning(
        "Not following %s: it is a link to %s, outside the corpus folder %s; copy the file in to index it.",
        path.relative_to(root),
        target,
        root,
    )


def _read_path(
    path: Path, source: str, taken: set[str], previous: Mapping[str, Document], progress: Progress | None
) -> Iterator[Document]:
    reader = reader_for(path)
    if reader is None or not path.is_file():
        return
    known = previous.get(source)
    if reader.version and known is not None and known.extractor == reader.version:
        if known.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest():
            yield known  # subtle: the index's extraction is the text its offsets point into; never re-extract it
            return
    yield from reader.read(path, source, taken, progress)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _within(progress: Progress, offset: int, size: int, total: int) -> Progress:
    """A file's own (done, total) (pages of a PDF) as bytes of the corpus, at its share of the file's size."""
    return lambda done, count: progress(offset + (size * done) // max(count, 1), total) if done else None
