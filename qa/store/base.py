"""What every store is: the `Store` protocol that retrieval and evidence read, and `Snapshot`, the records both
backends hold in memory (documents, sentences, chunks and the manifest describing them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from qa.types import Chunk, Document, Sentence

Kind = Literal["chunks", "sentences"]


@runtime_checkable
class Store(Protocol):
    """One consistent corpus as retrieval and evidence see it. Ids are positions in `chunks` / `sentences`."""

    @property
    def location(self) -> str:
        """The folder or the database URL (never with a password): for messages."""

    @property
    def manifest(self) -> Mapping[str, Any]: ...

    @property
    def documents(self) -> Mapping[str, Document]: ...

    @property
    def sentences(self) -> Sequence[Sentence]: ...

    @property
    def chunks(self) -> Sequence[Chunk]: ...

    def text(self, item: Sentence | Chunk) -> str:
        """The exact document slice of a sentence or chunk."""

    def search(self, kind: Kind, query: np.ndarray, count: int) -> list[int]:
        """Ids of the `count` chunks or sentences nearest to a unit `query` vector (inner product), best first."""

    def vectors(self, kind: Kind, ids: Sequence[int]) -> np.ndarray:
        """The stored unit vectors of `ids`, one row each, in the order given."""

    def lexical(self, query: str, count: int) -> list[int]:
        """Ids of at most `count` chunks sharing words with `query`, best first (none when no word matches)."""

    def newer(self) -> Store | None:
        """The store's current corpus when another process re-indexed it since this snapshot was read; else None.

        A FAISS index is read into memory once (a worker restarts to serve a rebuilt folder): always None there.
        """


@dataclass(frozen=True)
class Snapshot:
    """The records of one corpus, as every backend holds them in memory; ids are positions in the lists."""

    location: str  # the folder or the database URL without its password
    manifest: dict[str, Any]
    documents: dict[str, Document]
    sentences: list[Sentence]
    chunks: list[Chunk]

    def text(self, item: Sentence | Chunk) -> str:
        return self.documents[item.source].text[item.start : item.end]
