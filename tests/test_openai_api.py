"""The OpenAI-compatible API, live on 127.0.0.1 (uvicorn, the page mounted too) and driven by the `openai` package.

Fast tests serve tests/data/tiny with hashing embeddings, an API key, and an LLM engine whose server is down;
the slow test serves seeds/ with the real MiniLM and no key.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from qa import Assistant, QAError, Settings, answer_record
from qa.cli import cli
from qa.engines.llm import LLMEngine
from qa.text import MARKER, count_tokens
from tests.conftest import COVERAGE_RANKER, TINY
from tests.fakes import HashEmbeddings
from tests.servers import free_port, live_server
from ui.app import build_server, check_exposure
from ui.openai_api import add_api, parse_ask_request
from ui.openai_format import pieces
from ui.openai_request import SOURCES, parse_chat_request

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated")

KEY = "test-key-0123456789"
QUESTION = "How many villagers were evacuated from the slopes of Mount Kelud?"
UNANSWERABLE = "What is the capital of France?"
CHESS = "Who played the chess final between Ana Ruiz and Li Wei?"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Assistant]]:
    settings = Settings(
        corpus_dir=TINY,
        index_dir=tmp_path_factory.mktemp("api") / "index",
        engine="auto",
        llm_base_url=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there: the LLM backend is down
        api_key=KEY,
        ranker_path=COVERAGE_RANKER,
    )
    assistant = Assistant.load(settings, embedder=HashEmbeddings())
    with live_server(build_server(assistant, settings)) as url:
        yield url, assistant


@pytest.fixture()
def client(served: tuple[str, Assistant]) -> Any:
    return openai.OpenAI(base_url=served[0] + "/v1", api_key=KEY, max_retries=0, timeout=60)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def check_citations(citations: list[dict[str, Any]], assistant: Assistant) -> None:
    for citation in citations:
        text = assistant.documents[citation["source"]].text
        assert text[citation["start"] : citation["end"]] == citation["quote"], citation


def test_models_are_the_engines(client: Any) -> None:
    assert [model.id for model in client.models.list()] == ["qa-auto", "qa-extractive", "qa-llm"]
    assert client.models.retrieve("qa-extractive").owned_by == "qa"


def test_plain_completion_carries_exact_citations_and_honest_usage(client: Any, served: Any) -> None:
    response = client.chat.completions.create(model="qa-extractive", messages=[user(QUESTION)])
    message = response.choices[0].message
    extra = message.model_extra
    assert extra["abstained"] is False and extra["citations"]
    check_citations(extra["citations"], served[1])
    answer, sources = message.content.split(SOURCES)
    assert "12,000 villagers" in answer
    assert {int(m) for m in MARKER.findall(answer)} == {c["marker"] for c in extra["citations"]}
    for citation in extra["citations"]:
        assert f"[{citation['marker']}] {citation['source']} [{citation['start']}:{citation['end']}]" in sources
    assert response.choices[0].finish_reason == "stop" and response.model == "qa-extractive"
    assert response.usage.prompt_tokens == count_tokens(QUESTION)
    assert response.usage.completion_tokens == count_tokens(message.content)
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_stream_sends_the_verified_answer_then_citations(client: Any) -> None:
    plain = client.chat.completions.create(model="qa-extractive", messages=[user(QUESTION)]).choices[0].message
    stream = client.chat.completions.create(
        model="qa-extractive", messages=[user(QUESTION)], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    assert "".join(d.content or "" for d in deltas) == plain.content
    final = [c for c in chunks if c.choices][-1]
    assert final.choices[0].finish_reason == "stop"
    extra = final.choices[0].delta.model_extra
    assert extra["citations"] == plain.model_extra["citations"] and extra["abstained"] is False
    assert extra["annotations"] == [a.model_dump() for a in plain.annotations]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == count_tokens(plain.content)


def test_stream_is_server_sent_events_ending_with_done(served: Any) -> None:
    body = {"model": "qa-auto", "messages": [user(QUESTION)], "stream": True}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", served[0] + "/v1/chat/completions", json=body, headers=headers, timeout=60) as reply:
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
        events = [line for line in reply.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events) and events[-1] == "data: [DONE]"
    last = json.loads(events[-2][len("data: ") :])
    assert last["choices"][0]["finish_reason"] == "stop" and last["choices"][0]["delta"]["citations"]


def stream_events(served: Any, body: dict[str, Any]) -> list[Any]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", served[0] + "/v1/chat/completions", json=body, headers=headers, timeout=60) as reply:
        assert reply.status_code == 200
        lines = [line for line in reply.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[len("data: ") :]) for line in lines[:-1]]


def test_a_stream_opens_with_the_evidence_then_the_verified_answer(served: Any, client: Any) -> None:
    events = stream_events(served, {"model": "qa-extractive", "messages": [user(QUESTION)], "stream": True})
    first = events[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] == ""
    assert "12,000 villagers" in first["evidence"]["text"]
    check_citations(first["evidence"]["citations"], served[1])
    assert all("evidence" not in e["choices"][0]["delta"] for e in events[1:])
    assert len({e["id"] for e in events}) == 1
    chunks = list(client.chat.completions.create(model="qa-extractive", messages=[user(QUESTION)], stream=True))
    assert chunks[0].choices[0].delta.model_extra["evidence"]["citations"]  # the openai client keeps the field
    assert [c.choices[0].delta.role for c in chunks].count("assistant") == 1


def test_an_abstention_streams_without_evidence(served: Any) -> None:
    events = stream_events(served, {"model": "qa-extractive", "messages": [user(UNANSWERABLE)], "stream": True})
    assert all("evidence" not in e["choices"][0]["delta"] for e in events)
    assert events[-1]["choices"][0]["delta"]["abstained"] is True


def test_an_llm_failing_after_the_evidence_ends_the_stream_with_an_error_event(served: Any, client: Any) -> None:
    events = stream_events(served, {"model": "qa-llm", "messages": [user(QUESTION)], "stream": True})
    assert events[0]["choices"][0]["delta"]["evidence"]["citations"]
    assert events[-1]["error"]["code"] == "llm_unavailable" and "QA_LLM_BASE_URL" in events[-1]["error"]["message"]
    with pytest.raises(openai.APIError, match="QA_LLM_BASE_URL"):
        list(client.chat.completions.create(model="qa-llm", messages=[user(QUESTION)], stream=True))


def test_abstention_has_no_sources(client: Any) -> None:
    message = client.chat.completions.create(model="qa-extractive", messages=[user(UNANSWERABLE)]).choices[0].message
    assert message.model_extra == {"citations": [], "abstained": True} and message.annotations == []
    assert SOURCES not in message.content and "don't say" in message.content


def test_history_is_the_earlier_turns_without_their_sources(client: Any, served: Any) -> None:
    first = client.chat.completions.create(model="qa-extractive", messages=[user(CHESS)])
    messages = [
        {"role": "system", "content": "Be brief."},
        user(CHESS),
        {"role": "assistant", "content": first.choices[0].message.content},
        user([{"type": "text", "text": "How many games did it last?"}]),
    ]
    request = parse_chat_request({"model": "qa-extractive", "messages": messages}, served[1].engine_names())
    assert request.question == "How many games did it last?"
    assert [turn["role"] for turn in request.history] == ["user", "assistant"]
    assert SOURCES not in request.history[1]["content"] and "[1]" in request.history[1]["content"]
    reply = client.chat.completions.create(model="qa-extractive", messages=messages).choices[0].message
    assert "14 games" in reply.content and reply.model_extra["citations"]
    check_citations(reply.model_extra["citations"], served[1])


def test_api_ask_returns_the_ask_json_record(served: Any) -> None:
    url, assistant = served
    body = {"question": QUESTION, "engine": "extractive", "k": 3}
    reply = httpx.post(url + "/api/ask", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert reply.status_code == 200
    record = reply.json()
    expected = answer_record(assistant.ask(QUESTION, engine="extractive", k=3))
    assert record.keys() == expected.keys() and record.pop("timings_ms") and expected.pop("timings_ms")
    assert record == expected


def test_api_ask_history_may_say_what_an_answer_cited(served: Any) -> None:
    cited = [{"source": "volcano.txt", "start": 0, "end": 9, "quote": "..."}]
    turns = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "12,000 [1]", "citations": cited}]
    _, history, _, _ = parse_ask_request({"question": "And when?", "history": turns}, served[1])
    assert history == [turns[0], {**turns[1], "citations": cited}]
    reply = httpx.post(
        served[0] + "/api/ask",
        json={"question": "And when?", "engine": "extractive", "history": turns},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    assert reply.status_code == 200 and reply.json()["question"] == "And when?"


BAD_REQUESTS = [
    ("no messages", {"model": "qa-extractive", "messages": []}, 400, "messages"),
    ("wrong role", {"model": "qa-extractive", "messages": [{"role": "robot", "content": "hi"}]}, 400, None),
    ("last turn not user", {"model": "qa-extractive", "messages": [{"role": "assistant", "content": "hi"}]}, 400, None),
    ("content not text", {"model": "qa-extractive", "messages": [user({"image": 1})]}, 400, None),
    ("empty question", {"model": "qa-extractive", "messages": [user("   ")]}, 400, "messages"),
    ("oversized question", {"model": "qa-extractive", "messages": [user("why " * 1000)]}, 400, "messages"),
    ("not an object", ["qa-extractive"], 400, None),
    ("no model", {"messages": [user(QUESTION)]}, 400, "model"),
    ("unknown model", {"model": "gpt-4o", "messages": [user(QUESTION)]}, 404, "model"),
    ("unknown model, streamed", {"model": "gpt-4o", "messages": [user(QUESTION)], "stream": True}, 404, "model"),
    ("two choices", {"model": "qa-extractive", "messages": [user(QUESTION)], "n": 2}, 400, "n"),
    ("LLM down under qa-llm", {"model": "qa-llm", "messages": [user(QUESTION)]}, 503, None),
]


@pytest.mark.parametrize(("case", "body", "status", "param"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_openai_errors(served: Any, case: str, body: Any, status: int, param: str | None) -> None:
    reply = httpx.post(
        served[0] + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    )
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] == ("server_error" if status >= 500 else "invalid_request_error")
    if param:
        assert error["param"] == param


def test_the_openai_client_raises_the_matching_errors(served: Any, client: Any) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=served[0] + "/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="qa-nope", messages=[user(QUESTION)])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="qa-extractive", messages=[user("")])
    with pytest.raises(openai.InternalServerError) as down:
        client.chat.completions.create(model="qa-llm", messages=[user(QUESTION)])
    assert down.value.status_code == 503 and "QA_LLM_BASE_URL" in str(down.value)
    fallback = client.chat.completions.create(model="qa-auto", messages=[user(QUESTION)])  # auto falls back
    assert fallback.choices[0].message.model_extra["citations"]


def test_keys_bodies_and_json_are_checked_and_the_server_keeps_serving(served: Any, client: Any) -> None:
    url = served[0]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/api/ask")):
            reply = httpx.request(method, url + path, headers=headers, json={"question": QUESTION})
            assert reply.status_code == 401 and reply.headers["www-authenticate"] == "Bearer", (headers, path)
            assert reply.json()["error"]["code"] in {"missing_api_key", "invalid_api_key"}
    auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    huge = b'{"model": "qa-extractive", "messages": [' + b" " * (10 * 2**20) + b"]}"
    for path in ("/v1/chat/completions", "/api/ask"):
        reply = httpx.post(url + path, content=huge, headers=auth, timeout=60)
        assert reply.status_code == 413 and reply.json()["error"]["code"] == "request_too_large"
    chunked = httpx.post(url + "/api/ask", content=iter([b" " * 2**19] * 4), headers=auth, timeout=60)  # no length
    assert chunked.status_code == 413
    assert httpx.post(url + "/v1/chat/completions", content=b"{not json", headers=auth).status_code == 400
    for bad in ({"question": 3}, {"question": QUESTION, "engine": "gpt"}, {"question": QUESTION, "k": "5"}):
        assert httpx.post(url + "/api/ask", json=bad, headers=auth).status_code == 400, bad
    assert httpx.post(url + "/api/ask", json={"question": QUESTION, "k": 0}, headers=auth).status_code == 400
    still = client.chat.completions.create(model="qa-extractive", messages=[user(QUESTION)])
    assert still.choices[0].message.model_extra["citations"]


def test_with_a_key_the_page_asks_for_it(served: Any) -> None:
    assert httpx.get(served[0] + "/config").status_code == 401
    assert httpx.get(served[0] + "/", follow_redirects=True).status_code == 200  # the login form


def test_serving_beyond_loopback_needs_a_key() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_exposure(Settings(host=host))
    for host in ("0.0.0.0", "192.168.1.20", "example.org"):
        with pytest.raises(QAError, match="QA_API_KEY"):
            check_exposure(Settings(host=host))
        check_exposure(Settings(host=host, api_key="k"))
        check_exposure(Settings(host=host), insecure_no_key=True)
    assert "api_key" not in repr(Settings(api_key="secret")) and "secret" not in repr(Settings(api_key="secret"))


def test_cli_refuses_an_open_address_before_loading_anything(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--index-dir", str(tmp_path / "none"), "chat", "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "--insecure-no-key" in result.output
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("text", ["", "one", "a b  c\n\nd ", "x" * 100 + " y", 'Sources:\n- [1] a.txt [0:4]: "q"'])
def test_stream_pieces_join_back_exactly(text: str) -> None:
    assert "".join(pieces(text, size=8)) == text and all(pieces(text, size=8))


def test_a_stream_never_shows_what_the_citation_gate_drops(tmp_path: Path) -> None:
    """The LLM's draft has a filler sentence and a sentence citing a passage that does not exist; the gate drops
    both, and the stream carries only what survived."""
    settings = Settings(corpus_dir=TINY, index_dir=tmp_path / "index", engine="llm", ranker_path=COVERAGE_RANKER)
    embedder = HashEmbeddings()
    base = Assistant.load(settings.replace(engine="extractive"), embedder=embedder)
    evidence = "Officials said 12,000 villagers were evacuated from the slopes before dawn."
    draft = f"{evidence} [1] This is supported by evidence [1]. About 40,000 people fled to Surabaya [7]."
    model = GenericFakeChatModel(messages=itertools.repeat(draft))
    engine = LLMEngine(model, settings=settings.replace(llm_max_tokens=10_000), embedder=embedder)
    llm_assistant = Assistant(settings, base.index, embedder, {"llm": engine})
    app = FastAPI()
    add_api(app, llm_assistant)
    with live_server(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)
        plain = client.chat.completions.create(model="qa-llm", messages=[user(QUESTION)]).choices[0].message
        chunks = list(client.chat.completions.create(model="qa-llm", messages=[user(QUESTION)], stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == plain.content and streamed.split(SOURCES)[0] == f"{evidence.removesuffix('.')} [1]."
    assert "Surabaya" not in streamed and "supported by" not in streamed
    assert [c["marker"] for c in chunks[-1].choices[0].delta.model_extra["citations"]] == [1]


@pytest.mark.slow
def test_real_model_over_seeds_plain_and_streamed(assistant: Assistant) -> None:
    question = "Where did Wang Yi hold talks with Mullah Abdul Ghani Baradar?"
    with live_server(build_server(assistant)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)
        plain = client.chat.completions.create(model="qa-extractive", messages=[user(question)]).choices[0].message
        assert plain.model_extra["citations"] and not plain.model_extra["abstained"]
        check_citations(plain.model_extra["citations"], assistant)
        assert "Tianjin" in plain.content.split(SOURCES)[0]
        chunks = list(client.chat.completions.create(model="qa-auto", messages=[user(question)], stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == plain.content
        check_citations(chunks[-1].choices[0].delta.model_extra["citations"], assistant)
        follow = [user(question), {"role": "assistant", "content": plain.content}, user("What did he ask of them?")]
        reply = client.chat.completions.create(model="qa-extractive", messages=follow).choices[0].message
        assert reply.model_extra["citations"]
        check_citations(reply.model_extra["citations"], assistant)
