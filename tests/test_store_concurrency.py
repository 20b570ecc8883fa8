"""Many workers, one database: two answering processes while a third re-indexes, on a real PostgreSQL server."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from qa import Assistant, QAError, Settings
from qa.store import build_store
from tests.fakes import HashEmbeddings

QUESTIONS = [
    "What is the seal population of Lake Baikal?",
    "How many villagers were evacuated from the slopes of Mount Kelud?",
    "What prize fund will the chess players split?",
]
REBUILDS = 8
DEADLINE_S = 90  # the workers stop by themselves even if the re-indexer dies


def versions(corpus: Path) -> dict[str, dict[str, str]]:
    """Two versions of the corpus: B moves every offset of two articles and changes their numbers.

    Read and written byte-exact: lake.txt has CRLF line ends, and a newline-translated copy would be a third version
    (every offset after a line end moved) that the first build quotes before the re-indexer's first write lands.
    """
    a = {p.name: p.read_bytes().decode("utf-8") for p in corpus.iterdir()}
    b = dict(a)
    b["lake.txt"] = "Update: new census.\n\n" + a["lake.txt"].replace("100,000", "120,000")
    b["volcano.txt"] = "Correction.\n\n" + a["volcano.txt"].replace("12,000", "15,000")
    return {"A": a, "B": b}


def worker(settings: Settings, stop: str, out: str) -> None:
    """Ask the questions in turn until told to stop; record every answer's citations, or the error."""
    assistant = Assistant.load(settings, embedder=HashEmbeddings())
    records, started, turn = [], time.monotonic(), 0
    while not Path(stop).exists() and time.monotonic() - started < DEADLINE_S:
        question = QUESTIONS[turn % len(QUESTIONS)]
        turn += 1
        try:
            answer = assistant.ask(question)
            cited = [[c.source, c.start, c.end, c.quote] for c in answer.citations]
            records.append({"question": question, "abstained": answer.abstained, "citations": cited})
        except QAError as exc:
            records.append({"question": question, "error": str(exc)})
    Path(out).write_text(json.dumps({"asked": turn, "records": records}), encoding="utf-8")


def reindexer(settings: Settings, texts: dict[str, dict[str, str]], stop: str) -> None:
    """Switch the corpus between its versions and re-index it, REBUILDS times, then tell the workers to stop."""
    try:
        for number in range(REBUILDS):
            for name, text in texts["B" if number % 2 == 0 else "A"].items():
                (settings.corpus_dir / name).write_bytes(text.encode("utf-8"))
            build_store(settings, embedder=HashEmbeddings())
            time.sleep(0.3)
    finally:
        Path(stop).touch()


@pytest.mark.slow  # three Python processes start (about 30 s on 2 busy cores)
def test_two_workers_answer_while_a_third_process_reindexes(pg_settings: Settings, tmp_path: Path) -> None:
    texts = versions(pg_settings.corpus_dir)
    build_store(pg_settings, embedder=HashEmbeddings())
    stop, outputs = tmp_path / "stop", [tmp_path / f"worker-{i}.json" for i in range(2)]
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=worker, args=(pg_settings, str(stop), str(out))) for out in outputs]
    processes.append(spawn.Process(target=reindexer, args=(pg_settings, texts, str(stop))))
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=DEADLINE_S + 60)
        assert process.exitcode == 0, process
    seen_versions: set[str] = set()
    for out in outputs:
        result = json.loads(out.read_text(encoding="utf-8"))
        records = result["records"]
        assert len(records) == result["asked"] > 10  # every question got an answer
        assert [r["error"] for r in records if "error" in r] == []
        for record in records:
            # all citations of one answer quote one version of the corpus, exactly
            matching = {
                name
                for name, corpus in texts.items()
                if all(corpus[source][start:end] == quote for source, start, end, quote in record["citations"])
            }
            assert matching, record
            if len(matching) == 1 and record["citations"]:
                seen_versions |= matching
        assert sum(bool(r["citations"]) for r in records) > len(records) / 3
    assert seen_versions == {"A", "B"}  # the workers did follow the re-indexes
