"""The page's web surface against a real server on 127.0.0.1 (httpx), over tests/data/tiny with hashing embeddings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qa import Assistant, Settings
from tests.conftest import COVERAGE_RANKER, TINY
from tests.fakes import HashEmbeddings
from tests.servers import live_server

pytestmark = [
    # Gradio's queue computes usage statistics with a pandas option that pandas 3 deprecates.
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
]

QUESTION = "Which volcano erupted on the island of Java?"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """What `qa chat` serves (the page, its API and the guard) on a free loopback port."""
    from ui.app import build_server

    root = tmp_path_factory.mktemp("served")
    settings = Settings(corpus_dir=TINY, index_dir=root / "index", engine="extractive", ranker_path=COVERAGE_RANKER)
    with live_server(build_server(Assistant.load(settings, embedder=HashEmbeddings()))) as served:
        yield served


def call_ask(url: str, body: bytes) -> tuple[str, Any]:
    """POST /gradio_api/call/ask with a raw JSON body, then read the event stream: (event name, data)."""
    started = httpx.post(f"{url}/gradio_api/call/ask", content=body, headers={"content-type": "application/json"})
    assert started.status_code == 200, started.text
    event_id = started.json()["event_id"]
    with httpx.stream("GET", f"{url}/gradio_api/call/ask/{event_id}", timeout=60) as stream:
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event in {"complete", "error"}:
                return event, json.loads(line.removeprefix("data: "))
    raise AssertionError("the event stream ended without a result")


def test_every_response_carries_the_security_headers(url: str) -> None:
    for path in ("/", "/gradio_api/info", "/config", "/no-such-page"):
        response = httpx.get(url + path)
        policy = response.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy, path
        assert "connect-src 'self'" in policy and "object-src 'none'" in policy
        assert response.headers.get("x-frame-options") == "DENY"
        assert response.headers.get("x-content-type-options") == "nosniff"


def test_a_foreign_host_header_is_refused_on_loopback(url: str) -> None:
    """DNS rebinding: a hostile name resolving to 127.0.0.1 reaches the server with its own Host header."""
    port = url.rsplit(":", 1)[1]
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
        refused = httpx.get(url + "/config", headers={"host": host})
        assert refused.status_code == 400 and "Host" in refused.text
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert httpx.get(url + "/config", headers={"host": host}).status_code == 200


def test_uploads_and_monitoring_are_closed(url: str, tmp_path: Path) -> None:
    files = {"files": ("big.bin", b"\0" * 2_000_000, "application/octet-stream")}
    assert httpx.post(url + "/gradio_api/upload", files=files).status_code == 404
    assert httpx.post(url + "/gradio_api/upload", files={"files": ("a.txt", b"hi")}).status_code == 404
    for path in ("/monitoring", "/monitoring/summary", "/gradio_api/monitoring/summary", "/gradio_api/upload_progress"):
        assert httpx.get(url + path).status_code == 404, path


def test_request_bodies_are_capped(url: str) -> None:
    """A 5 MB question or a 1.9 MB history is refused before it is parsed, answered or echoed."""
    huge_question = json.dumps({"data": ["x" * 5_000_000, "extractive", 0, []]}).encode()
    refused = httpx.post(
        f"{url}/gradio_api/call/ask", content=huge_question, headers={"content-type": "application/json"}
    )
    assert refused.status_code == 413 and len(refused.content) < 1000
    history = [{"role": "user", "content": "volcano " * 240_000}]
    huge_history = json.dumps({"data": [QUESTION, "extractive", 0, history]}).encode()
    assert httpx.post(f"{url}/gradio_api/queue/join", content=huge_history).status_code == 413


def test_ask_answers_and_refuses_bad_input_with_a_record(url: str) -> None:
    event, [record] = call_ask(url, json.dumps({"data": [QUESTION, "extractive", 0, []]}).encode())
    assert event == "complete" and record["citations"]
    event, [record] = call_ask(url, json.dumps({"data": [QUESTION, "extractive", 2.5, []]}).encode())
    assert event == "complete" and "k=2.5" in record["error"]
    surrogate = b'{"data": ["Who erupted \\ud800 there?", "extractive", 0, []]}'
    event, [record] = call_ask(url, surrogate)
    assert event == "complete" and "not valid Unicode" in record["error"]
    assert record["question"] == "Who erupted \ufffd there?"
    long_question = json.dumps({"data": ["volcano " * 20_000, "extractive", 0, []]}).encode()  # 160 KB: under the cap
    event, [record] = call_ask(url, long_question)
    assert event == "complete" and "limit is 2,000" in record["error"] and len(record["question"]) <= 201
    bad_history = json.dumps({"data": [QUESTION, "extractive", 0, [{"role": "user", "content": 3}]]}).encode()
    event, [record] = call_ask(url, bad_history)
    assert event == "complete" and "history" in record["error"]
