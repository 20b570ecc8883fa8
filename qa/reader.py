"""(question, candidate sentences) -> P(each sentence answers the question), from the trained cross-encoder.

The weights live in `qa/models/reader/` (fp16 safetensors, tokenizer, `reader.json` with their sha256); `Reader.load`
checks the hash before loading, offline, and raises `ModelError` naming the fix when the files are missing or changed.
Score a shortlist (the ranker's top ~8 sentences): cost grows with the number of pairs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import ModelError, require

logger = logging.getLogger(__name__)

DEFAULT_READER = Path(__file__).parent / "models" / "reader"
MANIFEST = "reader.json"
FORMAT = "qa-reader v1"
# no reader ships today: the one trained here did not earn its place in the decision (qa/training/README.md)
FIX = "train one with `make train-reader`, or refit the ranker without it (`qa fit --no-reader`)"
_loaded: dict[tuple[Path, str], Reader] = {}  # (folder, sha256) -> reader: every Assistant of a process shares it
_loading = threading.Lock()


class Reader:
    """A cross-encoder over (question, sentence) pairs; `score` returns probabilities in [0, 1]."""

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int, path: Path) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.path = path

    @classmethod
    def load(cls, path: str | Path = DEFAULT_READER, *, threads: int | None = None) -> Reader:
        """The reader in `path`, after checking its weights against the sha256 in its manifest."""
        folder = Path(path)
        manifest = read_manifest(folder)
        weights = folder / str(manifest["weights"])
        if not weights.is_file():
            raise ModelError(f"Reader weights {weights} are missing: {FIX}.")
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest != manifest["sha256"]:
            raise ModelError(
                f"Reader weights {weights} do not match their manifest (sha256 {digest[:12]}…, expected "
                f"{str(manifest['sha256'])[:12]}…): the file was changed or damaged; {FIX}."
            )
        torch = require("torch", "pip install torch==2.13.0")
        transformers = require("transformers", "pip install 'sentence-transformers>=5,<7'")
        if threads:
            torch.set_num_threads(threads)
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(folder), local_files_only=True, dtype=torch.float32
            )
        except (OSError, ValueError) as exc:
            raise ModelError(f"Reader in {folder} could not be loaded ({exc}): {FIX}.") from exc
        model.eval()
        return cls(model, tokenizer, max_length=int(manifest["max_length"]), path=folder)

    @classmethod
    def shared(cls, path: str | Path = DEFAULT_READER) -> Reader:
        """The reader in `path`, loaded once per process (and again only when its weights' hash changes)."""
        folder = Path(path).resolve()
        key = (folder, str(read_manifest(folder)["sha256"]))
        with _loading:
            if key not in _loaded:
                _loaded[key] = cls.load(folder)
            return _loaded[key]

    def score(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """P(sentence answers `question`) for each sentence, in order (an empty array for no sentences)."""
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        torch = require("torch", "pip install torch==2.13.0")
        inputs = self.tokenizer(
            [question] * len(sentences),
            list(sentences),
            truncation="longest_first",
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )
        with torch.inference_mode():
            logits = self.model(**inputs).logits.reshape(-1)
        return np.asarray(torch.sigmoid(logits).numpy(), dtype=np.float32)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The reader's `reader.json`, checked for the fields `Reader.load` needs."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"No reader at {folder} ({MANIFEST} is missing): {FIX}.") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"Reader manifest {path} is unreadable ({exc}): {FIX}.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"Reader manifest {path} is not a {FORMAT!r} manifest: {FIX}.")
    for key in ("weights", "sha256", "max_length"):
        if key not in manifest:
            raise ModelError(f"Reader manifest {path} has no {key!r}: {FIX}.")
    return manifest
