from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from qa import Settings
from qa.chunk import chunk_document
from qa.errors import IndexCorrupt, IndexMismatch, IndexNotFound, QAError
from qa.ingest import load_corpus, make_document
from qa.store import FILES, build_faiss, load_faiss, stale_sources
from qa.types import Chunk, Document, Sentence
from tests.conftest import TINY
from tests.fakes import HashEmbeddings


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    shutil.copytree(TINY, corpus)
    return Settings(
        corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="hash", chunk_tokens=40, overlap_tokens=8
    )


def test_build_save_load_gives_the_same_index(settings: Settings) -> None:
    built = build_faiss(settings, embedder=HashEmbeddings())
    loaded = load_faiss(settings.index_dir, settings)
    assert loaded.chunks == built.chunks and loaded.sentences == built.sentences
    assert loaded.documents == built.documents
    query = np.asarray([HashEmbeddings().embed_query("Mount Kelud volcano erupted")], dtype="float32")
    assert (built.chunk_vectors.search(query, 3)[1] == loaded.chunk_vectors.search(query, 3)[1]).all()
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert manifest["counts"]["documents"] == 3 and manifest["chunk_tokens"] == 40
    assert all(c.text == loaded.documents[c.source].text[c.start : c.end] for c in loaded.chunks)


def test_rebuild_embeds_only_changed_documents(settings: Settings) -> None:
    first = HashEmbeddings()
    build_faiss(settings, embedder=first)
    unchanged = HashEmbeddings()
    build_faiss(settings, embedder=unchanged)
    assert unchanged.calls == 0
    (settings.corpus_dir / "chess.md").write_text("# Chess\n\nA brand new sentence about rooks.\n", encoding="utf-8")
    edited = HashEmbeddings()
    index = build_faiss(settings, embedder=edited)
    assert 0 < edited.calls <= 4  # the new chunk and sentences only
    assert stale_sources(index, load_corpus(settings.corpus_dir)) == []


