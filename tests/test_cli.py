"""The CLI contract other tools depend on, through click's CliRunner, on a real index of seeds/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa import Assistant
from qa.cli import cli
from tests.conftest import SEEDS, TINY

QUESTION = "How many people were killed in the suicide bombing at Kabul airport?"


@pytest.fixture()
def env(assistant: Assistant) -> dict[str, str]:
    return {"QA_INDEX_DIR": str(assistant.settings.index_dir), "QA_CORPUS_DIR": str(SEEDS), "QA_ENGINE": "extractive"}


def test_ask_json_contract(env: dict[str, str], assistant: Assistant) -> None:
    result = CliRunner().invoke(cli, ["ask", QUESTION, "--json"], env=env)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert set(record) >= {"question", "answer", "abstained", "citations", "passages", "timings_ms"}
    assert record["abstained"] is False and "85" in record["answer"]
    for citation in record["citations"]:
        assert set(citation) == {"marker", "source", "start", "end", "quote"}
        text = (SEEDS / citation["source"]).read_text(encoding="utf-8")
        assert text[citation["start"] : citation["end"]] == citation["quote"]
    assert all(set(p) == {"source", "start", "end", "score"} for p in record["passages"])


def test_ask_text_lists_numbered_sources(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["ask", QUESTION], env=env)
    assert result.exit_code == 0
    assert "Sources:\n[1] 004_d7ad059ecd35d458.txt [" in result.stdout
    assert "killed 85 people" in result.stdout


def test_ask_off_topic_abstains(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["ask", "What is the capital of Australia?", "--json"], env=env)
    record = json.loads(result.stdout)
    assert record["abstained"] is True and record["citations"] == []


def test_batch_answers_each_line_with_its_id(env: dict[str, str], tmp_path: Path) -> None:
    batch = tmp_path / "q.jsonl"
    batch.write_text(
        json.dumps({"id": "a", "question": QUESTION})
        + "\n\n"
        + json.dumps({"id": 7, "question": "Who won the 2018 football World Cup?"})
        + "\n"
    )
    result = CliRunner().invoke(cli, ["ask", "--batch", str(batch), "--json"], env=env)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r["abstained"]) for r in records] == [("a", False), (7, True)]


def test_bad_input_exits_non_zero_with_one_line(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(cli, ["ask", "   "], env=env)
    assert empty.exit_code == 1
    assert empty.stderr.strip() == "Error: The question is empty: type a question about the articles."
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "question": "ok?"}\n{"id": 2}\n')
    batch = runner.invoke(cli, ["ask", "--batch", str(bad), "--json"], env=env)
    assert batch.exit_code == 1 and batch.stdout == "" and "bad.jsonl line 2" in batch.stderr
    neither = runner.invoke(cli, ["ask"], env=env)
    assert neither.exit_code == 2


def test_retrieve_json(env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["retrieve", "Wakhan Corridor road", "-k", "2", "--json"], env=env)
    passages = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(passages) == 2 and passages[0]["source"] == "000_d05b3cac78b88b21.txt"


@pytest.mark.slow
def test_index_command_and_missing_corpus(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["index", "--corpus", str(TINY), "--index-dir", str(tmp_path / "i")])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("Indexed 3 documents")
    missing = runner.invoke(cli, ["index", "--corpus", str(tmp_path / "none"), "--index-dir", str(tmp_path / "j")])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    assert not (tmp_path / "j").exists()
