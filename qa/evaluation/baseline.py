"""Documents -> the baseline Answer a textbook LangChain pipeline gives: the top-4 chunks, cited whole.

RecursiveCharacterTextSplitter (1000 characters, 200 overlap) + an in-memory LangChain FAISS store over the
same MiniLM embeddings, built the way a tutorial builds it. It never abstains. It is never saved (no pickle).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter

from qa import Answer, Citation, Document, Passage, QAError
from qa.errors import require


class LangChainBaseline:
    """What a user builds in an afternoon, scored with the same metrics as our pipeline."""

    name = "baseline"

    def __init__(
        self,
        documents: Mapping[str, Document],
        embeddings: Embeddings,
        *,
        chunk_size: int = 1000,
        chunk_overlap: int = 200,
        k: int = 4,
    ) -> None:
        if not isinstance(embeddings, Embeddings):  # e.g. a test's hashing fake
            raise QAError(f"The baseline needs LangChain Embeddings, not {type(embeddings).__name__}.")
        vectorstores = require("langchain_community.vectorstores", "pip install 'qa[eval]'")
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True
        )
        chunks = splitter.create_documents(
            [d.text for d in documents.values()], metadatas=[{"source": d.source} for d in documents.values()]
        )
        self.store: Any = vectorstores.FAISS.from_documents(chunks, embeddings)
        self.documents = documents
        self.chunks = len(chunks)
        self.k = k

    def retrieve(self, question: str, *, k: int | None = None) -> list[Passage]:
        """The top `k` chunks, best first (score: FAISS's L2 distance, negated so higher is better)."""
        found: list[tuple[LCDocument, float]] = self.store.similarity_search_with_score(question, k=k or self.k)
        return [_passage(document, -float(distance)) for document, distance in found]

    def ask(self, question: str) -> Answer:
        """The retrieved chunks as the answer, each cited as a whole."""
        started = time.perf_counter()
        passages = self.retrieve(question)
        citations = tuple(Citation(n, p.source, p.start, p.end, p.text) for n, p in enumerate(passages, start=1))
        text = "\n\n".join(f"{p.text} [{n}]" for n, p in enumerate(passages, start=1))
        timings = {"total_ms": round((time.perf_counter() - started) * 1000, 2)}
        return Answer(question, text, False, citations, tuple(passages), timings, engine=self.name)

    def stream(self, question: str, **_: Any) -> Iterator[str | Answer]:
        """No streaming: the whole answer at once (so time to first token equals latency)."""
        yield self.ask(question)


def _passage(document: LCDocument, score: float) -> Passage:
    start = int(document.metadata["start_index"])
    return Passage(
        str(document.metadata["source"]),
        start,
        start + len(document.page_content),
        document.page_content,
        round(score, 6),
    )
