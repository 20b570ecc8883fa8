"""Question (+ history) -> Answer: the `Assistant` ties index, retrieval, evidence, engines and the citation gate."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping

from langchain_core.embeddings import Embeddings

from qa.cite import finalize
from qa.config import Settings
from qa.corpus import load_corpus
from qa.embed import SentenceEmbedder
from qa.engines.base import Engine, Request
from qa.engines.extractive import ExtractiveEngine
from qa.engines.llm import LLMEngine, make_llm_engine
from qa.errors import (
    CorpusError,
    IndexNotFound,
    IndexProblem,
    InvalidQuestion,
    LLMError,
    MissingDependency,
    ModelError,
    QAError,
)
from qa.evidence import Evidence, EvidencePicker
from qa.question import FollowUp, History, clean_question, resolve_follow_up, smalltalk_reply, standalone_question
from qa.retrieve import HybridRetriever
from qa.store import Index, build_index, load_index, stale_sources
from qa.types import Answer, Document, Passage, Progress, elapsed_ms, final_answer

logger = logging.getLogger(__name__)


class Assistant:
    """Answers questions about one indexed corpus. Load once, ask many times (thread-safe for reading)."""

    def __init__(
        self, settings: Settings, index: Index, embedder: Embeddings, engines: dict[str, Engine] | None = None
    ) -> None:
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.retriever = HybridRetriever(index=index, embedder=embedder, settings=settings)
        self.picker = EvidencePicker(index, settings)
        self.engines: dict[str, Engine] = {"extractive": ExtractiveEngine()}
        self.engines.update(engines or {})

    @classmethod
    def load(
        cls, settings: Settings | None = None, *, progress: Progress | None = None, embedder: Embeddings | None = None
    ) -> Assistant:
        """Load the index, building or refreshing it from the corpus when it is missing, stale or mismatched.

        `embedder` replaces the configured sentence-transformers model (any LangChain `Embeddings`).
        """
        settings = settings or Settings()
        embedder = embedder or SentenceEmbedder(settings.embed_model)
        index = open_index(settings, embedder=embedder, progress=progress)
        return cls(settings, index, embedder, llm_engines(settings, embedder))

    @property
    def documents(self) -> dict[str, Document]:
        return self.index.documents

    def engine_names(self) -> list[str]:
        return sorted(self.engines)

    def retrieve(self, question: str, *, k: int | None = None) -> list[Passage]:
        """The top `k` passages (chunks) for `question`, best first."""
        query = clean_question(question, max_chars=self.settings.max_question_chars)
        return self.retriever.passages(self.retriever.retrieve(query, k=k))

    def candidates(self, question: str, *, limit: int | None = None) -> list[Evidence]:
        """Every evidence sentence considered for `question` (up to `limit`), most likely to answer first, with
        the features the ranker read: what `qa fit` learns from and what the evaluation inspects."""
        query = clean_question(question, max_chars=self.settings.max_question_chars)
        retrieval = self.retriever.retrieve(query)
        return self.picker.pick(query, retrieval, limit=limit or self.settings.evidence_candidates)

    def ask(
        self, question: str, *, history: History | None = None, engine: str | None = None, k: int | None = None
    ) -> Answer:
        """Answer `question` with verified citations, or abstain."""
        return final_answer(self.stream(question, history=history, engine=engine, k=k))

    def stream(
        self, question: str, *, history: History | None = None, engine: str | None = None, k: int | None = None
    ) -> Iterator[str | Answer]:
        """Yield text pieces as the engine writes them, then the final, verified Answer."""
        started = time.perf_counter()
        cleaned = clean_question(question, max_chars=self.settings.max_question_chars)
        if k is not None and not 1 <= k <= 100:
            raise InvalidQuestion(f"k={k} passages is out of range: ask for 1 to 100.")
        if history is not None and not all(isinstance(turn, Mapping) for turn in history):
            raise InvalidQuestion('history must be a list of {"role": ..., "content": ...} messages.')
        reply = smalltalk_reply(cleaned, documents=len(self.documents))
        if reply is not None:
            yield Answer(cleaned, reply, False, (), (), {"total_ms": elapsed_ms(started)}, engine="smalltalk")
            return
        chosen = self._engine(engine)
        follow_up = self._standalone(cleaned, history, chosen)
        query = follow_up.query
        retrieval = self.retriever.retrieve(query, k=k)
        retrieved = time.perf_counter()
        evidence = self.picker.pick(
            query,
            retrieval,
            limit=max(self.settings.evidence_sentences, self.settings.evidence_candidates),
            follow_up=follow_up,
        )
        selected = self.picker.select(
            query, evidence, limit=self.settings.evidence_sentences, floor=self.settings.quote_floor
        )
        request = Request(
            follow_up.standalone,
            evidence,
            self.picker.judge(query, evidence),
            tuple(self.retriever.passages(retrieval)),
            self.documents,
            selected,
        )
        picked = time.perf_counter()
        answer: Answer | None = None
        try:
            for item in chosen.stream(request):
                if isinstance(item, Answer):
                    answer = item
                else:
                    yield item
        except LLMError as exc:
            if (engine or self.settings.engine) != "auto":
                raise
            # subtle: what was already streamed is replaced by the final answer (the page and CLI show the final one)
            logger.warning("The LLM failed (%s); answering with the extractive engine instead.", exc)
            answer = self.engines["extractive"].answer(request)
        if answer is None:
            raise QAError(f"Engine {chosen.name!r} returned no answer.")
        timings = {
            **answer.timings_ms,  # an engine may add its own (first_token_ms, generate_ms, ...)
            "retrieve_ms": elapsed_ms(started, retrieved),
            "evidence_ms": elapsed_ms(retrieved, picked),
            "answer_ms": elapsed_ms(picked),
            "total_ms": elapsed_ms(started),
        }
        yield finalize(dataclasses.replace(answer, question=cleaned, timings_ms=timings), self.documents)

    def _standalone(self, question: str, history: History | None, engine: Engine) -> FollowUp:
        """The question read in its conversation (settings.follow_ups): names, dates and quotes carried over from
        earlier turns; or the LLM's standalone rewrite when the llm engine answers; or the previous question joined."""
        follow_up = resolve_follow_up(question, history)
        if self.settings.follow_ups == "join":  # the simple join, with no other use of the conversation
            joined = standalone_question(question, history)
            return FollowUp(question, joined, joined, "", (), asks_new=False)
        if self.settings.follow_ups == "llm" and follow_up.exchanges and isinstance(engine, LLMEngine):
            try:
                rewritten = engine.rewrite(question, history or [])
            except LLMError as exc:  # the rewrite only helps retrieval: fall back to the conversation's context
                logger.warning("Could not rewrite the follow-up with the LLM: %s", exc)
                rewritten = None
            if rewritten:
                return dataclasses.replace(follow_up, query=rewritten, standalone=rewritten)
        return follow_up

    def _engine(self, name: str | None) -> Engine:
        name = name or self.settings.engine
        if name == "auto":
            name = "llm" if "llm" in self.engines else "extractive"
        if name not in self.engines:
            raise QAError(f"Engine {name!r} is not available here; available: {', '.join(self.engine_names())}.")
        return self.engines[name]


