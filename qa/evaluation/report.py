"""An evaluation `Run` -> eval/reports/<run>/: report.json, report.md, a self-contained report.html, plots."""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import logging
import re
import subprocess
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qa.evaluation.metrics import ORIGINS, Record
from qa.evaluation.plots import plot_by_type, plot_curve, plot_latency, plot_risk_coverage
from qa.evaluation.questions import QUESTION_TYPES
from qa.evaluation.runs import Run, with_all
from qa.evaluation.turns import ConversationRun, target_table, turn_failure_table, turn_table
from qa.text import shorten

logger = logging.getLogger(__name__)

# (label, summary key, format): the columns of the summary table
COLUMNS = (
    ("R@1", "recall@1", "{:.2f}"),
    ("R@3", "recall@3", "{:.2f}"),
    ("R@5", "recall@5", "{:.2f}"),
    ("R@10", "recall@10", "{:.2f}"),
    ("MRR", "mrr", "{:.2f}"),
    ("cite valid", "citation_validity", "{:.2f}"),
    ("page acc", "page_accuracy", "{:.2f}"),
    ("cite prec", "citation_precision", "{:.2f}"),
    ("cite rec", "citation_recall", "{:.2f}"),
    ("chars/cite", "citation_chars", "{:.0f}"),
    ("accuracy", "accuracy", "{:.2f}"),
    ("false refusal", "false_refusal", "{:.2f}"),
    ("abstain unans.", "abstention_unanswerable", "{:.2f}"),
    ("premise fixed", "false_premise_corrected", "{:.2f}"),
    ("refusal P", "refusal_precision", "{:.2f}"),
    ("refusal R", "refusal_recall", "{:.2f}"),
    ("refusal F1", "refusal_f1", "{:.2f}"),
    ("F1_RG", "refusal_f1_rg", "{:.2f}"),
    ("model's own text", "model_share", "{:.2f}"),
    ("accuracy, own words", "own_accuracy", "{:.2f}"),
    ("fallback, answerable", "fallback_answerable", "{:.2f}"),
    ("p50 ms", "latency_p50_ms", "{:.0f}"),
    ("p95 ms", "latency_p95_ms", "{:.0f}"),
    ("TTFT p50 ms", "ttft_p50_ms", "{:.0f}"),
)
Table = tuple[list[str], list[list[str]]]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def provenance(root: Path) -> dict[str, Any]:
    """When and on which code the run was made: the git commit and whether the tree had local changes."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "commit": git("rev-parse", "HEAD"),
        "modified_files": None if status is None else len(status.splitlines()),
    }


def summary_table(run: Run, split: str) -> Table:
    headers = ["configuration", "n", *(label for label, _, _ in COLUMNS), "peak RSS MB"]
    rows = []
    for configuration in run.configurations:
        summary = run.summaries.get(configuration.name, {}).get(split)
        if summary is None:
            continue
        cells = [_cell(summary.get(key), form) for _, key, form in COLUMNS]
        peak = run.peak_rss_mb.get(configuration.name)
        rows.append([configuration.name, str(summary["questions"]), *cells, _cell(peak, "{:.0f}")])
    return headers, rows


def type_table(run: Run, split: str) -> Table:
    """Share of questions handled right, per type (correct / abstained / premise corrected)."""
    rows = [
        [name, *(_cell(by_split[split]["by_type"].get(t), "{:.2f}") for t in QUESTION_TYPES)]
        for name, by_split in run.summaries.items()
        if split in by_split
    ]
    return ["configuration", *QUESTION_TYPES], rows


def curve_table(run: Run, split: str) -> Table:
    points = run.curve.get(split, [])
    rows = [
        [
            f"{p['threshold']:.2f}",
            _cell(p["accuracy"], "{:.2f}"),
            _cell(p["false_refusal"], "{:.2f}"),
            _cell(p["abstention_unanswerable"], "{:.2f}"),
            _cell(p.get("refusal_f1_rg"), "{:.2f}"),
        ]
        for p in points
    ]
    return ["abstain_threshold", "accuracy", "false refusal", "abstain unans.", "F1_RG"], rows


def confidence_table(run: Run, split: str) -> Table:
    """How P(answerable) separates and is calibrated, per configuration (95% bootstrap intervals in brackets), and
    the AURC of forced extractive answers."""

    def cell(summary: Mapping[str, Any], key: str) -> str:
        interval = summary.get(f"{key}_ci")
        shown = _cell(summary.get(key), "{:.2f}")
        return f"{shown} [{interval[0]:.2f}-{interval[1]:.2f}]" if interval and summary.get(key) is not None else shown

    keys = (
        "auroc_near_miss",
        "calibration_error",
        "abstention_at_false_refusal_0.05",
        "abstention_at_false_refusal_0.10",
    )
    rows = [
        [name, *(cell(by_split[split]["confidence"], key) for key in keys)]
        for name, by_split in run.summaries.items()
        if "confidence" in by_split.get(split, {})
    ]
    risk = run.risk_coverage.get(split)
    if risk and risk.get("aurc") is not None:
        rows.append(["AURC, forced extractive answers (lower is better)", cell(risk, "aurc"), "", "", ""])
    headers = ["configuration", "AUROC near miss vs answerable", "calibration error (10 bins)",
               "abstention at false refusal 0.05", "at 0.10"]  # fmt: skip
    return headers, rows


def origin_table(run: Run, split: str) -> Table:
    """For LLM configurations: the share of answers per type that are the model's own, corrected, fallback."""
    rows = []
    for name, by_split in run.summaries.items():
        for question_type, shares in by_split.get(split, {}).get("origin_by_type", {}).items():
            rows.append([name, question_type, *(_cell(shares.get(o), "{:.2f}") for o in ORIGINS)])
    return ["configuration", "type", *ORIGINS], rows


