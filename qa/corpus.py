"""Corpus folder -> list[Document]: read .txt/.md files and .jsonl article files, exactly as stored.

Text is decoded as UTF-8 from bytes (no newline translation, no normalisation), so offsets point into the file.
Boilerplate (sign-up lines, repeated captions, trailing listings, foreign-script lines) is recorded as
ranges to skip; the text itself is never rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

from qa.errors import CorpusError, EmptyCorpus
from qa.text import SURROGATE
from qa.types import Document

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md"}
JSONL_SUFFIXES = {".jsonl"}
MAX_FILE_BYTES = 50_000_000  # a JSONL file may hold many articles
# One article is at most this long (about 1,000 long news articles): above it, splitting sentences (6-8 s of CPU
# per MB) and embedding (about 2 minutes per MB on 2 cores) would run for long, so it is skipped with the reason.
MAX_ARTICLE_CHARS = 5_000_000
INDEX_RECORDS = ("documents.jsonl", "sentences.jsonl", "chunks.jsonl")

# Lines that are site furniture, not article content. Matched against a whole stripped line.
BOILERPLATE_LINE = re.compile(
    r"""^(?:
        sign\ up\b.*|subscribe\b.*|by\ submitting\ this\ form\b.*|view\ original\ post
      | related\ (?:stories|articles|posts)
      | no\ stories\ found\.?|read\ more\b.*|advertisement|share\ this\ (?:article|story)\b.*|click\ here\b.*
      | all\ rights\ reserved\b.*|(?:copyright|©)\ .*|follow\ us\ on\b.*|download\ our\ app\b.*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
LINE = re.compile(r"[^\n]*(?:\n|$)")


def load_corpus(corpus_dir: Path, *, skip: Iterable[Path] = ()) -> list[Document]:
    """Read every article under `corpus_dir`; unreadable files are skipped with a warning naming them.

    Hidden folders, the folders in `skip` (the index being built) and any folder holding an index are left out;
    symbolic links that lead outside `corpus_dir` are not followed. Source names are unique: a JSONL record whose
    name is taken (a repeated id, or the name of a file) gets another one, with a warning.
    """
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"Corpus folder {corpus_dir} does not exist or is not a folder: "
            "pass --corpus DIR (or set QA_CORPUS_DIR) to a folder of .txt, .md or .jsonl articles."
        )
    paths = sorted(_article_paths(corpus_dir, {folder.resolve() for folder in skip}))
    taken = {p.as_posix() for p in paths if p.suffix.lower() in TEXT_SUFFIXES}  # files keep their own names
    documents = [doc for path in paths for doc in _read_path(corpus_dir / path, path.as_posix(), taken)]
    if not documents:
        raise EmptyCorpus(
            f"Corpus folder {corpus_dir} holds no readable article (.txt, .md or .jsonl with UTF-8 text): "
            "add articles there or point --corpus at another folder."
        )
    return documents


def make_document(source: str, text: str, title: str | None = None) -> Document:
    """Build a Document, finding its title and boilerplate ranges."""
    return Document(
        source=source,
        text=text,
        title=title or _first_line(text) or source,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        skipped=tuple(find_boilerplate(text)),
    )


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
            if name.startswith(".") or path.suffix.lower() not in TEXT_SUFFIXES | JSONL_SUFFIXES:
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
    if not path.is_file():
        return
    text = _read_text(path, source)
    if text is None:
        return
    if path.suffix.lower() in JSONL_SUFFIXES:
        yield from _read_jsonl(text, source, taken)
    elif not text.strip():
        logger.warning("Skipping %s: the file is empty.", source)
    elif _fits(text, source):
        yield make_document(source, text)


def _fits(text: str, where: str) -> bool:
    if len(text) <= MAX_ARTICLE_CHARS:
        return True
    logger.warning(
        "Skipping %s: %s characters is longer than %s characters (splitting and embedding it would take many "
        "minutes); split it into several articles.",
        where,
        f"{len(text):,}",
        f"{MAX_ARTICLE_CHARS:,}",
    )
    return False


def _read_text(path: Path, source: str) -> str | None:
    if path.stat().st_size > MAX_FILE_BYTES:
        logger.warning("Skipping %s: larger than %d bytes; split it into several articles.", source, MAX_FILE_BYTES)
        return None
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        logger.warning("Skipping %s: it looks binary (NUL bytes); only UTF-8 text articles are read.", source)
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        logger.warning(
            "Skipping %s: not valid UTF-8 at byte %d (%s); re-save it as UTF-8 to include it.",
            source,
            exc.start,
            exc.reason,
        )
        return None


