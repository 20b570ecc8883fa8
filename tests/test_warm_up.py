"""`qa chat` warms the LLM before serving (issue 25): the model loads (and reads its fixed instructions) at start-up,
so the first answer costs what later ones do."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from click.testing import CliRunner
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from qa import Assistant, Settings
from qa.cli import cli
from qa.embed import SentenceEmbedder
from qa.engines.llm import LLMEngine
from tests.fakes import HashEmbeddings

QUESTION = "How many villagers were evacuated from the slopes of Mount Kelud?"


def counting_engine(settings: Settings, built: list[int]) -> LLMEngine:
    def factory() -> GenericFakeChatModel:
        built.append(1)
        return GenericFakeChatModel(messages=itertools.repeat("Officials said 12,000 villagers were evacuated [1]."))

    return LLMEngine(factory, settings=settings, embedder=None)


def test_warm_up_builds_the_model_once_before_the_first_question(tiny_settings: Settings) -> None:
    settings = tiny_settings.replace(engine="llm")
    base = Assistant.load(tiny_settings, embedder=HashEmbeddings())
    built: list[int] = []
    assistant = Assistant(settings, base.index, base.embedder, {"llm": counting_engine(settings, built)})
    timings = assistant.warm_up()
    assert set(timings) == {"llm"} and built == [1]
    assistant.ask(QUESTION)
    assert built == [1]  # the first question found the model loaded
    assert base.warm_up() == {}  # nothing to warm without a model


def test_qa_chat_warms_up_before_serving(tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = tiny_settings.replace(engine="llm")
    base = Assistant.load(tiny_settings, embedder=HashEmbeddings())
    built: list[int] = []
    assistant = Assistant(settings, base.index, base.embedder, {"llm": counting_engine(settings, built)})
    served: list[int] = []

    def serve(*args: Any, ready: Any = None, **kwargs: Any) -> None:
        served.append(len(built))  # what was built when serving began
        ready()

    monkeypatch.setattr("qa.cli.base.load_assistant", lambda settings: assistant)
    monkeypatch.setattr("ui.app.main", serve)
    result = CliRunner().invoke(cli, ["chat", "--engine", "llm"])
    assert result.exit_code == 0, result.output
    assert served == [1] and "Warmed up the llm engine" in result.output and "Serving" in result.output


def test_qa_mcp_warms_up_after_loading_without_holding_the_tools(tiny_settings: Settings) -> None:
    pytest.importorskip("mcp")
    from ui.mcp_server import Loading

    settings = tiny_settings.replace(engine="llm")
    base = Assistant.load(tiny_settings, embedder=HashEmbeddings())
    built: list[int] = []
    assistant = Assistant(settings, base.index, base.embedder, {"llm": counting_engine(settings, built)})
    loading = Loading(lambda: assistant)
    assert loading.get() is assistant
    deadline = time.monotonic() + 10
    while not built and time.monotonic() < deadline:
        time.sleep(0.05)
    assert built == [1]


@pytest.mark.slow
def test_real_llm_first_answer_after_warm_up(seeds_settings: Settings, embedder: SentenceEmbedder) -> None:
    pytest.importorskip("llama_cpp")
    assistant = Assistant.load(seeds_settings.replace(engine="llm"), embedder=embedder)
    if "llm" not in assistant.engines:
        pytest.skip("the local model is not here (make model)")
    warm = assistant.warm_up()["llm"]
    started = time.perf_counter()
    answer = assistant.ask("Where did Wang Yi hold talks with Mullah Abdul Ghani Baradar?", engine="llm")
    first = (time.perf_counter() - started) * 1000
    print(f"LLM warm-up {warm:.0f} ms; first answer {first:.0f} ms ({answer.timings_ms})")
    assert answer.citations
    assert answer.timings_ms.get("first_token_ms", 0) < warm  # the load is not in the first answer
