"""Benchmark helpers (statistics, synthetic vectors, recall, record checks) and the short load test."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import faiss
import numpy as np
import pytest

from qa import Assistant, Settings, answer_record
from qa.bench import render_report
from qa.bench.load import record_problem, run_sessions, serve
from qa.bench.scale import CHUNKS_PER_ARTICLE, SyntheticVectors, recall, synthetic_texts, vector_statistics
from qa.bench.stats import latency_summary, percentile, ratio, spread
from qa.store import LocalPostgres, vector_index

LOAD_QUESTIONS = [
    "How many people were killed in the suicide bombing at Kabul airport?",
    "Where did Wang Yi hold talks with Mullah Abdul Ghani Baradar?",
    "What is the recipe for a good sourdough bread?",
    "Which RAND analyst described the road through the Wakhan Corridor?",
]


@pytest.mark.parametrize("q", [0, 5, 50, 95, 99.5, 100])
@pytest.mark.parametrize("values", [[3.0], [2.0, 1.0], [5.0, 1.0, 4.0, 4.0, 10.0, 0.5, 7.0]])
def test_percentile_matches_numpy(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_refuses_no_values_and_bad_q() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary_of_one_to_a_hundred() -> None:
    summary = latency_summary([float(v) for v in range(100, 0, -1)])
    assert summary == {"n": 100, "p50_ms": 50.5, "p95_ms": 95.05, "mean_ms": 50.5, "max_ms": 100.0}
    assert latency_summary([])["p50_ms"] is None


def test_ratio_and_spread() -> None:
    assert ratio(1.0, 4.0) == 0.25 and ratio(None, 2.0) is None and ratio(3.0, 0) is None
    assert spread(list(range(10)), 3) == [0, 3, 6]
    assert spread([1, 2], 5) == [1, 2] and spread([1, 2], 0) == []


def test_recall_counts_shared_ids_per_row() -> None:
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 9, 9], [5, 6, 7, 8]])
    assert recall(found, truth) == pytest.approx((2 / 4 + 1) / 2)


def test_synthetic_vectors_are_deterministic_unit_rows_with_calibrated_cosines() -> None:
    first, second = SyntheticVectors.generate(4000), SyntheticVectors.generate(4000)
    vectors = first.vectors()
    assert np.array_equal(vectors, second.vectors())
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    stats = vector_statistics(vectors, first.articles, first.queries(100))
    # MiniLM on seeds/ (measured): same article 0.50, query's nearest chunk 0.63, its 10th 0.47
    assert 0.45 < stats["pair_same_article"] < 0.6
    assert 0.58 < stats["query_top1"] < 0.68 and 0.42 < stats["query_top10"] < 0.55
    assert stats["pair_other_article"] < stats["pair_same_article"]


def test_synthetic_texts_are_deterministic_and_article_sized() -> None:
    texts = synthetic_texts(2 * CHUNKS_PER_ARTICLE)
    assert texts == synthetic_texts(2 * CHUNKS_PER_ARTICLE)
    assert all(100 <= len(t.split()) <= 140 for t in texts)


def test_approximate_index_keeps_recall_at_10_above_095() -> None:
    """The HNSW the store builds above Settings.approx_index_above, against exact search."""
    synthetic = SyntheticVectors.generate(20_000)
    vectors, queries = synthetic.vectors(), synthetic.queries(200)
    approx = vector_index(vectors, Settings(approx_index_above=0))
    assert isinstance(approx, faiss.IndexHNSWFlat)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    _, found = approx.search(queries, 10)
    assert recall(found, truth) >= 0.95


def test_record_problem_accepts_real_answers_and_catches_tampering(assistant: Assistant) -> None:
    answered = answer_record(assistant.ask(LOAD_QUESTIONS[0]))
    refused = answer_record(assistant.ask(LOAD_QUESTIONS[2]))
    assert record_problem(answered, assistant.documents) is None
    assert record_problem(refused, assistant.documents) is None
    tampered = {**answered, "citations": [{**answered["citations"][0], "start": answered["citations"][0]["start"] + 1}]}
    assert "does not match" in (record_problem(tampered, assistant.documents) or "")
    assert record_problem({**answered, "citations": []}, assistant.documents) == "an answer without citations"
    assert "error record" in (record_problem({"question": "x", "error": "boom"}, assistant.documents) or "")


def test_load_table_shows_each_row() -> None:
    row = {
        "sessions": 5,
        "requests": 15,
        "completed": 15,
        "errors": 0,
        "throughput_rps": 7.5,
        "latency": latency_summary([100.0, 200.0]),
        "server_rss_peak_mb": 900.0,
        "problems": [],
    }
    rows = [{**row, "route": "page"}, {**row, "route": "openai", "throughput_rps": 6.0}]
    data = {"server_start_s": 9.0, "server_idle_rss_mb": 800.0, "server_peak_rss_mb": 950.0, "rows": rows}
    table = render_report({"run_id": "x", "meta": {"quick": True, "cpus": 2, "load_average_before": 1.0}, "load": data})
    assert "| page /ask (gradio_client) | 5 | 15 | 15 | 0 | 7.500 | 150.0 | 195.0 | 900.0 |" in table
    assert "| /v1/chat/completions (openai) | 5 | 15 | 15 | 0 | 6.000 | 150.0 | 195.0 | 900.0 |" in table


@pytest.mark.slow
def test_five_concurrent_sessions_against_qa_chat(
    assistant: Assistant, seeds_settings: Settings, tmp_path: Path
) -> None:
    """Short load test: `qa chat` serves 5 sessions of 3 questions with no error and valid citations, through the
    page's /ask endpoint and through the OpenAI-compatible endpoint."""
    settings = dataclasses.replace(seeds_settings)  # the session fixture's index, already built
    with serve(settings, workdir=tmp_path) as server:
        results = [
            run_sessions(
                server.url,
                5,
                LOAD_QUESTIONS,
                assistant.documents,
                per_session=3,
                timeout_s=180,
                server=server,
                route=route,
            )
            for route in ("page", "openai")
        ]
    for result in results:
        assert result["errors"] == 0, result["problems"]
        assert result["completed"] == 15
        assert result["latency"]["p95_ms"] is not None and result["server_rss_peak_mb"] > 0