def _read_jsonl(text: str, source: str, taken: set[str]) -> Iterator[Document]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            logger.warning("Skipping %s line %d: not valid JSON (%s).", source, number, exc.msg)
            continue
        body = record.get("text") if isinstance(record, dict) else None
        where = f"{source} line {number}"
        if not isinstance(body, str) or not body.strip():
            logger.warning('Skipping %s: no non-empty "text" field.', where)
            continue
        if SURROGATE.search(body):
            logger.warning("Skipping %s: its text is not valid Unicode (a lone surrogate such as \\ud800).", where)
            continue
        if not _fits(body, where):
            continue
        key = SURROGATE.sub("\ufffd", str(record.get("id") or record.get("url") or number))
        name = _unique_name(f"{source}#{key}", number, taken)
        if name != f"{source}#{key}":  # every article needs its own source name: offsets are looked up by it
            logger.warning("%s: the source name %r is taken (a repeated id?); indexing it as %r.", where, key, name)
        taken.add(name)
        title = record.get("title") if isinstance(record.get("title"), str) else None
        yield make_document(name, body, SURROGATE.sub("\ufffd", title) if title else None)


def _unique_name(name: str, number: int, taken: set[str]) -> str:
    """`name`, or `name@<line>` (then `name@<line>.2`, ...) when taken: unique whatever the ids look like."""
    if name not in taken:
        return name
    candidate, extra = f"{name}@{number}", 1
    while candidate in taken:
        extra += 1
        candidate = f"{name}@{number}.{extra}"
    return candidate


def _first_line(text: str) -> str:
    """The headline: among the first three lines, the first that reads like a title (not a sentence or
    slogan ending with a period, 4-25 words); otherwise the first line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()][:3]
    for line in lines:
        if not line.endswith(".") and 4 <= len(line.split()) <= 25:
            return line[:160]
    return lines[0][:160] if lines else ""


def find_boilerplate(text: str) -> list[tuple[int, int, str]]:
    """Ranges of `text` that are not article content, each with the reason it is skipped."""
    lines = [(m.start(), m.end()) for m in LINE.finditer(text) if m.end() > m.start()]
    main_script = dominant_script(text)
    seen: set[str] = set()
    ranges: list[tuple[int, int, str]] = []
    for start, end in lines:
        stripped = text[start:end].strip()
        if not stripped:
            continue
        if BOILERPLATE_LINE.match(stripped):
            ranges.append((start, end, "site boilerplate"))
        elif stripped in seen and len(stripped) > 3:
            ranges.append((start, end, "repeated line"))
        elif dominant_script(stripped) != main_script:
            ranges.append((start, end, "other script than the article"))
        seen.add(stripped)
    ranges.extend(_trailing_listing(text, lines))
    return _merge(ranges)


def _trailing_listing(text: str, lines: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """A run of three or more short non-sentence lines closing the document (book lists, site footers), after
    some prose: a document of short lines only is the article itself, not its listing."""
    tail: list[tuple[int, int]] = []
    after_prose = False
    for start, end in reversed(lines):
        stripped = text[start:end].strip()
        if not stripped:
            continue
        if _is_prose(stripped):
            after_prose = True
            break
        tail.append((start, end))
    if len(tail) < 3 or not after_prose:
        return []
    return [(start, end, "trailing listing") for start, end in tail]


def _is_prose(line: str) -> bool:
    return len(line.split()) >= 8 and line.rstrip("”’\"') ").endswith((".", "!", "?", "…"))


def dominant_script(text: str) -> str:
    counts: dict[str, int] = {}
    for char in text:
        if char.isalpha():
            script = _script(char)
            counts[script] = counts.get(script, 0) + 1
    return max(counts, key=lambda script: counts[script]) if counts else "none"


def _script(char: str) -> str:
    if ord(char) < 0x250:
        return "latin"
    name = unicodedata.name(char, "")
    if name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")):
        return "cjk"
    return name.split(" ")[0].lower() or "other"


def _merge(ranges: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    merged: list[tuple[int, int, str]] = []
    for start, end, reason in sorted(ranges):
        if merged and start <= merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2])
        else:
            merged.append((start, end, reason))
    return merged
