"""Corpus folder -> list[Document]: every article file under it, read by the reader of its format.

Text is decoded as UTF-8 from bytes (no newline translation, no normalisation), so offsets point into the file.
Hidden folders, index folders and links leading outside the corpus are left out.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from qa.errors import CorpusError, EmptyCorpus
from qa.ingest.formats import describe_formats, reader_for
from qa.text import SURROGATE
from qa.types import Document

logger = logging.getLogger(__name__)

INDEX_RECORDS = ("documents.jsonl", "sentences.jsonl", "chunks.jsonl")


def load_corpus(corpus_dir: Path, *, skip: Iterable[Path] = ()) -> list[Document]:
    """Read every article under `corpus_dir`; unreadable files are skipped with a warning naming them.

    Hidden folders, the folders in `skip` (the index being built) and any folder holding an index are left out;
    symbolic links that lead outside `corpus_dir` are not followed. Source names are unique: a JSONL record whose
    name is taken (a repeated id, or the name of a file) gets another one, with a warning.
    """
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"Corpus folder {corpus_dir} does not exist or is not a folder: "
            f"pass --corpus DIR (or set QA_CORPUS_DIR) to a folder of {describe_formats()} articles."
        )
    paths = sorted(_article_paths(corpus_dir, {folder.resolve() for folder in skip}))
    taken = {p.as_posix() for p in paths}  # files keep their own names
    documents = [doc for path in paths for doc in _read_path(corpus_dir / path, path.as_posix(), taken)]
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


def _read_path(path: Path, source: str, taken: set[str]) -> Iterator[Document]:
    reader = reader_for(path)
    if reader is not None and path.is_file():
        yield from reader.read(path, source, taken)
