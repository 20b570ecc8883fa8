"""`qa eval`: the report is written where asked, the summary is printed, and --gate sets the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa.cli import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_eval_writes_the_report_and_gates(tmp_path: Path) -> None:
    lines = (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    subset = [line for line in lines if '"split": "test"' in line][:4] + [lines[0]]
    (tmp_path / "questions.jsonl").write_text("\n".join(subset), encoding="utf-8")
    thresholds = {"configuration": "extractive", "split": "test", "min": {"citation_validity": 1.0, "accuracy": 1.01}}
    (tmp_path / "thresholds.json").write_text(json.dumps(thresholds), encoding="utf-8")
    arguments = ["--corpus", str(ROOT / "seeds"), "eval", "--split", "test", "--no-curve", "--gate",
                 "--questions", str(tmp_path / "questions.jsonl"), "--thresholds", str(tmp_path / "thresholds.json"),
                 "--out", str(tmp_path / "report")]  # fmt: skip
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 1, result.output
    assert "| extractive | 4 |" in result.output
    assert "accuracy = " in result.output and "is below 1.01" in result.output
    assert "citation_validity" not in result.output.split("GATE FAILED", 1)[1]
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in report["records"]] == [json.loads(line)["id"] for line in subset[:4]]

    thresholds["min"]["accuracy"] = 0.0
    (tmp_path / "thresholds.json").write_text(json.dumps(thresholds), encoding="utf-8")
    assert CliRunner().invoke(cli, arguments).exit_code == 0


@pytest.mark.slow
def test_fit_calibrate_only_rescales_the_confidence_and_keeps_the_verdicts(tmp_path: Path) -> None:
    from qa import Assistant, Settings
    from qa.decision import load_ranker

    lines = (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    dev = [json.loads(line) for line in lines if '"split": "dev"' in line]
    subset = [q for q in dev if q["type"] != "unanswerable"][:8] + [q for q in dev if q["type"] == "unanswerable"][:6]
    one_test = next(line for line in lines if '"split": "test"' in line)  # the file must hold both splits
    (tmp_path / "questions.jsonl").write_text("\n".join([*(json.dumps(q) for q in subset), one_test]), "utf-8")
    out = tmp_path / "ranker.json"
    arguments = ["--corpus", str(ROOT / "seeds"), "fit", "--calibrate-only", "--questions",
                 str(tmp_path / "questions.jsonl"), "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    shipped, calibrated = load_ranker(), load_ranker(out)
    assert calibrated.meta["calibration"]["questions"] == len(subset)
    assert calibrated.sentence.to_json() == shipped.sentence.to_json() and calibrated.threshold != shipped.threshold
    settings = Settings(corpus_dir=ROOT / "seeds")
    before = Assistant.load(settings)
    after = Assistant.load(settings.replace(ranker_path=out))
    for question in subset:
        old, new = (a.decision.judge(question["question"], a.candidates(question["question"], limit=8))
                    for a in (before, after))  # fmt: skip
        assert old.answerable == new.answerable, question["id"]
