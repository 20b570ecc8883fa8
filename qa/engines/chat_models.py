"""Settings -> a LangChain chat model: local GGUF on llama.cpp, or any OpenAI-compatible server by base URL.

`chat_model_factory` checks that the backend can work (packages present, model file verified) without loading
it; the returned factory builds the model on first use, so a 1 GB model loads only when a question needs it.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from qa.config import Settings
from qa.engines.models import resolve_model_path
from qa.errors import MissingDependency, ModelError, require

logger = logging.getLogger(__name__)

ChatModelFactory = Callable[[], BaseChatModel]
INSTALL = "pip install 'qa[llm]' (or `make install`)"
LLAMA_CPP = "langchain_community.chat_models.llamacpp"

# The answer's shape on llama.cpp (GBNF): words first, then one to three citation markers at the end, as
# prompts/answer.txt asks. Without it the 1.5B model often replied with a marker alone ("[1]"), which says nothing the
# verifier can keep, so the answer fell back to quotes. Issue 22, every 2nd dev question the decision answers (40
# answerable), with the prompt's false-premise line: right in the model's own words 14 -> 19, fallbacks to quotes
# 19 -> 7, false premises fixed 4/5 -> 4/5; p50 3.5 s -> 6.5 s (grammar sampling checks the whole vocabulary per
# token). The markers are a subset of qa.text.MARKER; the model sees at most 9 evidence sentences.
ANSWER_GRAMMAR = """root ::= [^\\[\\n] [^\\[\\n]{2,300} marker marker? marker?
marker ::= "[" [1-9] "]"
"""


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
    module = require(LLAMA_CPP, INSTALL)
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


def answer_format(model: BaseChatModel) -> Runnable[Any, Any]:
    """`model` held to ANSWER_GRAMMAR when it runs on llama.cpp (the only backend here that takes a grammar); any
    other chat model as it is."""
    module = sys.modules.get(LLAMA_CPP)
    if module is None or not isinstance(model, module.ChatLlamaCpp):
        return model
    shaped: Runnable[Any, Any] = model.bind(grammar=_answer_grammar())
    return shaped


@cache
def _answer_grammar() -> Any:
    grammar = require("llama_cpp", INSTALL).LlamaGrammar
    return grammar.from_string(ANSWER_GRAMMAR, verbose=False)


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
