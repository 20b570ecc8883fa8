"""The corpus -> indexing figures (cold, warm, embedding overhead), answer latency per engine against the
textbook LangChain pipeline, and a profile of where one answer's time goes.
"""

from __future__ import annotations

import cProfile
import logging
import os
import pstats
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from qa import Answer, Assistant, Quotes, Settings
from qa.bench.scale import vector_statistics
from qa.bench.stats import BenchPlan, latency_summary, percentile, ratio, spread
from qa.embed import SentenceEmbedder, resolve_embed_model
from qa.errors import require
from qa.evaluation import LangChainBaseline, load_questions, peak_rss_mb
from qa.ingest import load_corpus
from qa.store import Store, build_faiss
from qa.text import count_tokens

logger = logging.getLogger(__name__)

LLM_SESSIONS = 5  # concurrent chat sessions asking the LLM engine in the answers section

Log = Callable[[str], None]
# Stages of one answer, as (label, module path suffix, function name) for the profile breakdown.
STAGES = (
    ("query embedding", "qa/embed.py", "_encode"),
    ("dense search (FAISS)", "qa/retrieve.py", "_dense"),
    ("lexical search (BM25)", "qa/retrieve.py", "_lexical"),
    ("evidence scoring", "qa/evidence.py", "pick"),
    ("abstention rule", "qa/decision.py", "judge"),
    ("engine", "qa/engines/extractive.py", "answer"),
    ("citation gate", "qa/cite.py", "finalize"),
)


