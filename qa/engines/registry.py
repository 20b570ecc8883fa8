"""The answer engines by name: what Settings, the CLI, the Python and HTTP APIs, the evaluation and the OpenAI
layer offer. Adding an engine is its module plus an entry in ENGINES.

Factories are named as "module:callable" and imported when an engine is built, so that reading the names (as
`Settings` does) loads no engine code and no model.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from qa.errors import MissingDependency, ModelError

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from qa.config import Settings
    from qa.engines.base import Engine

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineSpec:
    name: str
    description: str
    factory: str  # "module:callable", called with (settings, embedder), raising MissingDependency or ModelError
    needs_model: bool = False  # loads a language model that may be missing here: `auto` uses it when it can run
    writes: bool = False  # writes its own text, so an answer may fall back to quotes (`FALLBACK`)


ENGINES = {
    spec.name: spec
    for spec in (
        EngineSpec("extractive", "quotes the evidence sentences (no model)", "qa.engines.extractive:make_engine"),
        EngineSpec(
            "llm",
            "a local chat model writes from the evidence; its sentences are verified and cited by the pipeline",
            "qa.engines.llm:make_llm_engine",
            needs_model=True,
            writes=True,
        ),
    )
}
AUTO = "auto"  # the best engine that can run here, in AUTO_ORDER
# Best measured first. Extractive leads: on the held-out questions it answered more of them correctly than the LLM
# engine reading the same evidence (test split 0.56 vs 0.51, second corpus 0.32 vs 0.23; issue 22). The LLM stays
# one option away (`--engine llm`, the page's engine menu, the API's `qa-llm`). Reorder only on new measurements.
AUTO_ORDER = ("extractive", "llm")
CHOICES = (*ENGINES, AUTO)
FALLBACK = "extractive"  # answers with quotes when a writing engine's text does not survive, or its model fails


def make_engines(settings: Settings, embedder: Embeddings | None, *, models: bool = True) -> dict[str, Engine]:
    """The engines settings.engine allows that can run here, by name: every engine without a model; with `models`,
    one with a model when it is asked for (an error when it cannot run) or under `auto` (skipped with a warning)."""
    engines: dict[str, Engine] = {}
    for spec in ENGINES.values():
        if spec.needs_model and (not models or settings.engine not in (spec.name, AUTO)):
            continue
        try:
            engines[spec.name] = build_engine(spec, settings, embedder)
        except (MissingDependency, ModelError) as exc:
            if settings.engine == spec.name or not spec.needs_model:
                raise
            logger.warning("The %s engine is unavailable, so answers are extractive quotes: %s", spec.name, exc)
    return engines


def build_engine(spec: EngineSpec, settings: Settings, embedder: Embeddings | None) -> Engine:
    module, _, name = spec.factory.partition(":")
    factory = getattr(importlib.import_module(module), name)
    return cast("Engine", factory(settings, embedder))


def choose(name: str | None, settings: Settings, available: list[str]) -> str:
    """The engine that answers: `name`, else settings.engine; `auto` is the first of AUTO_ORDER available."""
    name = name or settings.engine
    if name == AUTO:
        return next((candidate for candidate in AUTO_ORDER if candidate in available), FALLBACK)
    return name


def fallback_label(engine: str) -> str:
    """How an answer of `engine` that fell back to quotes is labelled: "llm→extractive"."""
    return f"{engine}→{FALLBACK}"


def answering_engine(label: str) -> str:
    """The engine asked to answer, from an Answer's engine label ("llm→extractive" -> "llm")."""
    return label.split("→", 1)[0]
