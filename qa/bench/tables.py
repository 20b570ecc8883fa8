"""A benchmark report's sections -> readable markdown tables (what `qa bench` prints)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qa.bench.stats import markdown_table


def indexing_table(data: Mapping[str, Any]) -> str:
    cold, warm, embedding = data["cold"], data["warm"], data["embedding"]
    rows = [
        ["cold (fresh folder)", cold["seconds"], cold["embedded"], cold["documents_per_s"], cold["tokens_per_s"]],
        ["warm (unchanged)", warm["seconds"], warm["embedded"], warm["documents_per_s"], None],
    ]
    head = (
        f"Indexing: {data['documents']} documents, {data['tokens']:,} tokens -> {data['chunks']} chunks + "
        f"{data['sentences']} sentences (model load {data['model_load_s']} s, not counted)"
    )
    embed = (
        f"Embedding throughput, same {embedding['texts']} texts: ours {embedding['ours_texts_per_s']} texts/s, "
        f"bare SentenceTransformer.encode {embedding['bare_encode_texts_per_s']} texts/s "
        f"(ratio {embedding['ratio_ours_to_bare']}); whole cold build {embedding['cold_build_texts_per_s']} "
        "texts/s"
    )
    return "\n".join([head, markdown_table(["build", "seconds", "texts embedded", "docs/s", "tokens/s"], rows), embed])


def scale_table(data: Mapping[str, Any]) -> str:
    rows = [
        [
            f"{r['chunks']:,}",
            r["auto_index"],
            r["exact"]["p50_ms"],
            r["exact"]["p95_ms"],
            r["exact_one_thread"]["p50_ms"],
            r["approx"]["p50_ms"],
            r["approx"]["p95_ms"],
            r["recall_at_10"],
            r["approx_build_s"],
            r["bytes_per_vector_exact"],
            r["bytes_per_vector_approx"],
        ]
        for r in data["faiss"]
    ]
    faiss = markdown_table(
        [
            "chunks",
            "auto",
            "exact p50 ms",
            "exact p95 ms",
            "exact p50 ms, 1 thread",
            "HNSW p50 ms",
            "HNSW p95 ms",
            "recall@10",
            "HNSW build s",
            "B/vec exact",
            "B/vec HNSW",
        ],
        rows,
    )
    sweep = markdown_table(
        ["efSearch", "recall@10", "p50 ms"],
        [[p["ef_search"], p["recall_at_10"], p["p50_ms"]] for p in data["hnsw_ef_search"]],
    )
    hybrid = markdown_table(
        ["chunks", "p50 ms", "p95 ms", "bytes/chunk in memory", "vectors' share"],
        [
            [
                f"{r['chunks']:,}",
                r["latency"]["p50_ms"],
                r["latency"]["p95_ms"],
                r["bytes_per_chunk"],
                r["vector_share"],
            ]
            for r in data["hybrid"]
        ],
    )
    calibration = "; ".join(f"{name}: {stats}" for name, stats in data["calibration"].items() if stats)
    return "\n".join(
        [
            f"Retrieval at scale ({data['vectors']}; approximate index above {data['approx_index_above']:,} chunks)",
            faiss,
            "",
            "HNSW efSearch at the largest size",
            sweep,
            "",
            "Full hybrid retrieval (query embedding + FAISS + BM25 + fusion), synthetic texts",
            hybrid,
            "",
            f"Cosine statistics: {calibration}",
        ]
    )


def answers_table(data: Mapping[str, Any]) -> str:
    rows = [
        [
            r["engine"],
            r["latency"]["n"],
            r["latency"]["p50_ms"],
            r["latency"]["p95_ms"],
            (r.get("evidence") or {}).get("p50_ms"),
            (r.get("evidence") or {}).get("p95_ms"),
            r["ttft"]["p50_ms"],
            r["ttft"]["p95_ms"],
            r["abstained"],
            r.get("build_s"),
        ]
        for r in data["rows"]
    ]
    ratios = data["ratios_ours_extractive_to_textbook"]
    return "\n".join(
        [
            "Answer latency (wall, in process), time to the evidence (the quotes shown first) and to the first "
            "streamed text piece",
            markdown_table(
                [
                    "engine",
                    "questions",
                    "p50 ms",
                    "p95 ms",
                    "evidence p50 ms",
                    "evidence p95 ms",
                    "TTFT p50 ms",
                    "TTFT p95 ms",
                    "abstained",
                    "build s",
                ],
                rows,
            ),
            f"Ours (extractive) / textbook LangChain: p50 x{ratios['p50']}, p95 x{ratios['p95']}, "
            f"TTFT p50 x{ratios['ttft_p50']}. Bench process peak RSS {data['bench_process_peak_rss_mb']} MB.",
            _startup_line(data.get("startup")),
            *_stages_table(data["rows"]),
        ]
    )


def _startup_line(startup: Mapping[str, Any] | None) -> str:
    """Start-up: loading the embedding model, and warming each engine that loads a model (as `qa chat` does)."""
    if not startup:
        return ""
    warmed = ", ".join(f"{name} {ms / 1000:.1f} s" for name, ms in startup["warm_up_ms"].items()) or "nothing to warm"
    return f"Start-up: embedding model {startup['embed_model_load_s']} s; engine warm-up before serving: {warmed}."


TOKENS = ("prompt_tokens", "completion_tokens")  # an answer's usage, as the stages table shows it


def _stages_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where the time goes (median ms of each stage an answer reports) and the LLM's tokens, per engine."""
    ours = [r for r in rows if r.get("stages_p50_ms")]
    if not ours:
        return []
    stages = sorted({key for r in ours for key in r["stages_p50_ms"]})
    table = [
        [
            r["engine"],
            *(r["stages_p50_ms"].get(key) for key in stages),
            *(f"{t['p50']:.0f} (max {t['max']})" if (t := r.get("tokens", {}).get(key)) else None for key in TOKENS),
        ]
        for r in ours
    ]
    header = ["engine", *(key.removesuffix("_ms") + " p50 ms" for key in stages), *(f"{key} p50" for key in TOKENS)]
    return [
        "",
        "Where the time goes (median per stage; answer_ms holds the engine's own stages)",
        markdown_table(header, table),
    ]


