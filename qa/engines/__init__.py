"""Answer engines: evidence sentences -> Answer. `extractive` needs no model; `llm` uses a chat model."""

from qa.engines.base import Engine, Request
from qa.engines.extractive import ExtractiveEngine

__all__ = ["Engine", "ExtractiveEngine", "Request"]