def failure_reason(record: Record) -> str | None:
    """The failure pattern of one record, or None when it succeeded."""
    if record.error:
        return "error"
    if record.success:
        return None
    if record.type == "unanswerable":
        return "answered an unanswerable question"
    found = any(rank is not None and rank <= 5 for rank in record.retrieved_ranks)
    if record.abstained:
        return "false refusal, gold in top-5" if found else "false refusal, gold not retrieved"
    if record.type == "false_premise":
        return "false premise not corrected"
    return "answer misses keywords, gold in top-5" if found else "answer misses keywords, gold not retrieved"


def pattern_table(run: Run) -> Table:
    """How often each failure pattern occurs, per configuration (all splits of the run)."""
    counts = {
        name: Counter(failure_reason(r) for r in run.records if r.configuration == name) for name in run.summaries
    }
    patterns = sorted({p for c in counts.values() for p in c if p}, key=lambda p: -sum(c[p] for c in counts.values()))
    return ["pattern", *counts], [[p, *(str(counts[name][p]) for name in counts)] for p in patterns]


def failure_table(run: Run, configuration: str) -> Table:
    rows = []
    for r in run.records:
        reason = failure_reason(r) if r.configuration == configuration else None
        if reason:
            missing = ", ".join(r.missing_keywords) if not r.abstained else ""
            rows.append([r.id, r.split, r.type, reason, r.question, missing, shorten(" ".join(r.answer.split()), 160)])
    return ["id", "split", "type", "pattern", "question", "missing keywords", "answer"], rows


def render_markdown(
    run: Run, meta: Mapping[str, Any], images: Mapping[str, str], conversations: ConversationRun | None = None
) -> str:
    parts = [f"# Evaluation report {meta.get('run_id', '')}", "", _meta_lines(run, meta), ""]
    for title, table in _sections(run, conversations):
        parts += [f"## {title}", "", _markdown_table(*table), ""]
    parts += [f"![{name}]({path})" for name, path in images.items()]
    return "\n".join(parts) + "\n"


