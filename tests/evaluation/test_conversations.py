"""The multi-turn set's validator, the per-turn metrics on a scripted conversation, and `qa eval --conversations`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qa import Answer, Citation, Document
from qa.cli import cli
from qa.evaluation.conversations import (
    FOLLOW_UP_KINDS,
    Conversation,
    load_conversations,
    validate_conversations,
)
from qa.evaluation.questions import Gold, Question
from qa.evaluation.runs import CONFIGURATIONS
from qa.evaluation.turns import answer_conversation, summarize_turns, turn_failure_table, turn_table

ROOT = Path(__file__).resolve().parents[2]
CONVERSATIONS = ROOT / "eval" / "conversations.jsonl"
SEEDS = ROOT / "seeds"

TEXT = "The dam cost 40 million. It opened in 2019. Critics called it a white elephant."
DOCS = {"a.txt": Document("a.txt", TEXT, "Dam", "x")}
COST = Gold("a.txt", 0, 24, "The dam cost 40 million.")
OPENED = Gold("a.txt", 25, 43, "It opened in 2019.")
CRITICS = Gold("a.txt", 44, len(TEXT), TEXT[44:])


def turn(number: int, text: str, kind: str, keywords: tuple[str, ...], evidence: tuple[Gold, ...]) -> Question:
    return Question(f"c1.{number}", text, kind, "x" if evidence else "", keywords, evidence, "test")


def test_the_conversation_set_is_valid_and_covers_the_follow_up_kinds() -> None:
    assert validate_conversations(CONVERSATIONS, SEEDS) == []
    conversations = load_conversations(CONVERSATIONS, SEEDS)
    assert len(conversations) >= 20 and {c.split for c in conversations} == {"dev", "test"}
    assert all(2 <= len(c.turns) <= 4 and c.kinds[0] == "first" for c in conversations)
    assert {k for c in conversations for k in c.kinds[1:]} == set(FOLLOW_UP_KINDS)
    unanswerable = [c for c in conversations if any(t.type == "unanswerable" for t in c.turns[1:])]
    assert len(unanswerable) >= 3 and {c.split for c in unanswerable} == {"dev", "test"}
    for conversation in conversations:
        for question in conversation.turns:
            text = (SEEDS / question.evidence[0].source).read_text(encoding="utf-8") if question.evidence else ""
            assert all(text[g.start : g.end] == g.quote for g in question.evidence[:1])


def line(turns: list[dict[str, Any]], **fields: Any) -> str:
    return json.dumps({"id": "c1", "split": "dev", "turns": turns, **fields})


TIANJIN = [{"source": "003_e29c5a06ed7ee920.txt", "quote": "Wang Yi delivered"}]
GOOD = {"kind": "first", "question": "Who met Mullah Baradar in Tianjin?", "type": "single", "answer": "Wang Yi",
        "keywords": ["Wang Yi"], "evidence": TIANJIN}  # fmt: skip
LATER = {**GOOD, "kind": "pronoun", "question": "When did he do that?"}


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (["{not json"], "not JSON"),
        ([line([GOOD])], "has 1 turns"),
        ([line([GOOD, LATER, LATER, LATER, LATER])], "has 5 turns"),
        ([line([LATER, LATER])], "c1.1: kind 'pronoun' is not one of first"),
        ([line([GOOD, {**LATER, "kind": "first"}])], "c1.2: kind 'first' is not one of pronoun"),
        ([line([GOOD, {**LATER, "evidence": [{"source": "003_e29c5a06ed7ee920.txt", "quote": "nope"}]}])], "'nope'"),
        ([line([GOOD, LATER], split="train")], "split 'train'"),
        ([line([GOOD, LATER]), line([GOOD, LATER], split="test")], "id 'c1' is used more than once"),
        ([line([GOOD, LATER])], "split 'test' has no conversation"),
        ([line([GOOD, {**LATER, "question": "Did he make a clean break with all terrorist organizations?"}])],
         "copies the article's wording"),
    ],
)  # fmt: skip
def test_the_validator_names_each_problem(tmp_path: Path, lines: list[str], problem: str) -> None:
    path = tmp_path / "conversations.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    assert any(problem in found for found in validate_conversations(path, SEEDS)), validate_conversations(path, SEEDS)


class ScriptedAnswerer:
    """Answers each question with the quotes scripted for it (and records the history it was given)."""

    def __init__(self, script: Mapping[str, Sequence[Gold]]) -> None:
        self.script = script
        self.documents: Mapping[str, Document] = DOCS
        self.histories: list[list[Mapping[str, Any]]] = []

    def stream(
        self, question: str, *, history: Sequence[Mapping[str, Any]] | None = None, engine: str | None = None
    ) -> Iterator[str | Answer]:
        self.histories.append(list(history or []))
        quotes = self.script[question]
        citations = tuple(Citation(n, g.source, g.start, g.end, g.quote) for n, g in enumerate(quotes, start=1))
        text = " ".join(f"{c.quote} [{c.marker}]" for c in citations) or "The articles don't say."
        yield Answer(question, text, not citations, citations, ())


def test_turns_are_scored_with_the_history_and_repeats_are_counted_for_new_questions_only() -> None:
    conversation = Conversation(
        "c1",
        "test",
        (
            turn(1, "What did the dam cost?", "numeric", ("40 million",), (COST,)),
            turn(2, "And when did it open?", "single", ("2019",), (OPENED,)),  # answered with turn 1's quote again
            turn(3, "What did it cost again?", "numeric", ("40 million",), (COST,)),  # same gold: a repeat is fine
            turn(4, "What did critics call it?", "single", ("white elephant",), (CRITICS,)),
        ),
        ("first", "ellipsis", "pronoun", "pronoun"),
    )
    answerer = ScriptedAnswerer(
        {
            "What did the dam cost?": [COST],
            "And when did it open?": [COST, OPENED],
            "What did it cost again?": [COST],
            "What did critics call it?": [],
        }
    )
    turns = answer_conversation(answerer, conversation, CONFIGURATIONS["extractive"], None)
    assert answerer.histories[1] == [
        {"role": "user", "content": "What did the dam cost?"},
        {"role": "assistant", "content": f"{COST.quote} [1]", "citations": [
            {"marker": 1, "source": "a.txt", "start": 0, "end": 24, "quote": COST.quote}]},
    ]  # fmt: skip
    assert [(t.new_question, t.repeats, t.evidence_hit, t.record.success) for t in turns] == [
        (False, False, True, True),
        (True, True, True, True),
        (False, False, True, True),
        (True, False, False, False),
    ]
    summary = summarize_turns(turns)
    assert summary["first turns"]["accuracy"] == 1.0 and summary["follow-ups"]["accuracy"] == pytest.approx(
        2 / 3, abs=1e-4
    )
    # turn 4 abstained: of the new questions only turn 2 was answered, with turn 1's quote again
    assert summary["follow-ups"]["repeated_citations"] == 1.0 and summary["follow-ups"]["new_questions_answered"] == 1
    assert summary["ratio"]["follow_up_vs_first"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["follow-ups"]["false_refusal"] == pytest.approx(1 / 3, abs=1e-4)
    assert "turn 4" in summary and "ellipsis" in summary and "return" not in summary


@pytest.mark.slow
def test_eval_reports_the_conversations_per_turn(tmp_path: Path) -> None:
    lines = CONVERSATIONS.read_text(encoding="utf-8").splitlines()
    subset = [next(x for x in lines if '"split": "dev"' in x), next(x for x in lines if '"split": "test"' in x)]
    (tmp_path / "conversations.jsonl").write_text("\n".join(subset), encoding="utf-8")
    arguments = ["--corpus", str(SEEDS), "eval", "--split", "test", "--conversations-only", "extractive",
                 "extractive-join", "--conversation-file", str(tmp_path / "conversations.jsonl"),
                 "--out", str(tmp_path / "report")]  # fmt: skip
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    assert "test split, conversations" in result.output and "| extractive | first turns | 1 |" in result.output
    assert (
        "| extractive-join | follow-ups |" in result.output and "split\n| configuration | n | R@1" not in result.output
    )
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    test_id = json.loads(subset[1])["id"]
    assert {t["record"]["id"].split(".")[0] for t in report["conversations"]["turns"]} == {test_id}
    assert (
        report["records"] == []
        and "Conversations per turn, test split" in (tmp_path / "report" / "report.md").read_text()
    )


def test_the_turn_tables_list_groups_and_failures() -> None:
    from qa.evaluation.turns import ConversationRun

    conversation = Conversation(
        "c1", "test", (turn(1, "What did the dam cost?", "numeric", ("40 million",), (COST,)),
                       turn(2, "And when did it open?", "single", ("2019",), (OPENED,))), ("first", "ellipsis"),
    )  # fmt: skip
    answerer = ScriptedAnswerer({"What did the dam cost?": [COST], "And when did it open?": [COST]})
    run = ConversationRun([CONFIGURATIONS["extractive"]], ["test"])
    run.turns = answer_conversation(answerer, conversation, CONFIGURATIONS["extractive"], None)
    run.summaries = {"extractive": {"test": summarize_turns(run.turns), "all": summarize_turns(run.turns)}}
    headers, rows = turn_table(run, "test")
    assert headers[:4] == ["configuration", "turns", "n", "accuracy"]
    assert [row[1] for row in rows] == ["first turns", "follow-ups", "turn 2", "ellipsis"]
    assert turn_failure_table(run, "extractive")[1] == [
        ["c1.2", "ellipsis", "single", "misses keywords, repeats earlier citations", "And when did it open?",
         f"{COST.quote} [1]"]
    ]  # fmt: skip
