"""The CLI contract other tools depend on, through click's CliRunner, on a real index of seeds/."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qa import Assistant
from qa.cli import cli
from tests.conftest import COVERAGE_RANKER, SEEDS, TINY
from tests.fakes import HashEmbeddings

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what a terminal may act on (\t and \n aside)

QUESTION = "How many people were killed in the suicide bombing at Kabul airport?"


@pytest.fixture()
def env(assistant: Assistant) -> dict[str, str]:
    return {"QA_INDEX_DIR": str(assistant.settings.index_dir), "QA_CORPUS_DIR": str(SEEDS), "QA_ENGINE": "extractive"}


PAGE_FIELDS = ("page_start", "page_end", "page_labels", "boxes")


def test_ask_json_contract(env: dict[str, str], assistant: Assistant) -> None:
    result = CliRunner().invoke(cli, ["ask", QUESTION, "--json"], env=env)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert set(record) >= {"question", "answer", "abstained", "citations", "passages", "timings_ms"}
    assert record["abstained"] is False and "85" in record["answer"]
    for citation in record["citations"]:
        assert set(citation) == {"marker", "source", "start", "end", "quote", *PAGE_FIELDS}
        assert [citation[field] for field in PAGE_FIELDS] == [None, None, [], []]  # a text article has no pages
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


# Fast CLI cases: the real command line over small corpora, with hashing embeddings in place of MiniLM.

ESCAPES = "\x1b]0;pwned-title\x07\x1b[31m"


@pytest.fixture()
def fake_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """QA_* pointing at a copy of tests/data/tiny holding an article with terminal escape sequences."""
    corpus = tmp_path / "corpus"
    shutil.copytree(TINY, corpus)
    (corpus / f"evil{ESCAPES}.txt").write_text(
        f"Harbor news{ESCAPES}\n\nThe Port Ellis lighthouse{ESCAPES} lamp can be seen 30 kilometres out at sea."
        "\x9b2J\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(
        "qa.cli.base.load_assistant", lambda settings: Assistant.load(settings, embedder=HashEmbeddings())
    )
    return {
        "QA_CORPUS_DIR": str(corpus),
        "QA_INDEX_DIR": str(tmp_path / "index"),
        "QA_ENGINE": "extractive",
        "QA_RANKER_PATH": str(COVERAGE_RANKER),
    }


def one_error_line(result: Any, code: int) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_escape_sequences_in_articles_never_reach_the_terminal(fake_cli: dict[str, str]) -> None:
    runner = CliRunner()
    question = "How far out at sea can the Port Ellis lighthouse lamp be seen?"
    for args in (["ask", question], ["retrieve", question, "-k", "2"]):
        result = runner.invoke(cli, args, env=fake_cli)
        assert result.exit_code == 0, result.output
        assert "lighthouse" in result.stdout and "evil" in result.stdout
        assert not CONTROL.search(result.stdout), repr(result.stdout)
    record = json.loads(runner.invoke(cli, ["ask", question, "--json"], env=fake_cli).stdout)
    assert any(ESCAPES in c["quote"] for c in record["citations"])  # JSON keeps the exact quote, escaped


def test_json_output_escapes_c1_controls(fake_cli: dict[str, str]) -> None:
    question = "How far out at sea can the Port Ellis lighthouse lamp be seen?"
    result = CliRunner().invoke(cli, ["retrieve", question, "-k", "3", "--json"], env=fake_cli)
    assert result.exit_code == 0 and not CONTROL.search(result.stdout)
    assert any("\x9b2J" in json.loads(line)["text"] for line in result.stdout.splitlines())


@pytest.mark.parametrize(
    "args",
    [
        ["ask"],
        ["ask", "q", "--engine", "nope"],
        ["nosuchcommand"],
        ["ask", "q", "--nope"],
        ["retrieve", "q", "-k", "0"],
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str]) -> None:
    line = one_error_line(CliRunner().invoke(cli, args), 2)
    assert "--help" in line


def test_invalid_utf8_in_the_question_argument_is_one_line(fake_cli: dict[str, str]) -> None:
    question = b"caf\xe9 owner?".decode("utf-8", "surrogateescape")  # what Python makes of such an argv
    for command in ("ask", "retrieve"):
        line = one_error_line(CliRunner().invoke(cli, [command, question], env=fake_cli), 1)
        assert "not valid Unicode" in line


@pytest.mark.parametrize("source", ["stdin", "file"])
def test_invalid_utf8_in_a_batch_is_one_line_naming_the_line(
    fake_cli: dict[str, str], tmp_path: Path, source: str
) -> None:
    data = b'{"id": 1, "question": "When did Mount Kelud erupt?"}\n{"id": 2, "question": "caf\xe9?"}\n'
    if source == "stdin":
        result = CliRunner().invoke(cli, ["ask", "--batch", "-"], input=data, env=fake_cli)
    else:
        (tmp_path / "q.jsonl").write_bytes(data)
        result = CliRunner().invoke(cli, ["ask", "--batch", str(tmp_path / "q.jsonl")], env=fake_cli)
    line = one_error_line(result, 1)
    assert "line 2" in line and "UTF-8" in line and result.stdout == ""


@pytest.mark.parametrize(
    ("question", "message"),
    [('""', "empty"), ("null", "must be text"), ("42", "must be text"), ('["a", "b"]', "must be text")],
)
def test_batch_questions_must_be_non_empty_text(
    fake_cli: dict[str, str], tmp_path: Path, question: str, message: str
) -> None:
    batch = tmp_path / "q.jsonl"
    batch.write_text(
        '{"id": 1, "question": "When did Mount Kelud erupt?"}\n' + f'{{"id": 4, "question": {question}}}\n'
    )
    for extra in ([], ["--json"]):
        line = one_error_line(CliRunner().invoke(cli, ["ask", "--batch", str(batch), *extra], env=fake_cli), 1)
        assert "line 2" in line and message in line


def test_batch_answers_that_fail_print_an_error_and_exit_1(fake_cli: dict[str, str], tmp_path: Path) -> None:
    batch = tmp_path / "q.jsonl"
    batch.write_text('{"id": "a", "question": "When did Mount Kelud erupt?"}\n')
    result = CliRunner().invoke(cli, ["ask", "--batch", str(batch), "--engine", "llm"], env=fake_cli)
    assert result.exit_code == 1
    assert result.stdout.startswith("[a] Error: Engine 'llm' is not available") and "None" not in result.stdout


def test_a_missing_corpus_fails_instead_of_answering_from_another_index(fake_cli: dict[str, str]) -> None:
    runner = CliRunner()
    built = runner.invoke(cli, ["ask", "When did Mount Kelud erupt?"], env=fake_cli)
    assert built.exit_code == 0, built.output
    missing = runner.invoke(cli, ["--corpus", "no-such-dir", "ask", "When did Mount Kelud erupt?"], env=fake_cli)
    assert "no-such-dir does not exist" in one_error_line(missing, 1)
    nothing = {**fake_cli, "QA_INDEX_DIR": fake_cli["QA_INDEX_DIR"] + "-new"}
    fresh = runner.invoke(cli, ["--corpus", "no-such-dir", "ask", "When did Mount Kelud erupt?"], env=nothing)
    assert "no-such-dir does not exist" in one_error_line(fresh, 1)
