"""Named configurations x questions -> scored Records, summaries per split and the abstention trade-off curve.

A configuration is `Settings` overrides plus an engine; `baseline` is the textbook LangChain pipeline.
Configurations that share the index reuse the loaded one; other chunk sizes get their own index next to it.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from qa import Answer, Assistant, Document, Passage, Progress, QAError, Quotes, Settings
from qa.engines import ENGINES, FALLBACK
from qa.evaluation.baseline import LangChainBaseline
from qa.evaluation.confidence import confidence_summary, risk_summary
from qa.evaluation.metrics import Record, score, summarize
from qa.evaluation.questions import Question

logger = logging.getLogger(__name__)

INDEX_SHAPE = ("embed_model", "chunk_tokens", "overlap_tokens")  # settings an index is built with
INDEX_FIELDS = ("corpus_dir", "index_dir", *INDEX_SHAPE)
RETRIEVE_K = 10  # passages ranked for the retrieval metrics (recall@10)
SEEDS_SPLITS = ("dev", "test")  # "all" sums these; the second corpus stays its own row
CURVE_SETTING = "abstain_threshold"  # the curve moves the decision's threshold on P(answerable)
CURVE_THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Configuration:
    name: str
    description: str
    engine: str = FALLBACK  # an engine of qa.engines.ENGINES, or "baseline"
    overrides: Mapping[str, Any] = field(default_factory=dict)


CONFIGURATIONS = {
    c.name: c
    for c in (
        *(
            Configuration(name, f"ours: hybrid retrieval, {spec.description}", engine=name)
            for name, spec in ENGINES.items()
        ),
        Configuration("dense", "ours, extractive, dense (FAISS) retrieval only", overrides={"retrieval": "dense"}),
        Configuration("lexical", "ours, extractive, BM25 retrieval only", overrides={"retrieval": "lexical"}),
        Configuration(
            "chunks-80",
            "ours, extractive, 80-token chunks",
            overrides={"chunk_tokens": 80, "overlap_tokens": 20},
        ),
        Configuration(
            "chunks-240",
            "ours, extractive, 240-token chunks",
            overrides={"chunk_tokens": 240, "overlap_tokens": 60},
        ),
        Configuration("k3", "ours, extractive, 3 passages", overrides={"k": 3}),
        Configuration("k10", "ours, extractive, 10 passages", overrides={"k": 10}),
        Configuration(
            "baseline",
            "LangChain textbook: 1000-char chunks, FAISS top-4, chunks as answer",
            engine="baseline",
        ),
        Configuration(
            "extractive-join",
            "ours, extractive, follow-ups read by joining the previous question (no other use of the conversation)",
            overrides={"follow_ups": "join"},
        ),
        Configuration(
            "llm-rewrite",
            "ours, local LLM answer, follow-ups rewritten as standalone questions by the LLM",
            engine="llm",
            overrides={"follow_ups": "llm"},
        ),
    )
}
GROUPS = {
    "hybrid-vs-dense": ("extractive", "dense", "lexical"),
    "chunk-sizes": ("chunks-80", "extractive", "chunks-240"),
    "k": ("k3", "extractive", "k10"),
    "standard": ("extractive", "llm", "dense", "baseline"),
    "follow-ups": ("extractive", "extractive-join", "llm", "llm-rewrite"),
}


class Answerer(Protocol):
    @property
    def documents(self) -> Mapping[str, Document]: ...

    def retrieve(self, question: str, *, k: int | None = None) -> list[Passage]: ...

    def stream(self, question: str, *, engine: str | None = None) -> Iterator[str | Quotes | Answer]: ...


@dataclass
class Run:
    """Everything a report needs."""

    configurations: list[Configuration]
    splits: list[str]
    records: list[Record] = field(default_factory=list)
    summaries: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # configuration -> split -> metrics
    curve: dict[str, list[dict[str, float | None]]] = field(default_factory=dict)  # split -> points
    skipped: dict[str, str] = field(default_factory=dict)  # configuration -> reason
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    # split -> AURC and the risk-coverage points of the decision's confidence over forced extractive answers (the
    # curve's run at threshold 0, where every question the decision does not rule out is answered)
    risk_coverage: dict[str, dict[str, Any]] = field(default_factory=dict)


def expand(names: Sequence[str]) -> list[Configuration]:
    """Configuration and group names -> configurations, in order, without repeats."""
    unknown = [n for n in names if n not in CONFIGURATIONS and n not in GROUPS]
    if unknown:
        raise QAError(
            f"Unknown configuration(s) {', '.join(unknown)}: choose from {', '.join([*CONFIGURATIONS, *GROUPS])}."
        )
    ordered = [c for n in names for c in GROUPS.get(n, (n,))]
    return [CONFIGURATIONS[n] for n in dict.fromkeys(ordered)]


class Harness:
    """Runs configurations over questions, reusing the loaded index and models where the settings allow."""

    def __init__(self, base: Assistant, *, progress: Progress | None = None) -> None:
        self.base = base
        self.progress = progress
        self.done = 0
        self.total = 0
        model = next((name for name in base.engines if _needs_model(name)), None)
        self._loaded: dict[tuple[Any, ...], Assistant] = {_key(base.settings, model): base}

    def evaluate(
        self,
        configurations: Sequence[Configuration],
        questions: Sequence[Question],
        *,
        splits: Sequence[str],
        curve: bool = True,
    ) -> Run:
        """Answer and score every question with every configuration; summaries per split (and "all")."""
        run = Run(list(configurations), list(splits), settings=self.base.settings.record())
        run.settings["abstain_threshold"] = self.base.decision.threshold  # the operating point, fitted or set
        chosen = [q for q in questions if q.split in splits]
        self.total = len(chosen) * (len(configurations) + (len(self.thresholds()) if curve else 0))
        for configuration in configurations:
            records: list[Record] = []
            for corpus_dir, group in _by_corpus(chosen).items():
                try:
                    answerer = self.answerer(configuration, corpus_dir)
                except QAError as exc:
                    logger.warning("Skipping %s on %s: %s", configuration.name, corpus_dir, exc)
                    run.skipped[configuration.name] = str(exc)
                    self.tick(len(group))
                    continue
                records += self.answer_all(answerer, configuration, group)
            if records:
                run.records += records
                run.summaries[configuration.name] = _by_split(records, splits)
                for split, summary in run.summaries[configuration.name].items():
                    summary["confidence"] = confidence_summary(_in_split(records, split))
                run.peak_rss_mb[configuration.name] = peak_rss_mb()
        if curve:
            run.curve, forced = self.abstention_curve(chosen, splits)
            run.risk_coverage = {split: risk_summary(_in_split(forced, split)) for split in with_all(splits)}
        return run

    def answerer(self, configuration: Configuration, corpus_dir: Path | None = None) -> Answerer:
        """The assistant (or baseline) answering for `configuration` over `corpus_dir` (default: the base
        assistant's corpus); QAError when it cannot run here."""
        base = self.base.settings
        if corpus_dir is not None and corpus_dir.resolve() != base.corpus_dir.resolve():
            # subtle: another corpus gets its own index folder beside the base one
            base = base.replace(
                corpus_dir=corpus_dir, index_dir=base.index_dir.with_name(f"{base.index_dir.name}-{corpus_dir.name}")
            )
        if configuration.engine == "baseline":
            documents = self._assistant(base, FALLBACK).documents
            return LangChainBaseline(documents, self.base.embedder)
        settings = base.replace(**configuration.overrides)
        if any(getattr(settings, name) != getattr(self.base.settings, name) for name in INDEX_SHAPE):
            # subtle: another chunking gets its own index folder, never a rebuild of the base index
            index_dir = settings.index_dir.with_name(f"{settings.index_dir.name}-{configuration.name}")
            settings = settings.replace(index_dir=index_dir)
        loaded = self._assistant(settings, configuration.engine)
        if configuration.engine not in loaded.engine_names():
            raise QAError(
                f"engine {configuration.engine!r} is not available (loaded: "
                f"{', '.join(loaded.engine_names())}); see `qa fetch-model`."
            )
        if loaded.settings == settings:
            return loaded
        extra_engines = {name: engine for name, engine in loaded.engines.items() if name != "extractive"}
        return Assistant(settings, loaded.index, loaded.embedder, engines=extra_engines)

    def _assistant(self, settings: Settings, engine: str) -> Assistant:
        """A loaded assistant for the index `settings` describe that can answer with `engine`, sharing the
        embedding model and any language model already loaded."""
        model = engine if _needs_model(engine) else None
        ready = self._loaded.get(_key(settings, model)) or (
            None if model else next((a for k, a in self._loaded.items() if k[:-1] == _key(settings, None)[:-1]), None)
        )
        if ready is not None:
            return ready
        loaded_model = next((a.engines[model] for a in self._loaded.values() if model in a.engines), None)
        if model and loaded_model is None:
            loaded = Assistant.load(settings.replace(engine=model), embedder=self.base.embedder)
        else:
            loaded = Assistant.load(settings.replace(engine=FALLBACK), embedder=self.base.embedder)
            if model and loaded_model is not None:
                loaded = Assistant(loaded.settings, loaded.index, loaded.embedder, engines={model: loaded_model})
        self._loaded[_key(settings, model)] = loaded
        return loaded

    def answer_all(
        self,
        answerer: Answerer,
        configuration: Configuration,
        questions: Sequence[Question],
        *,
        retrieve: bool = True,
    ) -> list[Record]:
        records = []
        engine = None if configuration.engine == "baseline" else configuration.engine
        for question in questions:
            records.append(answer_one(answerer, question, configuration.name, engine=engine, retrieve=retrieve))
            self.tick()
        return records

    def abstention_curve(
        self, questions: Sequence[Question], splits: Sequence[str]
    ) -> tuple[dict[str, list[dict[str, Any]]], list[Record]]:
        """Accuracy, false refusals, abstention and refusal F1 as the abstention threshold moves (extractive); and
        the records of the lowest threshold (every question answered that the decision does not rule out)."""
        points: dict[str, list[dict[str, Any]]] = {split: [] for split in with_all(splits)}
        forced: list[Record] = []
        for threshold in self.thresholds():
            name = f"{CURVE_SETTING}={threshold}"
            configuration = Configuration(name, name, overrides={CURVE_SETTING: threshold})
            records = [
                record
                for corpus_dir, group in _by_corpus(questions).items()
                for record in self.answer_all(
                    self.answerer(configuration, corpus_dir), configuration, group, retrieve=False
                )
            ]
            forced = forced or records  # subtle: thresholds() is sorted, so the first run is the lowest (0.0)
            for split, summary in _by_split(records, splits).items():
                points[split].append(
                    {
                        "threshold": threshold,
                        "accuracy": summary["accuracy"],
                        "false_refusal": summary["false_refusal"],
                        "abstention_unanswerable": summary["abstention_unanswerable"],
                        "refusal_f1_rg": summary["refusal_f1_rg"],
                    }
                )
        return points, forced

    def thresholds(self) -> list[float]:
        """The curve's grid plus the current setting, so the current operating point is on it."""
        return sorted({*CURVE_THRESHOLDS, self.base.decision.threshold})

    def tick(self, count: int = 1) -> None:
        """Count `count` answers done and report progress."""
        self.done += count
        if self.progress:
            self.progress(self.done, self.total)


def answer_one(
    answerer: Answerer, question: Question, configuration: str, *, engine: str | None, retrieve: bool = True
) -> Record:
    """Retrieve (for retrieval metrics), then answer through `stream`, timing the first piece and the end."""
    documents = answerer.documents
    try:
        retrieved = answerer.retrieve(question.question, k=RETRIEVE_K) if retrieve else []
        started = time.perf_counter()
        first: float | None = None
        answer: Answer | None = None
        for item in answerer.stream(question.question, engine=engine):
            if isinstance(item, Answer):
                answer = item
            elif isinstance(item, str) and first is None:  # text, not the evidence shown before it
                first = time.perf_counter()
        ended = time.perf_counter()
        if answer is None:
            raise QAError("the answerer returned no Answer")
    except QAError as exc:
        failed = Answer(question.question, f"error: {exc}", True, (), ())
        record = score(question, failed, [], documents, configuration=configuration, latency_ms=0.0, ttft_ms=None)
        return dataclasses.replace(record, error=str(exc))
    ttft = (first - started) * 1000 if first is not None and engine is not None else None
    return score(
        question,
        answer,
        retrieved,
        documents,
        configuration=configuration,
        latency_ms=(ended - started) * 1000,
        ttft_ms=ttft,
    )


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (a high-water mark: it never goes down)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _in_split(records: Sequence[Record], split: str) -> list[Record]:
    return [r for r in records if (r.split in SEEDS_SPLITS if split == "all" else r.split == split)]


def _by_split(records: Sequence[Record], splits: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {split: summarize(_in_split(records, split)) for split in with_all(splits)}


def _by_corpus(questions: Sequence[Question]) -> dict[Path, list[Question]]:
    grouped: dict[Path, list[Question]] = {}
    for question in questions:
        grouped.setdefault(question.corpus_dir, []).append(question)
    return grouped


def with_all(splits: Sequence[str]) -> list[str]:
    """The splits, plus "all" (dev and test of the main set together) when both are there."""
    return [*splits, "all"] if set(SEEDS_SPLITS) <= set(splits) else list(splits)


def _key(settings: Settings, model: str | None) -> tuple[Any, ...]:
    """Loaded assistants by index and the language-model engine they hold (None: none)."""
    return (*(getattr(settings, name) for name in INDEX_FIELDS), model)


def _needs_model(engine: str) -> bool:
    spec = ENGINES.get(engine)
    return spec is not None and spec.needs_model