def profile_table(data: Mapping[str, Any]) -> str:
    extractive = data["extractive"]
    stages = markdown_table(
        ["stage", "ms/answer", "share"], [[s["stage"], s["ms_per_answer"], s["share"]] for s in extractive["stages"]]
    )
    top = markdown_table(
        ["function (own time)", "ms/answer"],
        [[t["function"], t["own_ms_per_answer"]] for t in extractive["top_own_time"]],
    )
    lines = [
        f"Profile: {extractive['answers']} extractive answers, {extractive['ms_per_answer']} ms each under cProfile",
        stages,
        "",
        top,
    ]
    fix = data.get("single_thread_query_fix")
    if fix:
        lines.append(
            f"Fix, query embedding on one torch thread: extractive p50 {fix['before']['p50_ms']} -> "
            f"{fix['after']['p50_ms']} ms, p95 {fix['before']['p95_ms']} -> {fix['after']['p95_ms']} ms "
            f"(x{fix['p50_speedup']} at p50, same run, interleaved)"
        )
    if "llm_one_answer_timings_ms" in data:
        lines.append(f"LLM, one answer (ms): {data['llm_one_answer_timings_ms']}")
    return "\n".join(lines)


ROUTE_NAMES = {"page": "page /ask (gradio_client)", "openai": "/v1/chat/completions (openai)"}


def load_table(data: Mapping[str, Any]) -> str:
    if "skipped" in data:
        return f"Load test skipped: {data['skipped']}"
    rows = [
        [
            ROUTE_NAMES.get(r.get("route", "page"), r.get("route")),
            r["sessions"],
            r["requests"],
            r["completed"],
            r["errors"],
            r["throughput_rps"],
            r["latency"]["p50_ms"],
            r["latency"]["p95_ms"],
            r["server_rss_peak_mb"],
        ]
        for r in data["rows"]
    ]
    problems = [p for r in data["rows"] for p in r["problems"]]
    return "\n".join(
        [
            f"Load: `qa chat` (extractive) started in {data['server_start_s']} s, "
            f"idle RSS {data['server_idle_rss_mb']} MB, peak RSS {data['server_peak_rss_mb']} MB",
            markdown_table(
                ["route", "sessions", "requests", "ok", "errors", "answers/s", "p50 ms", "p95 ms", "RSS peak MB"],
                rows,
            ),
            *(f"- {p}" for p in problems),
        ]
    )


def store_table(data: Mapping[str, Any]) -> str:
    rows = [
        [
            r["store"],
            f"{r['chunks']:,}",
            r["index"],
            r["build_s"],
            r["dense"]["p50_ms"],
            r["dense"]["p95_ms"],
            r["hybrid"]["p50_ms"],
            r["hybrid"]["p95_ms"],
            r["recall_at_10"],
            r["disk_bytes_per_vector"],
            r["disk_bytes_per_chunk"],
            r["client_memory_bytes_per_chunk"],
            " / ".join(str(r["throughput_qps"][c]) for c in ("1", "4", "16")),
            r["load_average"],
        ]
        for r in data["rows"]
    ]
    headers = [
        "store",
        "chunks",
        "index",
        "build s",
        "dense p50 ms",
        "dense p95 ms",
        "hybrid p50 ms",
        "hybrid p95 ms",
        "recall@10",
        "B/vector (index)",
        "B/chunk on disk",
        "B/chunk in worker",
        "hybrid q/s, 1 / 4 / 16 clients",
        "load avg",
    ]
    projected = "; ".join(
        f"{p['store']}: about {p['build_s']:,} s to build and {p['disk_gb']} GB on disk (measured "
        f"{p['measured_rate_chunks_per_s']:,} chunks/s at {p['from_chunks']:,})"
        for p in data["projection_1e6"]
    )
    return "\n".join(
        [
            f"Stores: FAISS files vs PostgreSQL + pgvector ({data['vectors']}; query embedding not included; "
            f"embedded server started in {data['server_start_s']} s)",
            markdown_table(headers, rows),
            f"10^6 chunks, extrapolated (n log n), not measured: {projected}",
        ]
    )


def extraction_table(data: Mapping[str, Any]) -> str:
    rows = [
        [row["sample"], row["units"], row["seconds"], f"{row['per_s_wall']} {row['unit']}/s",
         f"{row['per_s_cpu']} {row['unit']}/s"]
        for row in data["rows"]
    ]  # fmt: skip
    head = "Extraction (qa index's reading step, file hashing included): PDF pages, other documents per second"
    return "\n".join([head, markdown_table(["sample", "units", "seconds", "wall", "CPU"], rows)])


TABLES: tuple[tuple[str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("indexing", indexing_table),
    ("extraction", extraction_table),
    ("scale", scale_table),
    ("answers", answers_table),
    ("profile", profile_table),
    ("load", load_table),
    ("store", store_table),
)