def test_store_section_measures_both_stores_on_the_same_chunks(postgres: LocalPostgres) -> None:
    from qa.bench.store import Workload, faiss_row, postgres_row, projection
    from qa.bench.tables import store_table

    workload = Workload(400, 20)
    rows = [faiss_row(workload, print), postgres_row(workload, postgres, print)]
    assert [r["store"] for r in rows] == ["faiss", "postgresql"]
    for row in rows:
        assert row["recall_at_10"] >= 0.95 and row["dense"]["n"] == row["hybrid"]["n"] == 20
        assert set(row["throughput_qps"]) == {"1", "4", "16"} and all(v > 0 for v in row["throughput_qps"].values())
        assert row["disk_bytes_per_vector"] >= 4 * 384
    assert rows[0]["recall_at_10"] == 1.0  # exact search at this size
    data = {"vectors": "synthetic", "dim": 384, "server_start_s": 1.0, "rows": rows}
    data["projection_1e6"] = projection(rows, 1_000_000)
    table = store_table(data)
    assert "| postgresql | 400 |" in table and "extrapolated" in table


def test_extraction_section_reports_pages_and_documents_per_second() -> None:
    from qa.bench.extraction import run_extraction
    from qa.bench.stats import BenchPlan
    from qa.bench.tables import extraction_table

    data = run_extraction(BenchPlan(quick=True), lambda message: None)
    units = {row["sample"].split(":")[0]: row["unit"] for row in data["rows"]}
    assert units == {"pdf": "pages", "html": "documents", "docx": "documents", "epub": "documents"}
    assert all(row["per_s_wall"] > 0 and row["per_s_cpu"] > 0 for row in data["rows"])
    assert data["rows"][-1]["units"] == 150
    assert "pages/s" in extraction_table(data) and "documents/s" in extraction_table(data)
