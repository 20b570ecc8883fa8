"""Hostile HTTP clients (issue 24, rows 6, 7, 8, 10, 16) and CORS by configuration (issue 25), against live servers.

tests/data/tiny with hashing embeddings; the LLM is a fake chat model that writes slowly.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from qa import Assistant, Quotes, Settings
from qa.cli import cli
from qa.engines.llm import LLMEngine
from qa.errors import IndexUnavailable
from tests.conftest import COVERAGE_RANKER, TINY
from tests.fakes import HashEmbeddings
from tests.servers import free_port, live_server
from ui.app import build_server
from ui.connections import RepeatFilter, bounded_protocol, install_repeat_filter
from ui.openai_api import add_api

pytestmark = pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated")

QUESTION = "How many villagers were evacuated from the slopes of Mount Kelud?"
CHAT = {"model": "qa-extractive", "messages": [{"role": "user", "content": QUESTION}]}
SECURITY = ("content-security-policy", "x-content-type-options", "x-frame-options")


@pytest.fixture(scope="module")
def tiny_assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    settings = Settings(
        corpus_dir=TINY,
        index_dir=tmp_path_factory.mktemp("hardening") / "index",
        engine="extractive",
        ranker_path=COVERAGE_RANKER,
    )
    return Assistant.load(settings, embedder=HashEmbeddings())


@pytest.fixture(scope="module")
def url(tiny_assistant: Assistant) -> Iterator[str]:
    with live_server(build_server(tiny_assistant, tiny_assistant.settings)) as served:
        yield served


# row 6: half-open connections, a cap per client, the log


def half_open(port: int, count: int, source: str) -> list[socket.socket]:
    """`count` connections from `source` that send the start of a request and never finish its headers."""
    held = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        held.append(sock)
    return held


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_half_open_connections_do_not_lock_others_out(
    tiny_assistant: Assistant, caplog: pytest.LogCaptureFixture
) -> None:
    """3,000 half-open connections from one address (127.0.0.2): beyond 64 they are closed at once, the others
    after the header timeout; a client on 127.0.0.1 is answered meanwhile; the log says it a few times only."""
    install_repeat_filter()
    protocol = bounded_protocol(per_client=64, header_timeout=1.5)
    caplog.set_level(logging.INFO, logger="ui.connections")
    with live_server(build_server(tiny_assistant, tiny_assistant.settings), http=protocol) as served:
        port = int(served.rsplit(":", 1)[1])
        held = half_open(port, 3000, "127.0.0.2")
        try:
            reply = httpx.get(served + "/v1/models", timeout=10)  # answered (before: it timed out)
            assert reply.status_code == 200
            assert closed_by_server(held[-1], 1.0)  # over the cap: closed at once
            assert closed_by_server(held[0], 5.0)  # within the cap: closed at the header timeout
        finally:
            for sock in held:
                sock.close()
    lines = [r for r in caplog.records if r.name == "ui.connections"]
    assert 1 <= len(lines) <= 4, [r.getMessage() for r in lines]


def test_repeated_messages_are_logged_once_with_a_count() -> None:
    log = logging.getLogger("tests.repeat")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    log.addHandler(handler)
    now = [1000.0]
    log.addFilter(RepeatFilter(window=60, clock=lambda: now[0]))
    try:
        for _ in range(10_000):
            log.warning("Closed a connection from %s", "127.0.0.2")
        now[0] += 61
        log.warning("Closed a connection from %s", "127.0.0.2")
    finally:
        log.removeHandler(handler)
    assert len(records) == 2 and "repeated 9999 more times" in records[1].getMessage()


# row 7: a client that leaves stops its LLM work


class SlowModel(BaseChatModel):
    """A chat model that writes one piece every 50 ms (30 s in all) and counts what it wrote."""

    written: ClassVar[list[int]] = []
    reply: str = " ".join(["Officials said 12,000 villagers were evacuated [1]."] * 100)

    @property
    def _llm_type(self) -> str:
        return "slow-fake"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Iterator[Any]:
        for word in self.reply.split(" "):
            time.sleep(0.05)
            SlowModel.written.append(1)
            yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))


def test_a_request_whose_client_left_stops_its_llm_work(tiny_assistant: Assistant) -> None:
    settings = tiny_assistant.settings.replace(engine="auto", llm_max_tokens=10_000)
    engine = LLMEngine(SlowModel(), settings=settings, embedder=None)
    llm_assistant = Assistant(settings, tiny_assistant.index, tiny_assistant.embedder, {"llm": engine})
    app = FastAPI()
    add_api(app, llm_assistant)
    with live_server(app) as served:
        body = {**CHAT, "model": "qa-llm"}
        for _ in range(6):  # abandoned 50 ms after sending
            with pytest.raises(httpx.TimeoutException):
                httpx.post(served + "/v1/chat/completions", json=body, timeout=0.05)
        time.sleep(0.5)
        written = len(SlowModel.written)
        started = time.monotonic()
        reply = httpx.post(served + "/v1/chat/completions", json=CHAT, timeout=60)
        assert reply.status_code == 200 and time.monotonic() - started < 2.0
        time.sleep(0.5)
        assert len(SlowModel.written) - written <= 2  # nothing is still writing


def test_closing_an_llm_answer_stops_the_model(tiny_assistant: Assistant) -> None:
    """The engine's own stop: LangChain drained the model's stream when a chain ending in a parser was closed."""
    settings = tiny_assistant.settings.replace(engine="llm", llm_max_tokens=10_000)
    engine = LLMEngine(SlowModel(), settings=settings, embedder=None)
    llm_assistant = Assistant(settings, tiny_assistant.index, tiny_assistant.embedder, {"llm": engine})
    stream = llm_assistant.stream(QUESTION)
    first = next(stream)
    assert isinstance(first, Quotes)  # evidence first, then the model's pieces
    assert isinstance(next(stream), str)
    written = len(SlowModel.written)
    stream.close()  # type: ignore[attr-defined]
    time.sleep(0.3)
    assert len(SlowModel.written) - written <= 2


# row 8 and CORS: cross-site requests


def test_simple_cross_site_requests_cannot_reach_the_api(url: str) -> None:
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}, {}):
        reply = httpx.post(
            url + "/v1/chat/completions", content=httpx.Request("POST", url, json=CHAT).content, headers=headers
        )
        assert reply.status_code == 415 and reply.json()["error"]["code"] == "unsupported_media_type"
    evil = httpx.post(url + "/v1/chat/completions", json=CHAT, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers
    page = httpx.post(url + "/gradio_api/call/ask", json={"data": [QUESTION]}, headers={"Origin": "http://localhost:9"})
    assert page.status_code == 403
    own = httpx.post(url + "/v1/chat/completions", json=CHAT, headers={"Origin": url})  # the page's own origin
    assert own.status_code == 200 and "access-control-allow-origin" not in own.headers


def preflight(url: str, origin: str, path: str = "/v1/chat/completions") -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    return httpx.options(url + path, headers=headers)


def test_no_cross_origin_is_allowed_by_default(url: str) -> None:
    for path in ("/v1/chat/completions", "/", "/gradio_api/info"):
        reply = preflight(url, "http://localhost:3000", path)
        assert reply.status_code == 403 and not any(h.startswith("access-control-") for h in reply.headers), path


def test_cors_origins_are_allowed_exactly_on_preflight_and_response(tiny_assistant: Assistant) -> None:
    settings = tiny_assistant.settings.replace(cors_origins="http://localhost:3000,https://chat.example")
    with live_server(build_server(tiny_assistant, settings)) as served:
        for origin in ("http://localhost:3000", "https://chat.example"):
            reply = preflight(served, origin)
            assert reply.status_code == 204 and reply.headers["access-control-allow-origin"] == origin
            assert "POST" in reply.headers["access-control-allow-methods"]
            assert "access-control-allow-credentials" not in reply.headers
            answer = httpx.post(served + "/v1/chat/completions", json=CHAT, headers={"Origin": origin})
            assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == origin
            assert answer.headers["vary"] == "Origin"
        for origin in ("http://localhost:3001", "http://chat.example", "null"):
            assert preflight(served, origin).status_code == 403, origin
            refused = httpx.post(served + "/v1/chat/completions", json=CHAT, headers={"Origin": origin})
            assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers


# row 10: bodies JSON cannot read are 400 error objects with the security headers


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/ask", "/v1/responses"])
@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "qa-extractive", "k": ' + b"9" * 4301 + b"}",
        b"[" * 6000 + b"]" * 6000,
        b'{"question": ' + b"[" * 100_000,
    ],
    ids=["4301-digit integer", "6,000 levels", "100,000 open brackets"],
)
def test_unreadable_json_is_a_400_error_object(url: str, path: str, body: bytes) -> None:
    reply = httpx.post(url + path, content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and reply.headers["content-type"] == "application/json"
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert all(name in reply.headers for name in SECURITY)


def test_an_unexpected_error_is_still_json_with_the_headers(
    tiny_assistant: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(tiny_assistant, "stream", broken)
    with live_server(build_server(tiny_assistant, tiny_assistant.settings)) as served:
        reply = httpx.post(served + "/v1/chat/completions", json=CHAT)
    assert reply.status_code == 500 and reply.json()["error"]["type"] == "server_error"
    assert "a bug" not in reply.text and all(name in reply.headers for name in SECURITY)


# row 16: the low ones


def test_a_store_outage_is_503(tiny_assistant: Assistant, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise IndexUnavailable("The database at postgresql://qa@db/qa is down: start it.")

    monkeypatch.setattr(tiny_assistant, "stream", down)
    with live_server(build_server(tiny_assistant, tiny_assistant.settings)) as served:
        reply = httpx.post(served + "/v1/chat/completions", json=CHAT)
        asked = httpx.post(served + "/api/ask", json={"question": QUESTION})
    assert reply.status_code == 503 and asked.status_code == 503
    assert reply.json()["error"]["code"] == "index_unavailable"


def test_ask_names_the_bad_field(url: str) -> None:
    for body, param in (({"question": QUESTION, "k": 500}, "k"), ({"question": QUESTION, "history": 0}, "history")):
        reply = httpx.post(url + "/api/ask", json=body)
        assert reply.status_code == 400 and reply.json()["error"]["param"] == param, body


def test_the_schema_needs_the_key_and_no_other_schema_is_served(tiny_assistant: Assistant) -> None:
    settings = tiny_assistant.settings.replace(api_key="k" * 20)
    with live_server(build_server(tiny_assistant, settings)) as served:
        assert httpx.get(served + "/v1/openapi.json").status_code == 401
        schema = httpx.get(served + "/v1/openapi.json", headers={"Authorization": "Bearer " + "k" * 20})
        assert schema.status_code == 200 and "/v1/chat/completions" in schema.json()["paths"]
        for path in ("/openapi.json", "/docs", "/gradio_api/openapi.json"):
            assert httpx.get(served + path).status_code in (401, 404), path


def test_a_client_leaving_mid_body_logs_no_traceback(url: str, caplog: pytest.LogCaptureFixture) -> None:
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000\r\n\r\n" + b'{"model": '
        )
    time.sleep(0.5)
    assert httpx.get(url + "/v1/models").status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_serving_is_announced_only_once_the_port_is_bound(
    tiny_assistant: Assistant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("qa.cli.base.load_assistant", lambda settings: tiny_assistant)
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = CliRunner().invoke(cli, ["chat", "--port", str(port), "--engine", "extractive"])
    assert result.exit_code == 1 and "Serving" not in result.output
    assert f"Cannot listen on 127.0.0.1:{port}" in result.output and "Traceback" not in result.output
