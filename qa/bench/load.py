"""A running `qa chat` + N concurrent chat sessions (gradio_client, loopback) -> throughput, latency, errors, memory.

The server runs as a subprocess on a free 127.0.0.1 port with the extractive engine. Every session is a
multi-turn conversation through the page's `/ask` API endpoint; requests are bounded in count and in time.
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

from qa import MARKER, Document, QAError, Settings, load_corpus, require
from qa.bench.stats import BenchPlan, latency_summary, spread
from qa.evaluation import load_questions

logger = logging.getLogger(__name__)

Log = Callable[[str], None]
START_TIMEOUT_S = 300.0  # the server may have to build its index first
REQUEST_TIMEOUT_S = 60.0


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


def run_sessions(
    url: str,
    sessions: int,
    questions: Sequence[str],
    documents: Mapping[str, Document],
    *,
    per_session: int,
    timeout_s: float,
    server: Server | None = None,
) -> dict[str, Any]:
    """`sessions` concurrent conversations of `per_session` questions each; every failure is counted."""
    client_module = require("gradio_client", "pip install 'qa[ui]'")
    latencies: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + timeout_s

    def converse(number: int) -> None:
        client = client_module.Client(url, verbose=False)
        history: list[dict[str, str]] = []
        for turn in range(per_session):
            question = questions[(number * per_session + turn) % len(questions)]
            started = time.perf_counter()
            try:
                job = client.submit(question, "extractive", 0, history, api_name="/ask")
                record = job.result(timeout=max(0.1, min(REQUEST_TIMEOUT_S, deadline - time.monotonic())))
                problem = record_problem(record, documents)
            except Exception as exc:  # timeouts, HTTP and queue errors alike: all count as errors
                record, problem = None, f"{type(exc).__name__}: {exc}"[:300]
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)
                problems.extend([problem] if problem else [])
            if record is None:
                return
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": record["answer"]}]

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
        for sessions in plan.load_sessions:
            log(f"load: {sessions} concurrent sessions x {plan.questions_per_session} questions")
            rows.append(
                run_sessions(
                    server.url,
                    sessions,
                    asked,
                    documents,
                    per_session=plan.questions_per_session,
                    timeout_s=120 if plan.quick else 300,
                    server=server,
                )
            )
        return {
            "server_start_s": server.started_s,
            "server_idle_rss_mb": idle_mb,
            "server_peak_rss_mb": server.high_water_mb(),
            "rows": rows,
        }
