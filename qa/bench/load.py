"""A running `qa chat` + N concurrent chat sessions (loopback) -> throughput, latency, errors, memory.

The server runs as a subprocess on a free 127.0.0.1 port with the extractive engine. Every session is a
multi-turn conversation, first through the page's `/ask` endpoint (gradio_client), then the same sessions through
the OpenAI-compatible `/v1/chat/completions` (the `openai` package); requests are bounded in count and in time.
An error is any request that fails, times out, or returns a record without valid citations.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import qa
from qa import Document, QAError, Settings
from qa.bench.stats import BenchPlan, latency_summary, spread
from qa.errors import require
from qa.evaluation import load_questions
from qa.ingest import load_corpus
from qa.text import MARKER

logger = logging.getLogger(__name__)

Log = Callable[[str], None]
START_TIMEOUT_S = 300.0  # the server may have to build its index first
REQUEST_TIMEOUT_S = 60.0
SOURCES_BLOCK = "\n\nSources:\n"  # where an API message's content starts its list of sources (see the README)
ROUTES = ("page", "openai")  # the page's /ask through gradio_client; /v1/chat/completions through `openai`

# One session's way of asking: (question, history, timeout_s) -> an `/ask`-style record
Ask = Callable[[str, list[dict[str, str]], float], dict[str, Any]]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    started_s: float
    peak_rss_mb: float = 0.0
    samples: list[float] = field(default_factory=list)

    def rss_mb(self) -> float:
        """Resident memory of the server and its children now, in MiB."""
        psutil = require("psutil", "pip install 'qa[eval]'")
        try:
            process = psutil.Process(self.process.pid)
            total = int(process.memory_info().rss)
            total += sum(int(c.memory_info().rss) for c in process.children(recursive=True))
        except psutil.Error:
            return 0.0
        return round(total / 2**20, 1)

    def high_water_mb(self) -> float | None:
        """The kernel's peak resident memory of the server process (Linux's VmHWM), if readable."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            return None
        return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(settings: Settings, *, command: Sequence[str] | None = None, workdir: Path | None = None) -> Iterator[Server]:
    """`qa chat` on a free loopback port with the extractive engine, until the block ends.

    It runs in `workdir` (default: a temporary folder), so whatever Gradio writes stays out of the checkout.
    """
    client_module = require("gradio_client", "pip install 'qa[ui]'")
    port = free_port()
    env = {
        **os.environ,
        "QA_HOST": "127.0.0.1",
        "QA_PORT": str(port),
        "QA_ENGINE": "extractive",
        "QA_INDEX_DIR": str(settings.index_dir.resolve()),
        "QA_CORPUS_DIR": str(settings.corpus_dir.resolve()),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        # the server runs this very `qa` (a checkout or worktree), whatever `pip install -e` points at
        "PYTHONPATH": os.pathsep.join(
            [str(Path(qa.__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    with tempfile.TemporaryDirectory(prefix="qa-bench-server-") as scratch:
        cwd = workdir or Path(scratch)
        env["GRADIO_TEMP_DIR"] = str(cwd / "gradio")
        log_path = Path(scratch) / "server.log"
        with log_path.open("wb") as log_file:
            started = time.perf_counter()
            process = subprocess.Popen(
                list(command or [sys.executable, "-m", "qa", "chat"]),
                env=env,
                cwd=cwd,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                url = f"http://127.0.0.1:{port}/"
                _wait_ready(client_module, url, process, log_path)
                yield Server(url, process, log_path, round(time.perf_counter() - started, 2))
            finally:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_ready(client_module: Any, url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-1500:]
            raise QAError(f"`qa chat` exited with code {process.returncode} before serving; its output:\n{tail}")
        try:
            client_module.Client(url, verbose=False)
            return
        except Exception:  # connection refused, or the page is still starting: try again
            time.sleep(1.0)
    raise QAError(f"`qa chat` did not answer on {url} within {START_TIMEOUT_S:.0f} s; see {log_path}.")


def record_problem(record: Any, documents: Mapping[str, Document]) -> str | None:
    """Why an `/ask` record is not a valid answer (None when it is): an error, or a citation that is wrong."""
    if not isinstance(record, dict) or "error" in record:
        return f"error record: {record!r}"[:300]
    citations = record.get("citations", [])
    if record.get("abstained"):
        return "an abstention carries citations" if citations else None
    if not citations:
        return "an answer without citations"
    for citation in citations:
        document = documents.get(citation["source"])
        if document is None or document.text[citation["start"] : citation["end"]] != citation["quote"]:
            return f"citation [{citation['marker']}] does not match {citation['source']}"
    if {int(m) for m in MARKER.findall(record["answer"])} != {c["marker"] for c in citations}:
        return "the answer's [n] markers and its citations differ"
    return None


def page_asker(url: str) -> Ask:
    """A new gradio_client session asking through the page's `/ask` endpoint."""
    client = require("gradio_client", "pip install 'qa[ui]'").Client(url, verbose=False)

    def ask(question: str, history: list[dict[str, str]], timeout_s: float) -> dict[str, Any]:
        job = client.submit(question, "extractive", 0, history, api_name="/ask")
        return job.result(timeout=timeout_s)  # type: ignore[no-any-return]

    return ask


def openai_asker(url: str) -> Ask:
    """A new `openai` client asking through `/v1/chat/completions`; the message's extra fields make the record."""
    module = require("openai", "pip install 'qa[eval]'")
    client = module.OpenAI(base_url=url.rstrip("/") + "/v1", api_key="unused", max_retries=0)

    def ask(question: str, history: list[dict[str, str]], timeout_s: float) -> dict[str, Any]:
        messages = [*history, {"role": "user", "content": question}]
        reply = client.chat.completions.create(model="qa-extractive", messages=messages, timeout=timeout_s)
        message = reply.choices[0].message
        extra = message.model_extra or {}
        return {
            "answer": message.content.split(SOURCES_BLOCK)[0],
            "content": message.content,  # what a chat client keeps in its history
            "abstained": extra.get("abstained"),
            "citations": extra.get("citations", []),
        }

    return ask


def run_sessions(
    url: str,
    sessions: int,
    questions: Sequence[str],
    documents: Mapping[str, Document],
    *,
    per_session: int,
    timeout_s: float,
    server: Server | None = None,
    route: str = "page",
) -> dict[str, Any]:
    """`sessions` concurrent conversations of `per_session` questions each; every failure is counted."""
    latencies: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + timeout_s

    def converse(number: int) -> None:
        ask = openai_asker(url) if route == "openai" else page_asker(url)
        history: list[dict[str, str]] = []
        for turn in range(per_session):
            question = questions[(number * per_session + turn) % len(questions)]
            started = time.perf_counter()
            try:
                record = ask(question, history, max(0.1, min(REQUEST_TIMEOUT_S, deadline - time.monotonic())))
                problem = record_problem(record, documents)
            except Exception as exc:  # timeouts, HTTP and queue errors alike: all count as errors
                record, problem = None, f"{type(exc).__name__}: {exc}"[:300]
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)
                problems.extend([problem] if problem else [])
            if record is None:
                return
            reply = str(record.get("content") or record.get("answer") or "")
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]

    stop = threading.Event()
    sampler = threading.Thread(target=_sample_memory, args=(server, stop), daemon=True) if server else None
    if sampler:
        sampler.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=sessions) as pool:
        list(pool.map(converse, range(sessions)))
    wall = time.perf_counter() - started
    stop.set()
    if sampler:
        sampler.join()
    requested = sessions * per_session
    return {
        "route": route,
        "sessions": sessions,
        "requests": requested,
        "completed": len(latencies) - len(problems),
        "errors": len(problems) + requested - len(latencies),
        "wall_s": round(wall, 2),
        "throughput_rps": round((len(latencies) - len(problems)) / wall, 2),
        "latency": latency_summary(latencies),
        "server_rss_peak_mb": max(server.samples, default=None) if server else None,
        "problems": problems[:5],
    }


def _sample_memory(server: Server, stop: threading.Event) -> None:
    server.samples.clear()
    while not stop.is_set():
        server.samples.append(server.rss_mb())
        stop.wait(0.1)


def run_load(settings: Settings, plan: BenchPlan, log: Log, *, command: Sequence[str] | None = None) -> dict[str, Any]:
    """The load table: one server, then each session count of the plan in turn."""
    documents = {d.source: d for d in load_corpus(settings.corpus_dir)}
    asked = spread([q.question for q in load_questions(plan.questions, settings.corpus_dir)], 40)
    log("load: starting `qa chat` (extractive) on a free 127.0.0.1 port")
    with serve(settings, command=command) as server:
        idle_mb = server.rss_mb()
        rows = []
        for route in ROUTES:
            for sessions in plan.load_sessions:
                log(f"load: {sessions} concurrent sessions x {plan.questions_per_session} questions via {route}")
                rows.append(
                    run_sessions(
                        server.url,
                        sessions,
                        asked,
                        documents,
                        per_session=plan.questions_per_session,
                        timeout_s=120 if plan.quick else 300,
                        server=server,
                        route=route,
                    )
                )
        return {
            "server_start_s": server.started_s,
            "server_idle_rss_mb": idle_mb,
            "server_peak_rss_mb": server.high_water_mb(),
            "rows": rows,
        }
