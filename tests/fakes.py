"""Fakes implementing the real interfaces (no MagicMock): hashing embeddings, rankings worked out by hand."""

from __future__ import annotations

import hashlib
import re

import numpy as np
from langchain_core.embeddings import Embeddings

WORD = re.compile(r"\w+")


class HashEmbeddings(Embeddings):
    """LangChain `Embeddings` as a bag of hashed lower-case words, normalised: texts sharing more words are closer."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0  # texts embedded so far, to check that unchanged texts are not embedded again

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = np.zeros((len(texts), self.dim), dtype="float32")
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower()):
                vectors[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            norm = np.linalg.norm(vectors[row])
            if norm:
                vectors[row] /= norm
        self.calls += len(texts)
        return vectors.tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]
