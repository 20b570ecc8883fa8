"""The evaluation tools (`qa eval`): question sets, metrics, runs, the textbook baseline, reports and plots.

Built only on names that `qa` exports; the library never imports this package.
"""

from __future__ import annotations

from qa.evaluation.baseline import LangChainBaseline
from qa.evaluation.plan import EvalPlan, EvalResult, run_eval
from qa.evaluation.questions import (
    QUESTION_SETS,
    Question,
    check_gate,
    load_questions,
    load_thresholds,
    validate_questions,
)
from qa.evaluation.runs import CONFIGURATIONS, GROUPS, Harness, Run, expand, peak_rss_mb

__all__ = [
    "CONFIGURATIONS",
    "EvalPlan",
    "EvalResult",
    "GROUPS",
    "QUESTION_SETS",
    "Harness",
    "LangChainBaseline",
    "Question",
    "Run",
    "check_gate",
    "expand",
    "load_questions",
    "load_thresholds",
    "peak_rss_mb",
    "run_eval",
    "validate_questions",
]
