"""The report: JSON, markdown and a self-contained HTML page with three embedded plots."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qa.evaluation.metrics import Record
from qa.evaluation.questions import load_questions
from qa.evaluation.report import failure_reason, render_markdown, summary_table, write_report
from qa.evaluation.runs import CONFIGURATIONS, Harness

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(assistant):
    questions = load_questions(ROOT / "eval" / "questions.jsonl", ROOT / "seeds")
    chosen = [q for q in questions if q.split == "dev"][:8] + [q for q in questions if q.split == "test"][:6]
    configurations = [CONFIGURATIONS["extractive"], CONFIGURATIONS["dense"]]
    return Harness(assistant).evaluate(configurations, chosen, splits=["dev", "test"], curve=True)


def test_report_files_are_written_and_self_contained(run, tmp_path: Path) -> None:
    paths = write_report(run, tmp_path / "r1", {"run_id": "r1", "commit": "abc"})
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 4
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)  # nothing fetched from elsewhere
    assert "<h2>Summary, test split</h2>" in page and "Abstention trade-off" in page
    assert "<h2>Confidence: P(answerable), test split</h2>" in page and "AURC, forced extractive answers" in page
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert len(data["records"]) == 2 * 14
    assert set(data["summaries"]) == {"extractive", "dense"}
    assert set(data["summaries"]["extractive"]) == {"dev", "test", "all"}
    assert data["meta"]["commit"] == "abc"
    assert "auroc_near_miss" in data["summaries"]["extractive"]["test"]["confidence"]
    assert [p["coverage"] for p in data["risk_coverage"]["dev"]["points"]][-1] == 1.0
    assert sorted(p.name for p in (tmp_path / "r1").glob("*.png")) == [
        "abstention-trade-off-extractive.png",
        "latency-per-question.png",
        "risk-coverage-of-p-answerable.png",
        "success-rate-per-question-type.png",
    ]


def test_markdown_holds_one_summary_row_per_configuration(run) -> None:
    text = render_markdown(run, {"run_id": "r1"}, {})
    headers, rows = summary_table(run, "test")
    assert [row[0] for row in rows] == ["extractive", "dense"]
    assert "| " + " | ".join(headers) + " |" in text
    assert all("| " + " | ".join(row) + " |" in text for row in rows)
    assert "## Failure patterns" in text


def record(**changes: object) -> Record:
    values: dict[str, object] = dict(
        configuration="x",
        id="q1",
        type="single",
        split="test",
        question="q",
        answer="a",
        abstained=False,
        success=False,
        missing_keywords=("k",),
        retrieved_ranks=(7,),
        reciprocal_rank=0.1,
        citations=1,
        valid_citations=1,
        precise_citations=0,
        cited_share=0.0,
        citation_chars=10,
        latency_ms=1.0,
        ttft_ms=1.0,
    )
    return Record(**(values | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"success": True}, None),
        ({"type": "unanswerable"}, "answered an unanswerable question"),
        ({"abstained": True, "retrieved_ranks": (2,)}, "false refusal, gold in top-5"),
        ({"abstained": True}, "false refusal, gold not retrieved"),
        ({"type": "false_premise"}, "false premise not corrected"),
        ({"retrieved_ranks": (None, 5)}, "answer misses keywords, gold in top-5"),
        ({}, "answer misses keywords, gold not retrieved"),
        ({"error": "boom"}, "error"),
    ],
)
def test_failure_patterns(changes: dict[str, object], reason: str | None) -> None:
    assert failure_reason(record(**changes)) == reason
