"""qa.reader: the shipped cross-encoder loads offline, refuses changed weights, and ranks answers over distractors."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa import Assistant, Settings
from qa.decision import RERANK_FEATURES, LinearModel, load_ranker
from qa.errors import ModelError
from qa.reader import MANIFEST, Reader, read_manifest
from tests.fakes import HashEmbeddings


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real reader, trained here the way `make train-reader` trains one (one layer, 64 committed pairs: the code
    path, not the quality; no reader ships, and its measured quality is in qa/training/data/measured.json)."""
    from qa.training.pairs import read_pairs
    from qa.training.train import train

    out = tmp_path_factory.mktemp("reader")
    pairs = [p for p in read_pairs() if p.split == "train"][:64]
    train(epochs=1.0, layers=1, out=out, pairs=pairs)
    return out


@pytest.fixture(scope="module")
def reader(trained: Path) -> Reader:
    return Reader.load(trained)


@pytest.mark.slow
def test_manifest_names_the_weights_and_their_hash(trained: Path) -> None:
    manifest = read_manifest(trained)
    weights = trained / manifest["weights"]
    assert weights.suffix == ".safetensors" and weights.stat().st_size < 50_000_000
    assert manifest["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert manifest["layers"] == 1 and 0 < manifest["pairs"] <= 64 and manifest["steps_done"] == manifest["steps"]
    assert all(f.stat().st_mode & 0o044 == 0o044 for f in trained.iterdir())  # readable by another user


def test_missing_reader_is_a_model_error_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="make train-reader"):
        Reader.load(tmp_path)


@pytest.mark.slow
def test_changed_weights_are_refused(trained: Path, tmp_path: Path) -> None:
    copy = tmp_path / "reader"
    shutil.copytree(trained, copy)
    weights = copy / read_manifest(copy)["weights"]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="do not match their manifest"):
        Reader.load(copy)


def test_a_foreign_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text(json.dumps({"format": "something else"}), encoding="utf-8")
    with pytest.raises(ModelError, match="not a 'qa-reader v1' manifest"):
        Reader.load(tmp_path)


@pytest.mark.slow
def test_no_sentences_score_nothing(reader: Reader) -> None:
    assert reader.score("Who won?", []).shape == (0,)


@pytest.mark.slow
def test_scores_are_probabilities_per_sentence_in_order(reader: Reader) -> None:
    question = "How many people died when the ferry sank?"
    gold = "The ferry sank off the coast on Sunday, killing 41 passengers and two crew members."
    other = "The ferry, built in 1988, had been inspected by the maritime authority last spring."
    scores = reader.score(question, [other, gold])
    assert scores.dtype == np.float32 and scores.shape == (2,) and ((scores >= 0) & (scores <= 1)).all()
    assert np.allclose(reader.score(question, [gold, other]), scores[::-1], atol=1e-4)  # padding changes nothing
    assert np.allclose(reader.score(question, [gold]), scores[1:], atol=1e-4)


@pytest.mark.slow
def test_an_assistant_whose_ranker_reads_answers_with_the_reader(
    trained: Path, tmp_path: Path, tiny_settings: Settings
) -> None:
    """End to end: a ranker that re-ranks with the reader loads the real trained weights, reads the shortlist and
    still cites exact characters."""
    ranker = load_ranker(None)
    reads = dataclasses.replace(
        ranker, rerank=LinearModel(RERANK_FEATURES, np.zeros(2), np.ones(2), np.array([0.5, 1.0]), 0.0)
    )
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps(reads.to_json()), encoding="utf-8")
    assistant = Assistant.load(tiny_settings.replace(ranker_path=path, reader_path=trained), embedder=HashEmbeddings())
    answer = assistant.ask("How many villagers were evacuated before dawn?")
    assert "reader_ms" in answer.timings_ms
    for citation in answer.citations:
        text = assistant.documents[citation.source].text
        assert text[citation.start : citation.end] == citation.quote
