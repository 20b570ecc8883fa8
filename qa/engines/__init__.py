"""Answer engines: evidence sentences -> Answer. `extractive` needs no model; `llm` uses a chat model.

`registry` names them (what every consumer offers and chooses from), `base` is the interface. Engine modules are
imported only when an engine is built. Code outside this package uses these names only.
"""

from qa.engines.base import Engine, Request, Rewriter
from qa.engines.registry import (
    AUTO,
    AUTO_ORDER,
    CHOICES,
    ENGINES,
    FALLBACK,
    EngineSpec,
    answering_engine,
    build_engine,
    choose,
    fallback_label,
    make_engines,
)

__all__ = [
    "AUTO",
    "AUTO_ORDER",
    "CHOICES",
    "ENGINES",
    "FALLBACK",
    "Engine",
    "EngineSpec",
    "Request",
    "Rewriter",
    "answering_engine",
    "build_engine",
    "choose",
    "fallback_label",
    "make_engines",
]
