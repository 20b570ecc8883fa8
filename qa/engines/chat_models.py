"""Settings -> a LangChain chat model: local GGUF on llama.cpp, or any OpenAI-compatible server by base URL.

`chat_model_factory` checks that the backend can work (packages present, model file verified) without loading
it; the returned factory builds the model on first use, so a 1 GB model loads only when a question needs it.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from qa.config import Settings
from qa.engines.models import resolve_model_path
from qa.errors import MissingDependency, ModelError, require

logger = logging.getLogger(__name__)

ChatModelFactory = Callable[[], BaseChatModel]
INSTALL = "pip install 'qa[llm]' (or `make install`)"


def chat_model_factory(settings: Settings) -> tuple[ChatModelFactory, str]:
    """A factory for the configured chat model and a label naming it; raises when it cannot work here."""
    if settings.llm_base_url:
        _check_installed("langchain_openai")
        return (lambda: openai_chat_model(settings)), f"{settings.llm_model} at {settings.llm_base_url}"
    _check_installed("llama_cpp", "langchain_community")
    path = resolve_model_path(settings)
    return (lambda: local_chat_model(settings, path)), f"{path.name} on llama.cpp"


def _check_installed(*modules: str) -> None:
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependency(f"The LLM engine needs {', '.join(missing)}: run {INSTALL}.")


def local_chat_model(settings: Settings, path: Path) -> BaseChatModel:
    """The GGUF at `path` on llama.cpp: greedy (temperature 0), seeded, bounded output, no console noise."""
    module = require("langchain_community.chat_models.llamacpp", INSTALL)
    logger.info("Loading %s (%d threads, %d context)", path, settings.llm_threads, settings.llm_context)
    try:
        model: BaseChatModel = module.ChatLlamaCpp(
            model_path=str(path),
            n_ctx=settings.llm_context,
            n_threads=settings.llm_threads,
            n_batch=min(512, settings.llm_context),  # the default of 8 makes reading the prompt ~3x slower
            seed=settings.llm_seed,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
            repeat_penalty=1.1,  # greedy decoding without it can loop ("the world would draw the world would ...")
            streaming=True,
            verbose=False,
        )
    except ValueError as exc:
        raise ModelError(f"llama.cpp could not load {path}: {exc}. Delete it and run `make model`.") from exc
    return model


def openai_chat_model(settings: Settings) -> BaseChatModel:
    """A chat model behind an OpenAI-compatible API (Ollama, vLLM, llama.cpp server); no retries."""
    module = require("langchain_openai", INSTALL)
    model: BaseChatModel = module.ChatOpenAI(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key or "none",  # local servers ignore the key but the client insists on one
        timeout=settings.llm_timeout_s,
        max_retries=0,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        seed=settings.llm_seed,
        streaming=True,
    )
    return model