def llm_engines(settings: Settings, embedder: Embeddings) -> dict[str, Engine]:
    """{"llm": engine} when settings ask for it and it can run here; else a notice (for "llm": the error)."""
    if settings.engine == "extractive":
        return {}
    try:
        return {"llm": make_llm_engine(settings, embedder=embedder)}
    except (MissingDependency, ModelError) as exc:
        if settings.engine == "llm":
            raise
        logger.warning("The LLM engine is unavailable, so answers are extractive quotes: %s", exc)
        return {}


def open_index(settings: Settings, *, embedder: Embeddings | None = None, progress: Progress | None = None) -> Index:
    """The index at settings.index_dir, (re)built from settings.corpus_dir when missing, stale or mismatched."""
    try:
        index = load_index(settings.index_dir, settings)
    except IndexProblem as problem:
        if not settings.corpus_dir.is_dir():
            raise
        if isinstance(problem, IndexNotFound):
            logger.warning("No index at %s yet: building it from %s.", settings.index_dir, settings.corpus_dir)
        else:
            logger.warning("%s Rebuilding it from %s.", problem, settings.corpus_dir)
        return build_index(settings, embedder=embedder, progress=progress)
    try:
        documents = load_corpus(settings.corpus_dir)
    except CorpusError:
        logger.info("Corpus %s is not readable; using the index as built.", settings.corpus_dir)
        return index
    changed = stale_sources(index, documents)
    if changed:
        logger.warning("Index is stale (%d changed: %s); updating it.", len(changed), ", ".join(changed[:5]))
        return build_index(settings, documents=documents, embedder=embedder, progress=progress)
    return index
