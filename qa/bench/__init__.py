"""Settings -> a benchmark report (dict): indexing, retrieval at scale, answer latency, load; plus its table.

`run_bench` runs the sections named in `only` and returns plain JSON-able data; `render_report` turns it into
readable tables; `write_report` saves it as eval/reports/bench-<run>.json. Benchmarks print figures, they are
not pass/fail tests. Sections live in `bench_answers` (indexing, answers, profile), `bench_scale` and `bench_load`.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qa import Settings
from qa.bench.answers import Session
from qa.bench.extraction import run_extraction
from qa.bench.load import run_load
from qa.bench.scale import run_scale
from qa.bench.stats import BenchPlan, load_average
from qa.bench.store import run_store
from qa.bench.tables import TABLES

logger = logging.getLogger(__name__)

Log = Callable[[str], None]


def run_bench(settings: Settings, plan: BenchPlan, *, log: Log | None = None) -> dict[str, Any]:
    """Run the sections of `plan` over settings.corpus_dir and return the report data."""
    say = log or (lambda message: logger.info("%s", message))
    report: dict[str, Any] = {"run_id": time.strftime("%Y%m%d-%H%M%S"), "meta": _meta(plan)}
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as scratch:
        # The whole run uses a fresh index of the corpus in scratch space: the user's index is left alone.
        work = settings.replace(index_dir=Path(scratch) / "index", engine="auto")
        if {"indexing", "scale", "answers", "profile"} & set(plan.only):
            session = Session.start(work, say)
            if "indexing" in plan.only:
                report["indexing"] = session.indexing(repeats=1 if plan.quick else 2)
            if "scale" in plan.only:
                report["scale"] = run_scale(plan, session.embedder, say, reference=session.reference_statistics(plan))
            if "answers" in plan.only:
                report["answers"] = session.answers(plan)
            if "profile" in plan.only:
                report["profile"] = session.profile(plan)
        if "extraction" in plan.only:
            report["extraction"] = run_extraction(plan, say)
        if "load" in plan.only:
            report["load"] = run_load(work, plan, say)
        if "store" in plan.only:
            report["store"] = run_store(plan, say)
    report["meta"]["load_average_after"] = load_average()
    return report


def _meta(plan: BenchPlan) -> dict[str, Any]:
    return {
        "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "quick": plan.quick,
        "sections": list(plan.only),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_average_before": load_average(),
    }


def write_report(report: Mapping[str, Any], out: Path | None) -> Path:
    """Save the report as JSON at `out` (default eval/reports/bench-<run>.json)."""
    path = out or Path("eval/reports") / f"bench-{report['run_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def render_report(report: Mapping[str, Any]) -> str:
    """Markdown tables of every section present in `report`."""
    meta = report["meta"]
    parts = [
        f"Benchmark {report['run_id']} ({'quick' if meta['quick'] else 'full'}); {meta['cpus']} CPUs; "
        f"load average {meta['load_average_before']} before, {meta.get('load_average_after')} after."
    ]
    for section, render in TABLES:
        if section in report:
            parts.append(render(report[section]))
    return "\n\n".join(parts)
