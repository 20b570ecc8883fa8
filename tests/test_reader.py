"""qa.reader: the shipped cross-encoder loads offline, refuses changed weights, and ranks answers over distractors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.errors import ModelError
from qa.reader import DEFAULT_READER, MANIFEST, Reader, read_manifest


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader.load()


def test_manifest_names_the_weights_and_their_hash() -> None:
    manifest = read_manifest(DEFAULT_READER)
    weights = DEFAULT_READER / manifest["weights"]
    assert weights.suffix == ".safetensors" and weights.stat().st_size < 50_000_000
    assert len(manifest["sha256"]) == 64
    assert (DEFAULT_READER / "README.md").is_file()


def test_missing_reader_is_a_model_error_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="make train-reader"):
        Reader.load(tmp_path)


def test_changed_weights_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "reader"
    shutil.copytree(DEFAULT_READER, copy)
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
@pytest.mark.parametrize(
    ("question", "gold", "distractor"),
    [
        (
            "How many people died when the ferry sank?",
            "The ferry sank off the coast on Sunday, killing 41 passengers and two crew members.",
            "The ferry, built in 1988, had been inspected by the maritime authority last spring.",
        ),
        (
            "Where did the two foreign ministers hold their talks?",
            "The foreign ministers of both countries met in Geneva on Tuesday for three hours of talks.",
            "Both foreign ministers said the talks had been useful and that more meetings would follow.",
        ),
        (
            "What did the mayor say about the new tram line?",
            "\u201cThe tram line will cut commuting times in half,\u201d the mayor told reporters.",
            "The tram line was first proposed by the city council in 2009.",
        ),
    ],
)
def test_reader_ranks_the_answer_over_a_distractor(reader: Reader, question: str, gold: str, distractor: str) -> None:
    scores = reader.score(question, [distractor, gold])
    assert scores.dtype == np.float32 and ((scores >= 0) & (scores <= 1)).all()
    assert scores[1] > scores[0]
