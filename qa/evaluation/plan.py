"""An `EvalPlan` (what `qa eval` was asked) -> the scored run, the conversations' run, the report files and the
gate's verdict: the counterpart of `qa.bench.stats.BenchPlan`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa import Assistant, Progress, Settings
from qa.evaluation.conversations import load_conversations
from qa.evaluation.questions import QUESTION_SETS, Question, check_gate, load_questions, load_thresholds
from qa.evaluation.report import confidence_table, new_run_id, provenance, summary_table, write_report
from qa.evaluation.runs import Harness, Run, expand, with_all
from qa.evaluation.turns import ConversationRun, evaluate_conversations, target_table, turn_table

SPLITS = ("dev", "test", "second", "formats", "all")  # all: the four
Table = tuple[str, tuple[list[str], list[list[str]]]]  # (title, (headers, rows))


@dataclass(frozen=True)
class EvalPlan:
    """What to evaluate: configurations or groups (`names`), on which split, against which gate."""

    names: tuple[str, ...] = ()
    compare: bool = False  # no names: the `standard` group instead of `engine` alone
    split: str = "all"
    engine: str = "extractive"  # the configuration run when no names are given
    questions: Path = Path("eval/questions.jsonl")
    thresholds: Path = Path("eval/thresholds.json")
    out: Path | None = None  # default: eval/reports/<run id>/
    curve: bool = True  # re-run extractive over abstention thresholds
    gate: bool = False  # check the gated row against `thresholds`
    conversations: bool = False  # also score the multi-turn conversations
    conversations_only: bool = False
    conversation_file: Path = Path("eval/conversations.jsonl")

    @property
    def splits(self) -> list[str]:
        return ["dev", "test", "second", "formats"] if self.split == "all" else [self.split]


@dataclass
class EvalResult:
    run: Run
    dialogues: ConversationRun | None
    paths: dict[str, Path]
    tables: list[Table]
    limits: dict[str, Any] = field(default_factory=dict)  # the gate's thresholds file (empty without --gate)
    failures: list[str] = field(default_factory=list)  # bounds the gated row missed


def run_eval(
    settings: Settings, plan: EvalPlan, *, load: Callable[[Settings], Assistant], progress: Progress | None = None
) -> EvalResult:
    """Load the questions (and conversations) first, so a bad set fails before any model loads; then `load` the
    assistant, answer and score every configuration, write the report, and check the gate."""
    splits = plan.splits
    configurations = expand(plan.names or (["standard"] if plan.compare else [plan.engine]))
    limits: dict[str, Any] = load_thresholds(plan.thresholds) if plan.gate else {}
    if plan.gate:  # the gated row always runs
        configurations = expand([c.name for c in configurations] + [limits["configuration"]])
        splits += [] if limits["split"] in splits else [limits["split"]]
    asked: list[Question] = load_questions(plan.questions, settings.corpus_dir) if {"dev", "test"} & set(splits) else []
    for held_out in ("second", "formats"):
        if held_out in splits:
            asked += load_questions(*QUESTION_SETS[held_out])
    asked = [] if plan.conversations_only else asked
    talks = (
        load_conversations(plan.conversation_file, settings.corpus_dir)
        if plan.conversations or plan.conversations_only
        else []
    )
    harness = Harness(load(settings), progress=progress)
    run = harness.evaluate(configurations, asked, splits=splits, curve=plan.curve and bool(asked))
    dialogues = evaluate_conversations(harness, configurations, talks, splits=splits) if talks else None
    run_id = new_run_id()
    meta = {"run_id": run_id, **provenance(Path("."))}
    paths = write_report(run, plan.out or Path("eval/reports") / run_id, meta, dialogues)
    gated = run.summaries.get(limits.get("configuration", ""), {}).get(limits.get("split", ""), {})
    failures = check_gate(gated, limits) if plan.gate else []
    tables = eval_tables(run, dialogues, [] if plan.conversations_only else splits)
    return EvalResult(run, dialogues, paths, tables, limits, failures)


def eval_tables(run: Run, dialogues: ConversationRun | None, splits: list[str]) -> list[Table]:
    """The tables `qa eval` prints: the summary of each question split, then the conversations' per-turn tables."""
    tables = [(f"{shown} split", summary_table(run, shown)) for shown in splits]
    tables += [
        (f"{shown} split, confidence: P(answerable)", confidence_table(run, shown))
        for shown in splits
        if confidence_table(run, shown)[1]
    ]
    if dialogues is not None:
        tables += [(f"{s} split, conversations", turn_table(dialogues, s)) for s in with_all(dialogues.splits)]
        tables.append(("Conversations against their targets (follow-ups >= 0.8x first turns, repeats < 0.10)",
                       target_table(dialogues)))  # fmt: skip
    return tables
