"""Engine behaviour that needs no model: footnote-like brackets in articles, an LLM that fails under "auto"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qa import Answer, Assistant, InvalidQuestion, Settings
from qa.cite import is_valid_citation, markers
from qa.engines.base import Request
from qa.errors import LLMError
from qa.store import build_faiss
from tests.fakes import HashEmbeddings

FOOTNOTED = "Reef survey\n\nThe reef lost a third of its coral in 2020 [2] according to divers.\n"


@pytest.fixture()
def reef(tmp_path: Path) -> Assistant:
    (tmp_path / "reef.txt").write_text(FOOTNOTED, encoding="utf-8")
    settings = Settings(
        corpus_dir=tmp_path,
        index_dir=tmp_path / "index",
        embed_model="hash",
        engine="auto",
        abstain_threshold=0.0,
    )
    embedder = HashEmbeddings()
    return Assistant(settings, build_faiss(settings, embedder=embedder), embedder, {"llm": FailingLLM()})


class FailingLLM:
    """An LLM engine whose server is down: it raises as the real one does."""

    name = "llm"

    def answer(self, request: Request) -> Answer:
        raise LLMError("server at http://127.0.0.1:9 did not answer")

    def stream(self, request: Request) -> Iterator[str | Answer]:
        raise LLMError("server at http://127.0.0.1:9 did not answer")
        yield ""  # pragma: no cover - makes this a generator


def test_brackets_inside_a_quote_are_not_read_as_citations(reef: Assistant) -> None:
    answer = reef.ask("How much coral did the reef lose in 2020?", engine="extractive")
    assert [c.marker for c in answer.citations] == [1]
    assert markers(answer.text) == [1]  # the article's own "[2]" is shown as "［2］"
    assert "in 2020 ［2］ according" in answer.text
    assert all(is_valid_citation(c, reef.documents) for c in answer.citations)
    assert "[2]" in answer.citations[0].quote  # the citation keeps the exact text


def test_a_failing_llm_under_auto_falls_back_to_extractive(reef: Assistant) -> None:
    answer = reef.ask("How much coral did the reef lose in 2020?")
    assert answer.engine == "extractive" and answer.citations
    with pytest.raises(LLMError, match="did not answer"):
        reef.ask("How much coral did the reef lose in 2020?", engine="llm")


@pytest.mark.parametrize(
    ("options", "message"),
    [({"k": 0}, "k=0"), ({"k": 101}, "k=101"), ({"history": ["not a message"]}, "history must be")],
)
def test_bad_options_are_refused_clearly(reef: Assistant, options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidQuestion, match=message):
        reef.ask("How much coral did the reef lose?", **options)  # type: ignore[arg-type]
