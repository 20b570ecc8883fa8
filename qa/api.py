"""Question (+ history) -> Answer: the `Assistant` ties index, retrieval, evidence, engines and the citation gate."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from langchain_core.embeddings import Embeddings

from qa.cite import finalize, make_citation, place
from qa.config import Settings
from qa.conversation import FollowUp, History, clean_history, resolve_follow_up, standalone_question
from qa.decision import Decision, SentenceScorer, load_ranker, load_reader
from qa.embed import SentenceEmbedder
from qa.engines import AUTO, FALLBACK, Engine, Request, Rewriter, choose, make_engines
from qa.engines.extractive import evidence_quotes, hedge, quote_instead
from qa.errors import InvalidQuestion, LLMError, QAError
from qa.evidence import EvidencePicker, select
from qa.originals import original_file, page_image
from qa.question import clean_question, smalltalk_reply
from qa.ranker import Ranker
from qa.retrieve import HybridRetriever
from qa.store import Store, check_owner, open_store
from qa.terms import TermStats
from qa.text import asks_for
from qa.types import Answer, Citation, Document, Evidence, Passage, Progress, Quotes, elapsed_ms, final_answer

logger = logging.getLogger(__name__)

MAX_K = 100  # passages one question may ask for


@dataclass(frozen=True)
class Pipeline:
    """One corpus snapshot and the stages reading it: a question is answered by one Pipeline from start to end."""

    index: Store
    retriever: HybridRetriever
    picker: EvidencePicker
    decision: Decision

    @classmethod
    def over(
        cls, index: Store, embedder: Embeddings, settings: Settings, ranker: Ranker, reader: SentenceScorer | None
    ) -> Pipeline:
        retriever = HybridRetriever(index=index, embedder=embedder, settings=settings)
        stats = TermStats(index)
        picker = EvidencePicker(index, settings, ranker.sentence, stats, reader=reader, reranker=ranker.rerank)
        return cls(index, retriever, picker, Decision(stats, ranker, settings))


class Assistant:
    """Answers questions about one indexed corpus. Load once, ask many times (thread-safe for reading).

    On a PostgreSQL store it moves to a corpus re-indexed by another process at the next question.
    """

    def __init__(
        self, settings: Settings, index: Store, embedder: Embeddings, engines: dict[str, Engine] | None = None
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.ranker = load_ranker(settings.ranker_path)  # loaded once: every pipeline over a new snapshot shares it
        self.reader = load_reader(self.ranker, settings.reader_path)  # None when the ranker reads no reader scores
        self.pipeline = Pipeline.over(index, embedder, settings, self.ranker, self.reader)
        self._reloading = threading.Lock()
        self.engines: dict[str, Engine] = make_engines(settings, embedder, models=False)
        self.engines.update(engines or {})

    @classmethod
    def load(
        cls, settings: Settings | None = None, *, progress: Progress | None = None, embedder: Embeddings | None = None
    ) -> Assistant:
        """Load the index, building or refreshing it from the corpus when it is missing, stale or mismatched.

        `embedder` replaces the configured sentence-transformers model (any LangChain `Embeddings`).
        """
        settings = settings or Settings()
        check_owner(settings)  # before loading any model: a wrong folder fails at once
        embedder = embedder or SentenceEmbedder(settings.embed_model)
        index = open_store(settings, embedder=embedder, progress=progress)
        return cls(settings, index, embedder, make_engines(settings, embedder))

    @property
    def index(self) -> Store:
        return self.pipeline.index

    @property
    def retriever(self) -> HybridRetriever:
        return self.pipeline.retriever

    @property
    def picker(self) -> EvidencePicker:
        return self.pipeline.picker

    @property
    def decision(self) -> Decision:
        return self.pipeline.decision

    @property
    def documents(self) -> Mapping[str, Document]:
        return self.pipeline.index.documents

    def citation(self, source: str, start: int, end: int, *, marker: int = 1) -> Citation:
        """A citation of document `source`'s text[start:end], with its pages and boxes (a PDF's); QAError for a
        span that is not in the corpus."""
        document = self.documents.get(source)
        try:
            if document is None:
                raise ValueError(f"no document {source!r} in this corpus")
            return place(make_citation(document, start, end, marker), document)
        except ValueError as exc:
            raise QAError(f"Cannot cite {source}[{start}:{end}]: {exc}.") from exc

    def original(self, source: str) -> Path:
        """The corpus file document `source` was read from (QAError if it is not there, or outside the corpus)."""
        return original_file(self.settings.corpus_dir, self.documents, source)

    def page_image(self, source: str, page: int) -> bytes:
        """Page `page` (1-based) of PDF document `source`, rendered as a PNG (cached)."""
        return page_image(self.original(source), self.documents[source], page)

    def current(self) -> Pipeline:
        """The pipeline over the store's latest corpus (re-read when another process re-indexed it)."""
        with self._reloading:
            newer = self.pipeline.index.newer()
            if newer is not None:
                logger.info("The index at %s was rebuilt: answering from the new corpus.", newer.location)
                self.pipeline = Pipeline.over(newer, self.embedder, self.settings, self.ranker, self.reader)
            return self.pipeline

    def engine_names(self) -> list[str]:
        return sorted(self.engines)

    def warm_up(self) -> dict[str, float]:
        """Load what the engines load on first use (the LLM's weights and its fixed instructions), so the first
        question costs what later ones do; milliseconds per engine warmed. A model that fails is logged, not
        raised: its questions will say so (or fall back to quotes under `auto`)."""
        timings: dict[str, float] = {}
        for name, engine in self.engines.items():
            warm = getattr(engine, "warm_up", None)
            if warm is None:
                continue
            started = time.perf_counter()
            try:
                warm()
            except QAError as exc:
                logger.warning("Could not warm up the %s engine: %s", name, exc)
                continue
            timings[name] = elapsed_ms(started)
        return timings

    def retrieve(self, question: str, *, k: int | None = None) -> list[Passage]:
        """The top `k` passages (chunks) for `question`, best first."""
        query = clean_question(question, max_chars=self.settings.max_question_chars)
        retriever = self.current().retriever
        return retriever.passages(retriever.retrieve(query, k=check_k(k)))

    def candidates(self, question: str, *, limit: int | None = None) -> list[Evidence]:
        """Every evidence sentence considered for `question` (up to `limit`), most likely to answer first, with
        the features the ranker read: what `qa fit` learns from and what the evaluation inspects."""
        query = clean_question(question, max_chars=self.settings.max_question_chars)
        pipeline = self.current()
        retrieval = pipeline.retriever.retrieve(query)
        return pipeline.picker.pick(query, retrieval, limit=limit or self.settings.evidence_candidates)

    def ask(
        self, question: str, *, history: History | None = None, engine: str | None = None, k: int | None = None
    ) -> Answer:
        """Answer `question` with verified citations, or abstain."""
        return final_answer(self.stream(question, history=history, engine=engine, k=k))

    def stream(
        self, question: str, *, history: History | None = None, engine: str | None = None, k: int | None = None
    ) -> Iterator[str | Quotes | Answer]:
        """Yield the chosen evidence first (a `Quotes`, when the question is answered from the articles), then the
        text pieces the engine writes (a draft: the LLM's may lose sentences at verification), then the final,
        verified Answer."""
        started = time.perf_counter()
        cleaned = clean_question(question, max_chars=self.settings.max_question_chars)
        k = check_k(k)
        if history is not None:
            history = clean_history(
                history, max_turns=self.settings.max_history_turns, max_chars=self.settings.max_question_chars
            )
        pipeline = self.current()
        documents = pipeline.index.documents
        reply = smalltalk_reply(cleaned, documents=len(documents))
        if reply is not None:
            yield Answer(cleaned, reply, False, (), (), {"total_ms": elapsed_ms(started)}, engine="smalltalk")
            return
        chosen = self._engine(engine)
        follow_up = self._standalone(cleaned, history, chosen)
        query = follow_up.query
        retrieval = pipeline.retriever.retrieve(query, k=k)
        retrieved = time.perf_counter()
        reading: dict[str, float] = {}
        evidence = pipeline.picker.pick(
            query,
            retrieval,
            limit=max(self.settings.evidence_sentences, self.settings.evidence_candidates),
            follow_up=follow_up,
            timings=reading,
        )
        selected = select(query, evidence, limit=self.settings.evidence_sentences, floor=self.settings.quote_floor)
        request = Request(
            follow_up.standalone,
            evidence,
            pipeline.decision.judge(query, evidence, asked=asks_for(follow_up.question)),
            tuple(pipeline.retriever.passages(retrieval)),
            documents,
            selected,
        )
        picked = time.perf_counter()
        shown: dict[str, float] = {}
        if request.verdict.answerable:  # evidence first: the quotes are ready long before a model has read them
            quotes = dataclasses.replace(evidence_quotes(request), question=cleaned)
            shown["quotes_ms"] = elapsed_ms(started)
            yield quotes
        answer: Answer | None = None
        try:
            for item in _hedged(request, chosen.name) if request.verdict.hedge else chosen.stream(request):
                if isinstance(item, Answer):
                    answer = item
                else:
                    yield item
        except LLMError as exc:
            if (engine or self.settings.engine) != AUTO:
                raise
            # subtle: what was already streamed is replaced by the final answer (the page and CLI show the final one)
            logger.warning("The LLM failed (%s); answering with the extractive engine instead.", exc)
            answer = quote_instead(request, label=FALLBACK)
        if answer is None:
            raise QAError(f"Engine {chosen.name!r} returned no answer.")
        timings = {
            **answer.timings_ms,  # an engine may add its own (first_token_ms, generate_ms, ...)
            **shown,
            "retrieve_ms": elapsed_ms(started, retrieved),
            "evidence_ms": elapsed_ms(retrieved, picked),  # the reader's share included
            **reading,  # reader_ms: the reader scoring the shortlist
            "answer_ms": elapsed_ms(picked),
            "total_ms": elapsed_ms(started),
        }
        confidence = round(request.verdict.probability, 4)
        yield finalize(
            dataclasses.replace(answer, question=cleaned, timings_ms=timings, confidence=confidence), documents
        )

    def _standalone(self, question: str, history: History | None, engine: Engine) -> FollowUp:
        """The question read in its conversation (settings.follow_ups): names, dates and quotes carried over from
        earlier turns; or the LLM's standalone rewrite when the llm engine answers; or the previous question joined."""
        follow_up = resolve_follow_up(question, history)
        if self.settings.follow_ups == "join":  # the simple join, with no other use of the conversation
            joined = standalone_question(question, history)
            return FollowUp(question, joined, joined, "", (), asks_new=False)
        if self.settings.follow_ups == "llm" and follow_up.exchanges and isinstance(engine, Rewriter):
            try:
                rewritten = engine.rewrite(question, history or [])
            except LLMError as exc:  # the rewrite only helps retrieval: fall back to the conversation's context
                logger.warning("Could not rewrite the follow-up with the LLM: %s", exc)
                rewritten = None
            if rewritten:
                return dataclasses.replace(follow_up, query=rewritten, standalone=rewritten)
        return follow_up

    def _engine(self, name: str | None) -> Engine:
        name = choose(name, self.settings, self.engine_names())
        if name not in self.engines:
            raise QAError(f"Engine {name!r} is not available here; available: {', '.join(self.engine_names())}.")
        return self.engines[name]


def _hedged(request: Request, engine: str) -> Iterator[str | Answer]:
    """The hedge (`qa.decision`: answerable, not confidently) as a stream: its text, then the Answer."""
    answer = hedge(request, engine=engine)
    yield answer.text
    yield answer


def check_k(k: object) -> int | None:
    """`k` passages as asked (None: the configured default); refuse anything but a whole number from 1 to 100."""
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidQuestion(f"k={k!r} passages is out of range: ask for a whole number from 1 to {MAX_K}.")
    return k
