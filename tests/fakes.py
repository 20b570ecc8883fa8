"""Fakes implementing the real protocols (no MagicMock): a hashing embedder whose rankings can be worked out by hand."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import numpy as np

WORD = re.compile(r"\w+")


class HashEmbedder:
    """Bag of hashed lower-case words, normalised: texts sharing more words are closer."""

    name = "hash"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0  # texts embedded so far, to check that unchanged texts are not embedded again

    def embed(self, texts: Sequence[str], *, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), dtype="float32")
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower()):
                vectors[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            norm = np.linalg.norm(vectors[row])
            if norm:
                vectors[row] /= norm
        self.calls += len(texts)
        if progress:
            progress(len(texts), len(texts))
        return vectors
