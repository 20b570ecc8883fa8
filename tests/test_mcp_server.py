"""The MCP server driven by the SDK's own client: over stdio (a subprocess) and over streamable HTTP (loopback).

Fast tests run tests/mcp_fake_server.py (tiny corpus, hashing embeddings); the slow one runs `qa mcp` on seeds/.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from qa import Assistant, Document, Settings
from qa.ingest import load_corpus
from tests.conftest import COVERAGE_RANKER, ROOT, SEEDS, TINY
from tests.fakes import HashEmbeddings
from tests.servers import live_server

mcp = pytest.importorskip("mcp")
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from ui.mcp_server import article_uri, build_mcp, engine_choices  # noqa: E402

QUESTION = "How many villagers were evacuated from the slopes of Mount Kelud?"
Check = Callable[[Any], Awaitable[None]]


def over_stdio(arguments: list[str], check: Check, env: dict[str, str] | None = None) -> float:
    """Start the server as a subprocess, open a client session over its stdio, run `check(session)`; the seconds
    from starting the process to the answer to `initialize`."""
    params = StdioServerParameters(command=sys.executable, args=arguments, cwd=str(ROOT), env=env)
    handshake: list[float] = []

    async def run() -> None:
        with tempfile.TemporaryFile("w+") as errors, anyio.fail_after(600):
            started = time.perf_counter()
            async with stdio_client(params, errlog=errors) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                handshake.append(time.perf_counter() - started)
                await check(session)

    anyio.run(run)
    return handshake[0]


def check_citations(record: dict[str, Any], documents: dict[str, Document]) -> None:
    assert record["citations"] and not record["abstained"]
    for c in record["citations"]:
        assert documents[c["source"]].text[c["start"] : c["end"]] == c["quote"]


async def call(session: Any, tool: str, arguments: dict[str, Any]) -> Any:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def check_every_tool(session: Any, documents: dict[str, Document], question: str) -> None:
    """List the tools, call each, check what comes back against the articles, and make bad calls."""
    tools = await session.list_tools()
    assert {tool.name for tool in tools.tools} == {"ask", "search", "read_article"}
    record = await call(session, "ask", {"question": question, "engine": "extractive"})
    check_citations(record, documents)
    first = record["citations"][0]
    span = {"source": first["source"], "start": first["start"], "end": first["end"]}
    assert (await call(session, "read_article", span))["text"] == first["quote"]
    whole = await call(session, "read_article", {"source": first["source"]})
    assert whole["text"] == documents[first["source"]].text and whole["start"] == 0
    passages = (await call(session, "search", {"query": question, "k": 2}))["result"]
    assert len(passages) == 2 and passages[0]["score"] >= passages[1]["score"]
    for p in passages:
        assert documents[p["source"]].text[p["start"] : p["end"]] == p["text"]
    bad_calls = [
        ("ask", {"question": ""}, "empty"),
        ("ask", {"question": question, "engine": "gpt"}, "not available"),
        ("ask", {"question": 7}, "string"),
        ("search", {"query": question, "k": 0}, "greater than or equal to 1"),
        ("search", {"query": question, "k": 51}, "less than or equal to 50"),
        ("read_article", {"source": "missing.txt"}, "No article"),
        ("read_article", {"source": first["source"], "start": 5, "end": 10**9}, "not inside"),
        ("no_such_tool", {}, "Unknown tool"),
    ]
    for tool, arguments, reason in bad_calls:
        result = await session.call_tool(tool, arguments)
        assert result.is_error and reason in result.content[0].text, (tool, arguments, result.content)
    assert (await call(session, "ask", {"question": question}))["citations"]  # still serving


async def check_resources(session: Any, documents: dict[str, Document]) -> None:
    listed = (await session.list_resources()).resources
    assert sorted(r.name for r in listed) == sorted(documents)
    for resource in listed:
        assert str(resource.uri) == article_uri(resource.name)
        content = (await session.read_resource(resource.uri)).contents[0]
        assert content.text == documents[resource.name].text


def tiny_documents() -> dict[str, Document]:
    return {d.source: d for d in load_corpus(TINY)}


def test_stdio_session_lists_and_calls_every_tool(tmp_path: Path) -> None:
    documents = tiny_documents()

    async def check(session: Any) -> None:
        await check_every_tool(session, documents, QUESTION)
        await check_resources(session, documents)

    over_stdio(["-m", "tests.mcp_fake_server", str(tmp_path / "index")], check)


def test_initialize_is_answered_while_the_models_load(tmp_path: Path) -> None:
    """The handshake does not wait for a 5 s load (hosts give up after a few seconds); the first call does.

    What the handshake still costs is Python starting and importing qa and the SDK (1-4 s on a busy 2-core
    machine), the same with or without models."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "tests.mcp_fake_server", str(tmp_path / "index"), "5"], cwd=str(ROOT)
    )
    timings: dict[str, float] = {}

    async def run() -> None:
        with tempfile.TemporaryFile("w+") as errors, anyio.fail_after(120):
            async with stdio_client(params, errlog=errors) as (read, write), ClientSession(read, write) as session:
                started = time.perf_counter()
                await session.initialize()
                timings["initialize"] = time.perf_counter() - started
                tools = await session.list_tools()
                timings["list_tools"] = time.perf_counter() - started
                record = await call(session, "ask", {"question": QUESTION})
                timings["first_call"] = time.perf_counter() - started
                check_citations(record, tiny_documents())
                assert {t.name for t in tools.tools} == {"ask", "search", "read_article"}

    anyio.run(run)
    print(f"MCP over stdio: {timings}")
    assert timings["list_tools"] - timings["initialize"] < 1.0
    assert timings["first_call"] - timings["initialize"] >= 4.0  # initialize did not wait for the load; ask did