class CountingEmbeddings(Embeddings):
    """Wraps embeddings to count the texts it is asked to embed (0 on a warm rebuild)."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.texts = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.texts += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.texts += 1
        return self.inner.embed_query(text)


@dataclass
class Session:
    """One loaded embedding model and one index of the corpus, shared by the benchmark sections."""

    settings: Settings
    embedder: SentenceEmbedder
    log: Log
    model_load_s: float
    index: Store | None = None
    _assistant: Assistant | None = field(default=None, repr=False)

    @classmethod
    def start(cls, settings: Settings, log: Log) -> Session:
        started = time.perf_counter()
        embedder = SentenceEmbedder(settings.embed_model)
        return cls(settings, embedder, log, round(time.perf_counter() - started, 2))

    def assistant(self) -> Assistant:
        if self._assistant is None:
            self._assistant = Assistant.load(self.settings, embedder=self.embedder)
            self.index = self._assistant.index
        return self._assistant

    def reference_statistics(self, plan: BenchPlan) -> dict[str, float]:
        """Cosine statistics of MiniLM on the real corpus and questions, to compare the synthetic vectors with."""
        index = self.assistant().index
        vectors = index.vectors("chunks", range(len(index.chunks)))
        asked = [q.question for q in load_questions(plan.questions, self.settings.corpus_dir)]
        return vector_statistics(
            vectors, [c.source for c in index.chunks], np.asarray(self.embedder.embed_documents(asked), dtype="float32")
        )

    def indexing(self, *, repeats: int) -> dict[str, Any]:
        """Cold builds (fresh folder; best of `repeats`), a warm rebuild, and our embedding vs bare encode."""
        self.log("indexing: cold and warm builds of the corpus")
        documents = load_corpus(self.settings.corpus_dir)
        tokens = sum(count_tokens(d.text) for d in documents)
        cold = [self._build(fresh=True, last=i == repeats - 1) for i in range(repeats)]
        warm = self._build(fresh=False, last=True)
        best = min(cold, key=lambda run: run["seconds"])
        index = self.index or self.assistant().index
        texts = [index.text(c) for c in index.chunks] + [index.text(s) for s in index.sentences]
        encode = self._encode_ratio(texts, repeats)
        counts = index.manifest["counts"]
        return {
            "documents": len(documents),
            "tokens": tokens,
            "chunks": counts["chunks"],
            "sentences": counts["sentences"],
            "model_load_s": self.model_load_s,
            "cold": {
                **best,
                "documents_per_s": _rate(len(documents), best["seconds"]),
                "tokens_per_s": _rate(tokens, best["seconds"]),
                "runs_s": [r["seconds"] for r in cold],
            },
            "warm": {**warm, "documents_per_s": _rate(len(documents), warm["seconds"])},
            "embedding": {**encode, "cold_build_texts_per_s": _rate(best["embedded"], best["seconds"])},
        }

    def _build(self, *, fresh: bool, last: bool) -> dict[str, Any]:
        target = self.settings.index_dir if last else self.settings.index_dir.with_name("cold-scratch")
        if fresh:
            shutil.rmtree(target, ignore_errors=True)
        counter = CountingEmbeddings(self.embedder)
        started = time.perf_counter()
        index = build_faiss(self.settings.replace(index_dir=target), embedder=counter)
        seconds = round(time.perf_counter() - started, 3)
        if last:
            self.index = index
        else:
            shutil.rmtree(target, ignore_errors=True)
        return {"seconds": seconds, "embedded": counter.texts}

    def _encode_ratio(self, texts: list[str], repeats: int) -> dict[str, Any]:
        """Texts/s of our `embed` and of a bare SentenceTransformer.encode of the same texts, interleaved."""
        sentence_transformers = require("sentence_transformers", "pip install sentence-transformers")
        bare = sentence_transformers.SentenceTransformer(
            str(resolve_embed_model(self.settings.embed_model)), device="cpu", local_files_only=True
        )
        ours_s, bare_s = [], []
        for _ in range(repeats):
            ours_s.append(_timed(lambda: self.embedder.embed_documents(texts)))
            bare_s.append(
                _timed(
                    lambda: bare.encode(
                        texts, batch_size=self.embedder.batch_size, normalize_embeddings=True, show_progress_bar=False
                    )
                )
            )
        ours, plain = _rate(len(texts), min(ours_s)), _rate(len(texts), min(bare_s))
        return {
            "texts": len(texts),
            "ours_texts_per_s": ours,
            "bare_encode_texts_per_s": plain,
            "ratio_ours_to_bare": ratio(ours, plain),
        }

    def answers(self, plan: BenchPlan) -> dict[str, Any]:
        """Latency and time to first piece per engine, and the textbook pipeline on the same questions."""
        assistant = self.assistant()
        asked = [q.question for q in load_questions(plan.questions, self.settings.corpus_dir)]
        self.log("answers: start-up (the warm-up `qa chat` runs before serving)")
        startup = {"embed_model_load_s": self.model_load_s, "warm_up_ms": assistant.warm_up()}
        rows = []
        for engine in assistant.engine_names():
            count = plan.answer_questions if engine == "extractive" else plan.llm_questions
            self.log(f"answers: {count} questions with the {engine} engine")
            rows.append({"engine": engine, **_time_answers(assistant, spread(asked, count), engine)})
            if engine == "llm":  # one model answers one question at a time: what N chat sessions wait for
                sessions = LLM_SESSIONS
                self.log(f"answers: the same questions from {sessions} concurrent sessions with the {engine} engine")
                timed = _time_concurrently(assistant, spread(asked, count), engine, sessions)
                rows.append({"engine": f"{engine}, {sessions} sessions", **timed})
        self.log("answers: the textbook LangChain pipeline")
        started = time.perf_counter()
        baseline = LangChainBaseline(assistant.documents, self.embedder)
        build_s = round(time.perf_counter() - started, 3)
        base_row = {
            "engine": "langchain-textbook",
            "build_s": build_s,
            **_time_answers(baseline, spread(asked, plan.answer_questions), None),
        }
        ours = rows[0]
        return {
            "rows": [*rows, base_row],
            "ratios_ours_extractive_to_textbook": {
                "p50": ratio(ours["latency"]["p50_ms"], base_row["latency"]["p50_ms"]),
                "p95": ratio(ours["latency"]["p95_ms"], base_row["latency"]["p95_ms"]),
                "ttft_p50": ratio(ours["ttft"]["p50_ms"], base_row["ttft"]["p50_ms"]),
            },
            "bench_process_peak_rss_mb": peak_rss_mb(),
            "startup": startup,
        }

    def profile(self, plan: BenchPlan) -> dict[str, Any]:
        """cProfile over extractive answers: the share of each stage, and the top functions by own time."""
        assistant = self.assistant()
        asked = spread([q.question for q in load_questions(plan.questions, self.settings.corpus_dir)], 20)
        self.log(f"profile: {len(asked)} extractive answers under cProfile")
        assistant.ask(asked[0], engine="extractive")  # warm caches first
        profiler = cProfile.Profile()
        profiler.enable()
        for question in asked:
            assistant.ask(question, engine="extractive")
        profiler.disable()
        result: dict[str, Any] = {
            "extractive": _stage_breakdown(pstats.Stats(profiler), len(asked)),
            "single_thread_query_fix": self._thread_fix(assistant, asked),
        }
        if "llm" in assistant.engines:
            answer = assistant.ask(asked[0], engine="llm")
            result["llm_one_answer_timings_ms"] = answer.timings_ms
        return result

    def _thread_fix(self, assistant: Assistant, asked: Sequence[str]) -> dict[str, Any]:
        """Extractive latency with query embedding on all torch threads (before the fix) and on one (after),
        interleaved in this run."""
        chosen = self.embedder.single_thread_up_to
        before: list[float] = []
        after: list[float] = []
        try:
            for _ in range(2):
                for limit, into in ((0, before), (chosen, after)):
                    self.embedder.single_thread_up_to = limit
                    for question in asked:
                        started = time.perf_counter()
                        assistant.ask(question, engine="extractive")
                        into.append((time.perf_counter() - started) * 1000)
        finally:
            self.embedder.single_thread_up_to = chosen
        summary = {"before": latency_summary(before), "after": latency_summary(after)}
        return {**summary, "p50_speedup": ratio(summary["before"]["p50_ms"], summary["after"]["p50_ms"])}


def _time_concurrently(answerer: Any, questions: Sequence[str], engine: str, sessions: int) -> dict[str, Any]:
    """`_time_answers` with the questions shared out over `sessions` threads asking at once (after a warm-up)."""
    list(answerer.stream(questions[0], engine=engine))
    shares = [list(questions[i::sessions]) for i in range(sessions)]
    with ThreadPoolExecutor(max_workers=sessions) as pool:
        parts = list(pool.map(lambda share: _time_answers(answerer, share, engine, warm_up=False), shares))
    merged: dict[str, Any] = {"load_average_1m": round(os.getloadavg()[0], 2)}
    for key in ("latency", "ttft", "evidence"):
        values = [v for part in parts for v in part["values_ms"][key]]
        merged[key] = latency_summary(values) if values else None
    merged["abstained"] = sum(part["abstained"] for part in parts)
    return merged


def _time_answers(
    answerer: Any, questions: Sequence[str], engine: str | None, *, warm_up: bool = True
) -> dict[str, Any]:
    """Wall latency and time to the first streamed piece, after one untimed warm-up question; for our engines also
    the median of each stage the answers report (retrieval, evidence, the model's first token, generation,
    verification) and the LLM's prompt and completion tokens."""
    kwargs = {"engine": engine} if engine else {}
    if warm_up:
        list(answerer.stream(questions[0], **kwargs))
    latencies, firsts, shown, answers = [], [], [], []
    for question in questions:
        started = time.perf_counter()
        first: float | None = None
        for item in answerer.stream(question, **kwargs):
            if isinstance(item, Answer):
                answers.append(item)
            elif isinstance(item, Quotes):  # the evidence, shown before the answer
                shown.append((time.perf_counter() - started) * 1000)
            elif first is None:
                first = time.perf_counter()
        ended = time.perf_counter()
        latencies.append((ended - started) * 1000)
        firsts.append(((first or ended) - started) * 1000)
    stages = sorted({key for answer in answers for key in answer.timings_ms})
    tokens = sorted({key for answer in answers for key in answer.usage})
    return {
        "latency": latency_summary(latencies),
        "ttft": latency_summary(firsts),
        "evidence": latency_summary(shown) if shown else None,
        "values_ms": {"latency": latencies, "ttft": firsts, "evidence": shown},
        "load_average_1m": round(os.getloadavg()[0], 2),
        "abstained": sum(answer.abstained for answer in answers),
        "stages_p50_ms": {
            key: round(percentile([a.timings_ms[key] for a in answers if key in a.timings_ms], 50), 2) for key in stages
        },
        "tokens": {
            key: {
                "p50": percentile([a.usage[key] for a in answers if key in a.usage], 50),
                "max": max(a.usage[key] for a in answers if key in a.usage),
                "answers": sum(key in a.usage for a in answers),
            }
            for key in tokens
        },
    }


def _stage_breakdown(stats: pstats.Stats, answers: int) -> dict[str, Any]:
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    total = sum(row[3] for (path, _, name), row in table.items() if path.endswith("qa/api.py") and name == "ask")
    stages = []
    for label, suffix, function in STAGES:
        seconds = sum(row[3] for (path, _, name), row in table.items() if path.endswith(suffix) and name == function)
        stages.append(
            {"stage": label, "ms_per_answer": round(seconds * 1000 / answers, 2), "share": ratio(seconds, total)}
        )
    own = sorted(table.items(), key=lambda item: -item[1][2])[:10]
    top = [
        {"function": f"{_relative_path(path)}:{line}({name})", "own_ms_per_answer": round(row[2] * 1000 / answers, 2)}
        for (path, line, name), row in own
    ]
    return {
        "answers": answers,
        "ms_per_answer": round(total * 1000 / answers, 2),
        "stages": stages,
        "top_own_time": top,
    }


def _relative_path(path: str) -> str:
    for marker in ("site-packages/", "/qa/"):
        if marker in path:
            return ("qa/" if marker == "/qa/" else "") + path.split(marker, 1)[1]
    return path


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _rate(count: float, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 else None