def render_html(
    run: Run, meta: Mapping[str, Any], images: Mapping[str, bytes], conversations: ConversationRun | None = None
) -> str:
    body = [
        f"<h1>Evaluation report {html.escape(str(meta.get('run_id', '')))}</h1>",
        f"<p>{html.escape(_meta_lines(run, meta)).replace(chr(10), '<br>')}</p>",
    ]
    for title, table in _sections(run, conversations):
        body += [f"<h2>{html.escape(title)}</h2>", _html_table(*table)]
    body += ["<h2>Plots</h2>"] + [
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{_base64(png)}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, png in images.items()
    ]
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:110em}table{border-collapse:collapse;"
        "font-size:13px;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}"
        "th{background:#f3f3f3}img{max-width:100%}figure{margin:1em 0}"
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Evaluation report</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(
    run: Run, out_dir: Path, meta: Mapping[str, Any], conversations: ConversationRun | None = None
) -> dict[str, Path]:
    """Write report.json, report.md, report.html and the plots' PNGs into `out_dir`; return their paths.

    `conversations` (the multi-turn evaluation) adds its per-turn tables and records."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = {}
    if run.summaries:
        pngs = {"Success rate per question type": plot_by_type(run), "Latency per question": plot_latency(run)}
    if run.curve:
        pngs["Abstention trade-off (extractive)"] = plot_curve(run)
    if any(summary.get("points") for summary in run.risk_coverage.values()):
        pngs["Risk-coverage of P(answerable)"] = plot_risk_coverage(run)
    names = {title: f"{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}.png" for title in pngs}
    for title, png in pngs.items():
        (out_dir / names[title]).write_bytes(png)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "html": out_dir / "report.html"}
    data = report_data(run, meta, conversations)
    paths["json"].write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    paths["md"].write_text(render_markdown(run, meta, names, conversations), encoding="utf-8")
    paths["html"].write_text(render_html(run, meta, pngs, conversations), encoding="utf-8")
    logger.info("Wrote the evaluation report to %s", out_dir)
    return paths


def report_data(run: Run, meta: Mapping[str, Any], conversations: ConversationRun | None = None) -> dict[str, Any]:
    data = {
        "meta": dict(meta),
        "settings": run.settings,
        "splits": run.splits,
        "configurations": [dataclasses.asdict(c) | {"overrides": dict(c.overrides)} for c in run.configurations],
        "summaries": run.summaries,
        "curve": run.curve,
        "risk_coverage": run.risk_coverage,
        "skipped": run.skipped,
        "peak_rss_mb": run.peak_rss_mb,
        "records": [dataclasses.asdict(r) for r in run.records],
    }
    if conversations is not None:
        data["conversations"] = {
            "summaries": conversations.summaries,
            "skipped": conversations.skipped,
            "turns": [dataclasses.asdict(t) for t in conversations.turns],
        }
    return data


def _sections(run: Run, conversations: ConversationRun | None = None) -> list[tuple[str, Table]]:
    sections = _question_sections(run) if run.summaries else []
    if conversations is not None:
        sections += [
            (f"Conversations per turn, {split} split", turn_table(conversations, split))
            for split in with_all(conversations.splits)
        ]
        sections.append(("Conversations against their targets", target_table(conversations)))
        sections += [
            (f"Conversation turns failed or repeating: {name}", turn_failure_table(conversations, name))
            for name in conversations.summaries
        ]
    return sections


def _question_sections(run: Run) -> list[tuple[str, Table]]:
    splits = with_all(run.splits)
    sections = [(f"Summary, {split} split", summary_table(run, split)) for split in splits]
    sections += [(f"Success per question type, {split} split", type_table(run, split)) for split in splits]
    sections += [
        (f"Origin of LLM answers, {split} split", origin_table(run, split))
        for split in splits
        if origin_table(run, split)[1]
    ]
    sections += [(f"Abstention trade-off, {split} split", curve_table(run, split)) for split in run.curve]
    sections += [
        (f"Confidence: P(answerable), {split} split", confidence_table(run, split))
        for split in splits
        if confidence_table(run, split)[1]
    ]
    sections.append(("Failure patterns (count of questions)", pattern_table(run)))
    sections += [(f"Failures: {name}", failure_table(run, name)) for name in run.summaries]
    return sections


def _meta_lines(run: Run, meta: Mapping[str, Any]) -> str:
    lines = [f"{key}: {value}" for key, value in meta.items() if key != "run_id"]
    lines += [f"{c.name}: {c.description}" for c in run.configurations]
    lines += [f"skipped {name}: {reason}" for name, reason in run.skipped.items()]
    lines.append("Metric definitions: qa/eval_metrics.py (module docstring). Peak RSS is the process high-water mark.")
    return "\n".join(f"- {line}" for line in lines)


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def clean(cell: str) -> str:
        return " ".join(cell.split()).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows])


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _base64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def _cell(value: float | None, form: str) -> str:
    return "–" if value is None else form.format(value)
