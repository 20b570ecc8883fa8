"""Configurations, the harness over the real seeds index, the LangChain baseline and the abstention curve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qa import Answer, Assistant, Passage, QAError
from qa.evaluation.baseline import LangChainBaseline
from qa.evaluation.questions import load_questions
from qa.evaluation.runs import CONFIGURATIONS, Harness, answer_one, expand

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def questions():
    return load_questions(ROOT / "eval" / "questions.jsonl", ROOT / "seeds")


def test_expand_resolves_groups_in_order_without_repeats() -> None:
    names = [c.name for c in expand(["extractive", "hybrid-vs-dense", "baseline", "extractive"])]
    assert names == ["extractive", "dense", "lexical", "baseline"]
    with pytest.raises(QAError, match="Unknown configuration.*nope.*choose from"):
        expand(["nope"])


def test_configurations_that_keep_the_index_share_it(assistant) -> None:
    harness = Harness(assistant)
    assert harness.answerer(CONFIGURATIONS["extractive"]) is assistant
    dense = harness.answerer(CONFIGURATIONS["dense"])
    assert dense.settings.retrieval == "dense" and dense.index is assistant.index
    assert harness.answerer(CONFIGURATIONS["k3"]).settings.k == 3


def test_retrieval_modes_rank_differently(assistant) -> None:
    harness = Harness(assistant)
    question = "Which outlet interviewed Latif Pedram?"
    rankings = {
        name: [(p.source, p.start) for p in harness.answerer(CONFIGURATIONS[name]).retrieve(question, k=10)]
        for name in ("extractive", "dense", "lexical")
    }
    assert rankings["dense"] != rankings["lexical"]
    assert set(rankings["extractive"]) <= set(rankings["dense"]) | set(rankings["lexical"])


def test_baseline_cites_whole_chunks_exactly_and_never_abstains(assistant, embedder) -> None:
    baseline = LangChainBaseline(assistant.documents, embedder)
    answer = baseline.ask("Which outlet interviewed Latif Pedram?")
    assert not answer.abstained and len(answer.citations) == 4
    for citation in answer.citations:
        assert assistant.documents[citation.source].text[citation.start : citation.end] == citation.quote
        assert len(citation.quote) <= 1000
    assert any("Global Times" in c.quote for c in answer.citations)
    assert [p.start for p in baseline.retrieve("Which outlet interviewed Latif Pedram?", k=10)][:4] == [
        c.start for c in answer.citations
    ]


class FailingAnswerer:
    """Implements the answerer protocol and fails the way an unreachable LLM does."""

    documents: dict = {}

    def retrieve(self, question: str, *, k: int | None = None) -> list[Passage]:
        return []

    def stream(self, question: str, *, engine: str | None = None) -> Iterator[str | Answer]:
        yield "partial"
        raise QAError("the model timed out")


def test_an_error_is_recorded_as_a_failed_question(questions) -> None:
    record = answer_one(FailingAnswerer(), questions[0], "llm", engine="llm")
    assert record.error == "the model timed out"
    assert record.abstained and not record.success and record.citations == 0


def test_abstention_grows_with_the_threshold(assistant, questions) -> None:
    dev = [q for q in questions if q.split == "dev"][:20]
    curve = Harness(assistant).abstention_curve(dev, ["dev"])["dev"]
    thresholds = [p["threshold"] for p in curve]
    assert assistant.decision.threshold in thresholds and thresholds == sorted(thresholds)
    refusals = [p["false_refusal"] for p in curve]
    abstentions = [p["abstention_unanswerable"] for p in curve]
    assert refusals == sorted(refusals) and abstentions == sorted(abstentions)
    assert refusals[-1] > refusals[0]


def test_an_unavailable_engine_is_skipped_with_its_reason(assistant, embedder, questions, tmp_path) -> None:
    missing = assistant.settings.replace(llm_model=str(tmp_path / "absent.gguf"))
    harness = Harness(Assistant(missing, assistant.index, embedder))
    run = harness.evaluate([CONFIGURATIONS["llm"]], questions[:3], splits=["dev", "test"], curve=False)
    assert list(run.skipped) == ["llm"] and "absent.gguf" in run.skipped["llm"]
    assert run.records == [] and run.summaries == {}


@pytest.mark.slow
def test_another_chunk_size_gets_its_own_index(assistant) -> None:
    before = (assistant.settings.index_dir / "manifest.json").read_text(encoding="utf-8")
    small = Harness(assistant).answerer(CONFIGURATIONS["chunks-80"])
    assert small.settings.index_dir == assistant.settings.index_dir.with_name("index-chunks-80")
    assert small.index.manifest["chunk_tokens"] == 80
    assert len(small.index.chunks) > len(assistant.index.chunks)
    assert (assistant.settings.index_dir / "manifest.json").read_text(encoding="utf-8") == before
