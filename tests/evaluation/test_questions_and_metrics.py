"""The question set's validator, the metrics on hand-worked cases, and the gate on the test split."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from qa import Answer, Citation, Document, Passage
from qa.errors import EvalSetError
from qa.evaluation.metrics import (
    Record,
    answer_origin,
    contains_keywords,
    is_precise,
    is_valid_citation,
    recall_at,
    refusal_scores,
    retrieved_rank,
    score,
    summarize,
)
from qa.evaluation.questions import (
    QUESTION_TYPES,
    Gold,
    Question,
    check_gate,
    copied_runs,
    load_questions,
    load_thresholds,
    validate_questions,
)
from qa.evaluation.runs import CONFIGURATIONS, Harness
from qa.types import SentenceCheck

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = ROOT / "eval" / "questions.jsonl"
THRESHOLDS = ROOT / "eval" / "thresholds.json"
SEEDS = ROOT / "seeds"

# A 3-sentence article, offsets worked out by hand:
#   [0:27) "The dam cost 40 million.  " ... see TEXT below
TEXT = "The dam cost 40 million. It opened in 2019. Critics called it a white elephant."
DOCS = {"a.txt": Document("a.txt", TEXT, "Dam", "x")}
COST = Gold("a.txt", 0, 24, "The dam cost 40 million.")  # TEXT[0:24]
OPENED = Gold("a.txt", 25, 43, "It opened in 2019.")  # TEXT[25:43]


def question(
    kind: str = "multi",
    keywords: tuple[str, ...] = ("40 million", "2019"),
    evidence: tuple[Gold, ...] = (COST, OPENED),
    split: str = "test",
) -> Question:
    return Question(
        "q1", "What did the dam cost and when did it open?", kind, "40 million; 2019", keywords, evidence, split
    )


def cite(marker: int, start: int, end: int, source: str = "a.txt") -> Citation:
    return Citation(marker, source, start, end, TEXT[start:end])


def passage(start: int, end: int, source: str = "a.txt") -> Passage:
    return Passage(source, start, end, TEXT[start:end], 0.0)


def answer(text: str, citations: tuple[Citation, ...] = (), abstained: bool = False) -> Answer:
    return Answer("q", text, abstained, citations, ())


def write_set(tmp_path: Path, lines: list[dict[str, object] | str]) -> Path:
    (tmp_path / "corpus").mkdir(exist_ok=True)
    (tmp_path / "corpus" / "a.txt").write_text(TEXT, encoding="utf-8")
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines), encoding="utf-8")
    return path


def good(id: str = "q1", split: str = "dev", **changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": id,
        "question": "What did the dam cost?",
        "type": "numeric",
        "answer": "40 million.",
        "keywords": ["40 million"],
        "evidence": [{"source": "a.txt", "quote": "The dam cost 40 million."}],
        "split": split,
    }
    return record | changes


def test_the_question_set_is_valid() -> None:
    assert validate_questions(QUESTIONS, SEEDS) == []
    questions = load_questions(QUESTIONS, SEEDS)
    assert len(questions) >= 80
    assert {q.type for q in questions} == set(QUESTION_TYPES)
    assert sum(q.type == "unanswerable" for q in questions) >= 0.15 * len(questions)
    test_share = sum(q.split == "test" for q in questions) / len(questions)
    assert 0.25 <= test_share <= 0.4
    for q in questions:  # every located span is the quote
        for gold in q.evidence:
            assert (SEEDS / gold.source).read_text(encoding="utf-8")[gold.start : gold.end] == gold.quote


def test_a_valid_small_set_loads_with_located_spans(tmp_path: Path) -> None:
    path = write_set(tmp_path, [good("q1"), good("q2", split="test")])
    questions = load_questions(path, tmp_path / "corpus")
    assert [q.evidence for q in questions] == [(COST,), (COST,)]
    assert [q.split for q in questions] == ["dev", "test"]


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (
            [good("q1", evidence=[{"source": "a.txt", "quote": "The dam cost 41 million."}]), good("q2", "test")],
            "is not in a.txt",
        ),
        ([good("q1", evidence=[{"source": "b.txt", "quote": "x"}]), good("q2", "test")], "not a readable file"),
        ([good("q1", type="trivia"), good("q2", "test")], "type 'trivia' is not one of"),
        ([good("q1"), good("q1", "test")], "id 'q1' is used more than once"),
        ([good("q1"), good("q2")], "split 'test' has no question"),
        ([good("q1", split="train"), good("q2", "test")], "split 'train' is not one of"),
        ([good("q1"), "{not json", good("q2", "test")], "line 2: not JSON"),
        ([good("q1", type="unanswerable"), good("q2", "test")], "an unanswerable question has no evidence"),
        ([good("q1", keywords=[]), good("q2", "test")], "needs an answer, evidence and keywords"),
        ([good("q1", keywords="40"), good("q2", "test")], "`keywords` must be a list"),
        ([good("q1", question=""), good("q2", "test")], "`question` must be non-empty text"),
        ([], "holds no question"),
    ],
)
def test_the_validator_names_each_problem(tmp_path: Path, lines: list[dict[str, object] | str], problem: str) -> None:
    path = write_set(tmp_path, lines)
    problems = validate_questions(path, tmp_path / "corpus")
    assert any(problem in p for p in problems), problems
    with pytest.raises(EvalSetError, match="problem"):
        load_questions(path, tmp_path / "corpus")


def test_retrieval_needs_half_of_the_gold_span() -> None:
    assert retrieved_rank(COST, [passage(25, 43), passage(10, 43)]) == 2  # covers 14 of 24 characters
    assert retrieved_rank(COST, [passage(13, 43)]) is None  # covers 11 of 24
    assert retrieved_rank(COST, [passage(0, 24, source="b.txt")]) is None  # same span, other article
    assert recall_at([1, 4, None], 1) == pytest.approx(1 / 3)
    assert recall_at([1, 4, None], 5) == pytest.approx(2 / 3)


def test_citation_precision_is_overlap_or_keyword() -> None:
    q = question(keywords=("white elephant",), evidence=(COST,))
    assert is_precise(cite(1, 20, 30), q)  # overlaps the cost sentence by 4 characters
    assert is_precise(cite(1, 44, 79), q)  # no gold overlap, but holds a keyword
    assert not is_precise(cite(1, 25, 43), q)
    assert not is_precise(cite(1, 25, 43), question("unanswerable", (), ()))


def test_citation_validity_compares_the_exact_characters() -> None:
    assert is_valid_citation(cite(1, 0, 24), DOCS)
    assert not is_valid_citation(Citation(1, "a.txt", 0, 24, "The dam cost 41 million."), DOCS)
    assert not is_valid_citation(Citation(1, "b.txt", 0, 24, TEXT[0:24]), DOCS)


def test_keywords_match_ignoring_case_spacing_and_quote_style() -> None:
    assert contains_keywords("The dam’s cost:  40\nMillion", ["dam's", "40 million"])
    assert not contains_keywords("The dam cost 40 million", ["40 million", "2019"])


def test_score_of_a_hand_worked_answer() -> None:
    q = question()
    text = "The dam cost 40 million. [1] Critics called it a white elephant. [2]"
    record = score(
        q,
        answer(text, (cite(1, 0, 24), cite(2, 44, 79))),
        [passage(44, 79), passage(0, 43)],
        DOCS,
        configuration="x",
        latency_ms=12.0,
        ttft_ms=5.0,
    )
    assert record.retrieved_ranks == (2, 2)
    assert record.reciprocal_rank == 0.5
    assert (record.citations, record.valid_citations, record.precise_citations) == (2, 2, 1)
    assert record.cited_share == 0.5  # the cost sentence is cited, the opening one is not
    assert record.citation_chars == 24 + 35
    assert not record.success and record.missing_keywords == ("2019",)


def test_summary_of_hand_worked_records() -> None:
    q = question(keywords=("40 million",), evidence=(COST,))
    right = score(
        q,
        answer("It cost 40 million [1]", (cite(1, 0, 24),)),
        [passage(0, 24)],
        DOCS,
        configuration="x",
        latency_ms=10.0,
        ttft_ms=None,
    )
    refused = score(
        q, answer("no", abstained=True), [passage(25, 43)], DOCS, configuration="x", latency_ms=20.0, ttft_ms=None
    )
    unanswerable = question("unanswerable", (), ())
    abstained = score(
        unanswerable, answer("no", abstained=True), [], DOCS, configuration="x", latency_ms=30.0, ttft_ms=None
    )
    guessed = score(
        unanswerable, answer("x [1]", (cite(1, 25, 43),)), [], DOCS, configuration="x", latency_ms=40.0, ttft_ms=None
    )
    summary = summarize([right, refused, abstained, guessed])
    assert summary["accuracy"] == 0.5 and summary["false_refusal"] == 0.5
    assert summary["abstention_unanswerable"] == 0.5
    assert summary["recall@1"] == 0.5 and summary["mrr"] == 0.5
    assert summary["citation_validity"] == 1.0
    assert summary["citation_precision"] == 0.5  # per answer: 1/1 and 0/1
    assert summary["citation_recall"] == 0.5
    assert summary["latency_p50_ms"] == 25.0 and summary["latency_p95_ms"] == 38.5
    assert summary["ttft_p50_ms"] is None
    assert summary["by_type"]["multi"] == 0.5 and summary["by_type"]["single"] is None


def test_gate_checks_minimums_and_maximums() -> None:
    thresholds = {"min": {"accuracy": 0.5, "recall@5": 0.8}, "max": {"false_refusal": 0.2}}
    assert check_gate({"accuracy": 0.5, "recall@5": 0.9, "false_refusal": 0.2}, thresholds) == []
    failures = check_gate({"accuracy": 0.4, "recall@5": None, "false_refusal": 0.3}, thresholds)
    assert failures == [
        "accuracy = 0.4 is below 0.5",
        "recall@5 = None is below 0.8",
        "false_refusal = 0.3 is above 0.2",
    ]


def test_extractive_engine_passes_the_gate_on_the_test_split(assistant) -> None:
    """The CI gate (`make test`): every threshold in eval/thresholds.json holds."""
    thresholds = load_thresholds(THRESHOLDS)
    assert thresholds["min"]["citation_validity"] == 1.0
    questions = load_questions(QUESTIONS, SEEDS)
    run = Harness(assistant).evaluate(
        [CONFIGURATIONS[thresholds["configuration"]]], questions, splits=[thresholds["split"]], curve=False
    )
    summary = run.summaries[thresholds["configuration"]][thresholds["split"]]
    assert summary["questions"] == sum(q.split == thresholds["split"] for q in questions)
    assert summary["errors"] == 0
    assert check_gate(summary, thresholds) == []


def test_a_paraphrased_question_may_not_copy_five_words_but_may_use_a_name(tmp_path: Path) -> None:
    copied = good("q1", question="Which sum did the dam cost 40 million in?", set="paraphrase")
    named = good("q2", split="test", question="Did U.S. News and World Report cover it?", set="paraphrase")
    path = write_set(tmp_path, [copied, named])
    (tmp_path / "corpus" / "b.txt").write_text("U.S. News and World Report said so.", encoding="utf-8")
    assert validate_questions(path, tmp_path / "corpus") == [
        "q1: copies the article's wording 'the dam cost 40 million' (a paraphrased question must not)"
    ]
    assert not any("q2" in p for p in validate_questions(path, tmp_path / "corpus"))
    assert copied_runs("the Dam Cost 40 million.", [TEXT]) == ["the Dam Cost 40 million"]


def test_a_held_out_set_needs_no_dev_split(tmp_path: Path) -> None:
    path = write_set(tmp_path, [good("s1", split="second"), good("s2", split="second")])
    assert validate_questions(path, tmp_path / "corpus") == []
    mixed = write_set(tmp_path, [good("q1", split="dev"), good("s1", split="second")])
    assert validate_questions(mixed, tmp_path / "corpus") == ["split 'test' has no question"]


def scored(kind: str, abstained: bool) -> Record:
    asked = question(
        kind=kind,
        keywords=() if kind == "unanswerable" else ("40 million",),
        evidence=() if kind == "unanswerable" else (COST,),
    )
    text = "" if abstained else "The dam cost 40 million. [1]"
    citations = () if abstained else (cite(1, 0, 24),)
    return score(asked, answer(text, citations, abstained), [], DOCS, configuration="c", latency_ms=1.0, ttft_ms=None)


def test_refusal_scores_by_hand() -> None:
    # 2 unanswerable (1 refused), 3 answerable (1 refused): refusals 1 right of 2, answers 2 right of 3
    records = [
        scored("unanswerable", True),
        scored("unanswerable", False),
        scored("single", True),
        scored("single", False),
        scored("false_premise", False),
    ]
    found = refusal_scores(records)
    assert found["refusal_precision"] == 0.5 and found["refusal_recall"] == 0.5 and found["refusal_f1"] == 0.5
    # answering: precision 2/3, recall 2/3 -> F1 2/3; F1_RG = (0.5 + 0.6667) / 2
    assert found["answer_f1"] == pytest.approx(0.6667, abs=1e-4)
    assert found["refusal_f1_rg"] == pytest.approx(0.5833, abs=1e-4)
    assert refusal_scores([scored("single", False), scored("unanswerable", False)])["refusal_f1"] == 0.0


def test_the_origin_of_an_llm_answer() -> None:
    kept, dropped = SentenceCheck("a", True, "supported"), SentenceCheck("b", False, "number 9 not in evidence")
    base = answer("The dam cost 40 million. [1]", (cite(1, 0, 24),))
    assert answer_origin(base) is None  # extractive
    assert answer_origin(dataclasses.replace(base, engine="llm", checks=(kept,))) == "own"
    assert answer_origin(dataclasses.replace(base, engine="llm", checks=(kept, dropped))) == "corrected"
    assert answer_origin(dataclasses.replace(base, engine="llm→extractive")) == "fallback"
    assert answer_origin(dataclasses.replace(base, engine="llm", abstained=True)) == "abstained"