def test_interrupted_build_leaves_the_old_index_intact(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    build_faiss(settings, embedder=HashEmbeddings())
    before = (settings.index_dir / "chunks.jsonl").read_bytes()
    (settings.corpus_dir / "lake.txt").write_text("Changed text about a lake.", encoding="utf-8")

    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(faiss, "write_index", crash)
    with pytest.raises(KeyboardInterrupt):
        build_faiss(settings, embedder=HashEmbeddings())
    assert (settings.index_dir / "chunks.jsonl").read_bytes() == before
    assert not [p for p in settings.index_dir.parent.iterdir() if p.name.startswith(".index.")]
    load_faiss(settings.index_dir, settings)


def test_missing_corrupt_and_mismatched_indexes_raise_with_the_fix(settings: Settings) -> None:
    with pytest.raises(IndexNotFound, match="qa index"):
        load_faiss(settings.index_dir, settings)
    build_faiss(settings, embedder=HashEmbeddings())
    with pytest.raises(IndexMismatch, match="chunk_tokens=40"):
        load_faiss(settings.index_dir, settings.replace(chunk_tokens=64))
    (settings.index_dir / "chunks.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexCorrupt, match="unreadable"):
        load_faiss(settings.index_dir, settings)


def test_vectors_and_records_must_agree(settings: Settings) -> None:
    build_faiss(settings, embedder=HashEmbeddings())
    extra = faiss.read_index(str(settings.index_dir / "chunks.faiss"))
    extra.add(np.zeros((1, extra.d), dtype="float32"))
    faiss.write_index(extra, str(settings.index_dir / "chunks.faiss"))
    with pytest.raises(IndexCorrupt, match="vectors for"):
        load_faiss(settings.index_dir, settings)


def test_a_folder_of_other_files_is_never_overwritten(settings: Settings) -> None:
    settings.index_dir.mkdir()
    (settings.index_dir / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(QAError, match="not an index"):
        build_faiss(settings, embedder=HashEmbeddings())
    assert (settings.index_dir / "notes.txt").read_text() == "mine"


def test_large_indexes_switch_to_hnsw(settings: Settings) -> None:
    index = build_faiss(settings.replace(approx_index_above=2), embedder=HashEmbeddings())
    assert index.manifest["vector_index"] == "hnsw"
    assert isinstance(index.chunk_vectors, faiss.IndexHNSWFlat)


def _load_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _save_records(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def test_duplicate_sources_are_refused_and_the_good_index_is_kept(settings: Settings) -> None:
    build_faiss(settings, embedder=HashEmbeddings())
    before = {name: (settings.index_dir / name).read_bytes() for name in FILES}
    documents = load_corpus(settings.corpus_dir)
    twin = make_document(documents[0].source, "A different article that claims the same name.")
    with pytest.raises(QAError, match="more than one document"):
        build_faiss(settings, documents=[*documents, twin], embedder=HashEmbeddings())
    assert {name: (settings.index_dir / name).read_bytes() for name in FILES} == before
    load_faiss(settings.index_dir, settings)


def test_a_new_index_is_checked_before_it_replaces_the_old_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_faiss(settings, embedder=HashEmbeddings())
    before = (settings.index_dir / "chunks.jsonl").read_bytes()
    (settings.corpus_dir / "lake.txt").write_text("Changed text about a lake. It is deep.", encoding="utf-8")

    def broken(document: Document, sentences: list[Sentence], **options: Any) -> list[Chunk]:
        chunks = chunk_document(document, sentences, **options)
        return [dataclasses.replace(c, sentence_ids=(*c.sentence_ids, 10_000)) for c in chunks]

    monkeypatch.setattr("qa.store.build.chunk_document", broken)
    with pytest.raises(IndexCorrupt, match="previous index .* is kept"):
        build_faiss(settings, embedder=HashEmbeddings())
    assert (settings.index_dir / "chunks.jsonl").read_bytes() == before
    assert not [p for p in settings.index_dir.parent.iterdir() if p.name.startswith(".index.")]


def test_edited_sentence_offsets_are_detected(settings: Settings) -> None:
    """Offsets shifted by 7 (counts and bounds still fine) used to load, and answers cited the shifted text."""
    index = build_faiss(settings, embedder=HashEmbeddings())
    path = settings.index_dir / "sentences.jsonl"
    records = _load_records(path)
    for record in records:
        if record["end"] + 7 <= len(index.documents[record["source"]].text):
            record["start"] += 7
            record["end"] += 7
    _save_records(path, records)
    with pytest.raises(IndexCorrupt, match="no longer matches"):
        load_faiss(settings.index_dir, settings)


def test_shifted_offsets_with_valid_counts_are_detected(settings: Settings) -> None:
    build_faiss(settings, embedder=HashEmbeddings())
    path = settings.index_dir / "sentences.jsonl"
    records = _load_records(path)
    records[1]["start"] += 3  # same count, still in bounds: only the text it points at changed
    _save_records(path, records)
    with pytest.raises(IndexCorrupt, match=r"sentence 1 .* no longer matches"):
        load_faiss(settings.index_dir, settings)


@pytest.mark.parametrize("manifest", ["[]", '"text"', "null", "{}"])
def test_a_manifest_that_is_not_an_object_is_corrupt(settings: Settings, manifest: str) -> None:
    build_faiss(settings, embedder=HashEmbeddings())
    (settings.index_dir / "manifest.json").write_text(manifest, encoding="utf-8")
    with pytest.raises((IndexCorrupt, IndexMismatch)) as raised:
        load_faiss(settings.index_dir, settings)
    assert "\n" not in str(raised.value) and "qa index" in str(raised.value)


def test_vectors_of_the_wrong_dimension_are_corrupt(settings: Settings) -> None:
    index = build_faiss(settings, embedder=HashEmbeddings())
    for name, count in (("chunks.faiss", len(index.chunks)), ("sentences.faiss", len(index.sentences))):
        wrong = faiss.IndexFlatIP(32)
        wrong.add(np.ones((count, 32), dtype="float32"))
        faiss.write_index(wrong, str(settings.index_dir / name))
    with pytest.raises(IndexCorrupt, match="dimension"):
        load_faiss(settings.index_dir, settings)


def test_chunk_sentence_ids_must_point_at_its_own_sentences(settings: Settings) -> None:
    build_faiss(settings, embedder=HashEmbeddings())
    path = settings.index_dir / "chunks.jsonl"
    records = _load_records(path)
    records[0]["sentence_ids"].append(99_999)
    _save_records(path, records)
    with pytest.raises(IndexCorrupt, match="sentence_ids"):
        load_faiss(settings.index_dir, settings)


def test_an_older_format_is_a_mismatch_to_rebuild(settings: Settings) -> None:
    build_faiss(settings, embedder=HashEmbeddings())
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    manifest["format_version"] = 1
    (settings.index_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="format"):
        load_faiss(settings.index_dir)


def test_an_index_folder_inside_the_corpus_is_not_read_as_articles(settings: Settings) -> None:
    inside = settings.replace(index_dir=settings.corpus_dir / "idx")
    counts = [build_faiss(inside, embedder=HashEmbeddings()).manifest["counts"]["documents"] for _ in range(4)]
    assert counts == [3, 3, 3, 3]


def test_progress_covers_reading_sentence_splitting_then_embedding(settings: Settings) -> None:
    """A huge article used to split sentences for minutes with no progress shown."""
    long_line = "The harbor reopened on Monday after repairs, said the mayor of Port Ellis. " * 400  # one 30 KB line
    (settings.corpus_dir / "harbor.txt").write_text(long_line, encoding="utf-8")
    calls: list[tuple[int, int]] = []
    index = build_faiss(settings, embedder=HashEmbeddings(), progress=lambda done, total: calls.append((done, total)))
    starts = [n for n, (done, _) in enumerate(calls) if done == 0]
    assert len(starts) == 3
    reading, splitting, embedding = calls[: starts[1]], calls[starts[1] : starts[2]], calls[starts[2] :]
    size = (settings.corpus_dir / "harbor.txt").stat().st_size
    assert reading[0][1] >= size and reading[-1][0] == reading[-1][1]
    characters = sum(len(d.text) for d in index.documents.values())
    assert splitting[0] == (0, characters) and splitting[-1] == (characters, characters)
    assert len(splitting) > 10  # the long line reports as its windows are split, not once at the end
    assert [done for done, _ in splitting] == sorted(done for done, _ in splitting)
    assert embedding[-1][0] == embedding[-1][1] > 0  # distinct texts embedded


def _rewrite_vectors(path: Path, change: Any) -> None:
    index = faiss.read_index(str(path))
    vectors = index.reconstruct_n(0, index.ntotal)
    change(vectors)
    fresh = faiss.IndexFlatIP(index.d)
    fresh.add(vectors)
    faiss.write_index(fresh, str(path))


def _zero(vectors: np.ndarray) -> None:
    vectors[:] = 0.0


def _absurd(vectors: np.ndarray) -> None:
    vectors[1] = 1e30


def _zero_bytes(path: Path) -> None:
    """The vectors are the file's last bytes: zero them in place, as a bad disk or a careless edit would."""
    index = faiss.read_index(str(path))
    size = index.ntotal * index.d * 4
    data = bytearray(path.read_bytes())
    data[-size:] = bytes(size)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["zeroed", "absurd", "zeroed bytes"])
def test_changed_vectors_are_detected_and_qa_index_repairs_them(settings: Settings, damage: str) -> None:
    """Zeroed vectors made every question abstain and 1e30 gave a wrong answer, silently; `qa index` kept them."""
    built = build_faiss(settings, embedder=HashEmbeddings())
    good = built.sentence_vectors.reconstruct_n(0, built.sentence_vectors.ntotal)
    path = settings.index_dir / "sentences.faiss"
    if damage == "zeroed bytes":
        _zero_bytes(path)
    else:
        _rewrite_vectors(path, _zero if damage == "zeroed" else _absurd)
    with pytest.raises(IndexCorrupt, match=r"sentences\.faiss .*digest.*qa index") as raised:
        load_faiss(settings.index_dir, settings)
    assert "\n" not in str(raised.value)
    repaired = build_faiss(settings, embedder=HashEmbeddings())
    assert np.array_equal(repaired.sentence_vectors.reconstruct_n(0, repaired.sentence_vectors.ntotal), good)
    load_faiss(settings.index_dir, settings)


def test_a_damaged_index_is_rebuilt_when_an_assistant_loads_it(settings: Settings) -> None:
    from qa import Assistant

    build_faiss(settings, embedder=HashEmbeddings())
    _rewrite_vectors(settings.index_dir / "chunks.faiss", _zero)
    assistant = Assistant.load(settings.replace(engine="extractive"), embedder=HashEmbeddings())
    assert assistant.retrieve("Mount Kelud volcano", k=1)
    assert np.linalg.norm(load_faiss(settings.index_dir, settings).chunk_vectors.reconstruct(0)) > 0.99


def test_the_index_folder_keeps_its_mode_across_rebuilds(settings: Settings) -> None:
    build_faiss(settings, embedder=HashEmbeddings())
    assert settings.index_dir.stat().st_mode & 0o777 == 0o777 & ~_umask()  # like any new folder, not 0700
    settings.index_dir.chmod(0o750)
    (settings.corpus_dir / "lake.txt").write_text("Changed text about a lake.", encoding="utf-8")
    build_faiss(settings, embedder=HashEmbeddings())
    assert settings.index_dir.stat().st_mode & 0o777 == 0o750


def _umask() -> int:
    probe = Path(tempfile.mkdtemp()) / "probe"
    probe.mkdir()
    mode = probe.stat().st_mode & 0o777
    shutil.rmtree(probe.parent)
    return 0o777 & ~mode


def test_stale_staging_folders_are_removed_by_the_next_build(settings: Settings) -> None:
    """A `kill -9` during a build left `.index.building-*` behind forever; a live build's folder is left alone."""
    parent = settings.index_dir.parent
    dead = parent / ".index.building-999999999-abcd1234"  # no such process
    live = parent / f".index.building-{os.getpid()}-efgh5678"  # this process: a build still running
    legacy = parent / ".index.building-ijkl9012"  # named before builds recorded their process: stale after an hour
    retired = parent / ".index.old-999999999"
    for folder in (dead, live, legacy, retired):
        folder.mkdir()
        (folder / "chunks.faiss").write_bytes(b"partial")
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    build_faiss(settings, embedder=HashEmbeddings())
    assert not dead.exists() and not legacy.exists() and not retired.exists()
    assert live.exists()


@pytest.mark.parametrize(
    ("where", "error", "fix"),
    [
        ("tempfile.mkdtemp", OSError(errno.EROFS, "Read-only file system"), "writable"),
        ("tempfile.mkdtemp", PermissionError(errno.EACCES, "Permission denied"), "writable"),
        (
            "faiss.write_index",
            RuntimeError("Error in faiss::FileIOWriter\nwrite error: No space left on device"),
            "space",
        ),
        ("json.dumps", OSError(errno.ENOSPC, "No space left on device"), "space"),
    ],
)
def test_an_unwritable_index_folder_is_one_line_naming_it_and_the_fix(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, where: str, error: Exception, fix: str
) -> None:
    from click.testing import CliRunner

    from qa.cli import cli

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(where, fail)  # the module itself: every caller sees it
    monkeypatch.setattr("qa.store.build.SentenceEmbedder", lambda name: HashEmbeddings())
    result = CliRunner().invoke(
        cli, ["index", "--corpus", str(settings.corpus_dir), "--index-dir", str(settings.index_dir)]
    )
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]  # not the progress labels
    assert len(lines) == 1 and "Traceback" not in result.output and result.output.endswith(lines[0] + "\n")
    assert str(settings.index_dir) in lines[0] and fix in lines[0] and "--index-dir" in lines[0]
    assert not [p for p in settings.index_dir.parent.iterdir() if p.name.startswith(".index.")]
