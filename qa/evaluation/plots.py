"""An evaluation `Run` -> PNG plots: success per question type, latency, the abstention trade-off curve, and the
risk-coverage curve of the decision's confidence.

Uses matplotlib's object API (no pyplot global state, no display needed).
"""

from __future__ import annotations

import io
from typing import Any

from qa.errors import require
from qa.evaluation.questions import QUESTION_TYPES
from qa.evaluation.runs import Run

INSTALL = "pip install 'qa[eval]'"


def plot_by_type(run: Run) -> bytes:
    """Grouped bars: per question type, the share each configuration handles right (a panel per split)."""
    splits = [*run.splits, "all"] if len(run.splits) > 1 else run.splits
    figure = _figure(figsize=(11, 3.2 * len(splits)))
    axes = figure.subplots(len(splits), 1, squeeze=False)[:, 0]
    names = list(run.summaries)
    width = 0.8 / max(len(names), 1)
    for ax, split in zip(axes, splits, strict=True):
        for i, name in enumerate(names):
            by_type = run.summaries[name][split]["by_type"]
            values = [by_type.get(t) or 0.0 for t in QUESTION_TYPES]
            ax.bar([x + i * width for x in range(len(QUESTION_TYPES))], values, width, label=name)
        ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(QUESTION_TYPES))], QUESTION_TYPES)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("success rate")
        ax.set_title(f"{split} split (answerable: keywords present; unanswerable: abstained)", fontsize=10)
        ax.legend(fontsize=8, ncols=min(len(names), 5))
    return _png(figure)


def plot_latency(run: Run) -> bytes:
    """Box plot of per-question latency for each configuration (log scale: engines differ by 100x)."""
    figure = _figure(figsize=(9, 3.8))
    ax = figure.subplots()
    names = list(run.summaries)
    data = [[max(r.latency_ms, 0.01) for r in run.records if r.configuration == name] or [0.01] for name in names]
    ax.boxplot(data, tick_labels=names)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(require("matplotlib.ticker", INSTALL).ScalarFormatter())
    ax.set_ylabel("latency per question (ms, log scale)")
    ax.grid(axis="y", alpha=0.3)
    return _png(figure)


def plot_curve(run: Run) -> bytes:
    """Left: accuracy vs false refusals as abstain_threshold moves; right: each rate vs the threshold."""
    figure = _figure(figsize=(11, 4.2))
    left, right = figure.subplots(1, 2)
    current = run.settings.get("abstain_threshold")
    labelled = "all" if "all" in run.curve else next(iter(run.curve))
    for split, points in run.curve.items():
        xs = [p["false_refusal"] or 0.0 for p in points]
        ys = [p["accuracy"] or 0.0 for p in points]
        left.plot(xs, ys, marker="o", label=split)
        for p, x, y in zip(points, xs, ys, strict=True):
            if split == labelled:  # one labelled line keeps the plot readable
                left.annotate(f"{p['threshold']:.2f}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
            if p["threshold"] == current:
                left.plot([x], [y], marker="*", markersize=14, color="black")
    left.set_xlabel("false-refusal rate (answerable questions)")
    left.set_ylabel("accuracy (answerable questions)")
    left.set_title("trade-off (labels: abstain_threshold; ★ current)", fontsize=10)
    left.legend(fontsize=8)
    points = run.curve[labelled]
    thresholds = [p["threshold"] for p in points]
    for key, label in (
        ("accuracy", "accuracy"),
        ("false_refusal", "false refusal"),
        ("abstention_unanswerable", "abstention on unanswerable"),
    ):
        right.plot(thresholds, [p[key] or 0.0 for p in points], marker=".", label=label)
    if current is not None:
        right.axvline(float(current), color="grey", linestyle="--", linewidth=1)
    right.set_xlabel("abstain_threshold")
    right.set_ylim(0, 1.05)
    right.set_title(f"{labelled} split", fontsize=10)
    right.legend(fontsize=8)
    return _png(figure)


def plot_risk_coverage(run: Run) -> bytes:
    """Selective risk against coverage: the forced answers of each split, most confident first (lower is better)."""
    figure = _figure(figsize=(5.5, 4.2))
    axes = figure.subplots()
    for split, summary in run.risk_coverage.items():
        points = summary.get("points") or []
        if points:
            label = f"{split} (AURC {summary['aurc']:.2f})"
            axes.plot([p["coverage"] for p in points], [p["risk"] for p in points], label=label)
    axes.set_xlabel("coverage (share of questions answered, most confident first)")
    axes.set_ylabel("risk (share of those answered wrongly)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.05)
    axes.set_title("risk-coverage of P(answerable), extractive answers", fontsize=10)
    axes.legend(fontsize=8)
    return _png(figure)


def _figure(**options: Any) -> Any:
    figure_module = require("matplotlib.figure", INSTALL)
    figure = figure_module.Figure(layout="constrained", **options)
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