def test_tool_schemas_have_enums_bounds_hints_and_clean_descriptions(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=TINY, index_dir=tmp_path / "index", engine="extractive", ranker_path=COVERAGE_RANKER)
    server = build_mcp(Assistant.load(settings, embedder=HashEmbeddings()))
    tools = {tool.name: tool for tool in anyio.run(server.list_tools)}
    engine = tools["ask"].input_schema["properties"]["engine"]
    assert {"enum": ["auto", "extractive"]} in engine["anyOf"]
    k = tools["search"].input_schema["properties"]["k"]
    assert (k["minimum"], k["maximum"], k["default"]) == (1, 50, 5)
    start = tools["read_article"].input_schema["properties"]["start"]
    assert {"type": "integer", "minimum": 0} in start["anyOf"]
    for tool in tools.values():
        assert tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False
        assert tool.title and not any(line.startswith(" ") for line in tool.description.splitlines()), tool.name
        for name, field in tool.input_schema["properties"].items():
            assert field.get("description"), (tool.name, name)
    assert tools["search"].annotations.idempotent_hint is True


def test_the_registry_names_the_engines_before_anything_loads() -> None:
    assert engine_choices(Settings(engine="auto")) == ["auto", "extractive", "llm"]
    assert engine_choices(Settings(engine="extractive")) == ["auto", "extractive"]


MALFORMED = [
    ("lone surrogate", '{"jsonrpc": "2.0", "id": 7, "method": "ping", "params": {"q": "\\ud800"}}'),
    ("5,000-digit integer", '{"jsonrpc": "2.0", "id": ' + "9" * 5000 + ', "method": "ping"}'),
    ("deep nesting", '{"jsonrpc": "2.0", "id": 8, "method": "ping", "params": ' + "[" * 5000 + "]" * 5000 + "}"),
    ("truncated JSON", '{"jsonrpc": "2.0", "id": 9, "method": "pi'),
    ("not JSON-RPC", '{"hello": "world"}'),
]


def test_malformed_lines_over_stdio_get_a_json_rpc_error(tmp_path: Path) -> None:
    """Each line gets a reply within seconds (the SDK's reader dropped them: no reply at all), and the server
    still answers a ping afterwards."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.mcp_fake_server", str(tmp_path / "index")],
        cwd=str(ROOT),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    replies: queue.SimpleQueue[str] = queue.SimpleQueue()
    threading.Thread(target=lambda: [replies.put(line) for line in server.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        for case, line in MALFORMED:
            server.stdin.write(line + "\n")
            server.stdin.flush()
            reply = json.loads(replies.get(timeout=10))
            assert reply["jsonrpc"] == "2.0" and reply["error"]["code"] in (-32700, -32600), (case, reply)
        server.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}) + "\n")
        server.stdin.flush()
        assert json.loads(replies.get(timeout=10)) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    finally:
        server.kill()
        server.wait()


def test_streamable_http_session(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=TINY, index_dir=tmp_path / "index", engine="extractive", ranker_path=COVERAGE_RANKER)
    server = build_mcp(Assistant.load(settings, embedder=HashEmbeddings()))
    documents = tiny_documents()

    async def run(url: str) -> None:
        with anyio.fail_after(120):
            async with streamable_http_client(url) as streams, ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                await check_every_tool(session, documents, QUESTION)

    with live_server(server.streamable_http_app(host="127.0.0.1")) as url:
        anyio.run(run, url + "/mcp")


def test_qa_mcp_over_stdio_with_the_real_model(assistant: Assistant, seeds_settings: Settings) -> None:
    env = {
        **os.environ,
        "QA_CORPUS_DIR": str(SEEDS),
        "QA_INDEX_DIR": str(seeds_settings.index_dir),  # built by the `assistant` fixture
        "QA_ENGINE": "extractive",
        "HF_HUB_OFFLINE": "1",
    }

    async def check(session: Any) -> None:
        await check_every_tool(session, assistant.documents, "Where did Wang Yi hold talks with Baradar?")
        assert len((await session.list_resources()).resources) == len(assistant.documents)

    handshake = over_stdio(["-m", "qa", "mcp"], check, env=env)
    print(f"qa mcp over stdio: initialize answered {handshake:.2f} s after the process started")
    assert handshake < 10  # it was 10-14 s with the models loading first; now Python's imports only
