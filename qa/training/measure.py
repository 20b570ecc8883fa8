"""The reader, measured: on held-out synthetic pairs (by article) and on the dev split against today's ranker.

- held out: pair AUROC and accuracy at 0.5, per origin; question level, the AUROC of the best candidate's score for
  answerable questions vs their near misses (the same question with its answering sentence removed) and SQuAD's
  unanswerable ones; MiniLM cosine beside it as a reference;
- dev (eval/questions.jsonl, split "dev" only): over each question's shortlist (`Assistant.candidates`, top 8), the
  top-1 accuracy on gold of the reader vs the ranker, and the AUROC for answerable vs unanswerable questions of the
  reader's best score vs today's decision, P(answerable) from `picker.judge`;
- the reader's time to score 8 pairs (median of 30 runs).
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.reader import DEFAULT_READER, Reader
from qa.training.pairs import Pair, Ranker, read_pairs

logger = logging.getLogger(__name__)
RESULTS = Path(__file__).parent / "data" / "measured.json"
SHORTLIST = 8


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (ties count half); nan when one class is missing."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not positives or not negatives:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return float(wins / (len(positives) * len(negatives)))


def measure(model: Path | None = None, *, out: Path = RESULTS) -> dict[str, Any]:
    reader = Reader.load(model or DEFAULT_READER, threads=2)
    results: dict[str, Any] = {"latency_ms_8_pairs": latency(reader)}
    logger.info("latency %s", results)
    results["dev"] = measure_dev(reader)
    logger.info("dev %s", results["dev"])
    results["heldout"] = measure_heldout(reader, read_pairs())
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def measure_heldout(reader: Reader, pairs: list[Pair]) -> dict[str, Any]:
    held = [p for p in pairs if p.split == "heldout"]
    by_question: dict[str, list[Pair]] = defaultdict(list)
    for pair in held:
        by_question[pair.question_id].append(pair)
    scores: dict[tuple[str, int, int, str], float] = {}
    for question_pairs in by_question.values():
        values = reader.score(question_pairs[0].question, [p.sentence for p in question_pairs])
        for pair, value in zip(question_pairs, values, strict=True):
            scores[(pair.question_id, pair.start, pair.end, pair.article)] = float(value)
    ranker = Ranker()
    ranker.embed([p.question for p in held] + [p.sentence for p in held])  # one batched call
    cosine = {
        (p.question_id, p.start, p.end, p.article): float(ranker.cache[p.question] @ ranker.cache[p.sentence])
        for p in held
    }
    result: dict[str, Any] = {"pairs": len(held), "questions": len(by_question)}
    for origin in ("llm", "squad", "all"):
        chosen = [p for p in held if origin in {"all", p.origin}]
        keys = [(p.question_id, p.start, p.end, p.article) for p in chosen]
        labels = [p.label for p in chosen]
        result[f"pairs_{origin}"] = {
            "count": len(chosen),
            "auroc_reader": round(auroc([scores[k] for k in keys], labels), 3),
            "auroc_minilm_cosine": round(auroc([cosine[k] for k in keys], labels), 3),
            "accuracy_reader_at_0.5": round(
                float(np.mean([(scores[k] >= 0.5) == bool(y) for k, y in zip(keys, labels, strict=True)])), 3
            )
            if chosen
            else None,
        }
    result["question_level"] = _question_level(by_question, scores, cosine)
    return result


def _question_level(
    by_question: dict[str, list[Pair]], scores: dict[Any, float], cosine: dict[Any, float]
) -> dict[str, Any]:
    """Best score per question: answerable (all candidates) vs near miss (the negatives only) or unanswerable."""
    rows: list[tuple[float, float, int, str]] = []  # reader max, cosine max, answerable, kind
    for question_pairs in by_question.values():
        keys = [(p.question_id, p.start, p.end, p.article) for p in question_pairs]
        negatives = [k for k, p in zip(keys, question_pairs, strict=True) if p.kind == "hard_negative"]
        if any(p.label for p in question_pairs):
            rows.append((max(scores[k] for k in keys), max(cosine[k] for k in keys), 1, "answerable"))
            if negatives:
                rows.append((max(scores[k] for k in negatives), max(cosine[k] for k in negatives), 0, "near_miss"))
        elif question_pairs[0].kind == "unanswerable":
            rows.append((max(scores[k] for k in keys), max(cosine[k] for k in keys), 0, "squad_unanswerable"))
    result = {}
    for name, kinds in (("near_miss", {"answerable", "near_miss"}), ("all", None)):
        chosen = [r for r in rows if kinds is None or r[3] in kinds]
        labels = [r[2] for r in chosen]
        result[name] = {
            "answerable": sum(labels),
            "unanswerable": len(labels) - sum(labels),
            "auroc_reader_max": round(auroc([r[0] for r in chosen], labels), 3),
            "auroc_minilm_cosine_max": round(auroc([r[1] for r in chosen], labels), 3),
        }
    return result


def measure_dev(
    reader: Reader, corpus_dir: Path = Path("seeds"), questions: Path = Path("eval/questions.jsonl")
) -> dict[str, Any]:
    from qa import Assistant, Settings  # noqa: PLC0415 - the library, loaded only for this measurement

    dev = dev_questions(questions, corpus_dir)
    with tempfile.TemporaryDirectory() as index_dir:
        assistant = Assistant.load(Settings(corpus_dir=corpus_dir, index_dir=Path(index_dir), engine="extractive"))
        rows = [_dev_row(assistant, reader, q) for q in dev]
    answerable = [r for r in rows if r["type"] != "unanswerable"]
    with_gold = [r for r in answerable if r["gold_in_shortlist"] is not None]
    labels = [int(r["type"] != "unanswerable") for r in rows]
    no_premise = [r for r in rows if r["type"] != "false_premise"]
    no_premise_labels = [int(r["type"] != "unanswerable") for r in no_premise]
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(rows) - len(answerable),
        "top1_on_gold_ranker": round(float(np.mean([r["ranker_top1_gold"] for r in with_gold])), 3),
        "top1_on_gold_reader": round(float(np.mean([r["reader_top1_gold"] for r in with_gold])), 3),
        "gold_in_shortlist": round(float(np.mean([r["gold_in_shortlist"] for r in with_gold])), 3),
        "auroc_answerable_reader_max": round(auroc([r["reader_max"] for r in rows], labels), 3),
        "auroc_answerable_decision": round(auroc([r["decision"] for r in rows], labels), 3),
        "auroc_answerable_ranker_top": round(auroc([r["ranker_top"] for r in rows], labels), 3),
        "without_false_premise": {
            "auroc_reader_max": round(auroc([r["reader_max"] for r in no_premise], no_premise_labels), 3),
            "auroc_decision": round(auroc([r["decision"] for r in no_premise], no_premise_labels), 3),
        },
        "by_type": _by_type(rows),
    }


@dataclass(frozen=True, slots=True)
class Gold:
    source: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class DevQuestion:
    id: str
    question: str
    type: str
    evidence: tuple[Gold, ...]


def dev_questions(path: Path, corpus_dir: Path) -> list[DevQuestion]:
    """The dev split's questions with their gold quotes located in the articles (the test split is never read)."""
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("split") != "dev":
            continue
        gold = []
        for evidence in record.get("evidence", []):
            text = (corpus_dir / evidence["source"]).read_text(encoding="utf-8")
            start = text.find(evidence["quote"])
            if start >= 0:
                gold.append(Gold(evidence["source"], start, start + len(evidence["quote"])))
        questions.append(DevQuestion(record["id"], record["question"], record["type"], tuple(gold)))
    return questions


def _dev_row(assistant: Any, reader: Reader, question: Any) -> dict[str, Any]:
    evidence = assistant.candidates(question.question)
    shortlist = evidence[:SHORTLIST]
    scores = reader.score(question.question, [e.text for e in shortlist]) if shortlist else np.zeros(0)
    decision = assistant.picker.judge(question.question, evidence).probability

    def on_gold(e: Any) -> bool:
        return any(e.source == g.source and min(e.end, g.end) > max(e.start, g.start) for g in question.evidence)

    best = int(np.argmax(scores)) if len(scores) else None
    return {
        "id": question.id,
        "type": question.type,
        "reader_max": float(scores.max()) if len(scores) else 0.0,
        "ranker_top": shortlist[0].score if shortlist else 0.0,
        "decision": float(decision),
        "ranker_top1_gold": bool(shortlist) and on_gold(shortlist[0]),
        "reader_top1_gold": best is not None and on_gold(shortlist[best]),
        "gold_in_shortlist": any(on_gold(e) for e in shortlist) if question.evidence else None,
    }


def _by_type(rows: list[dict[str, Any]]) -> dict[str, Any]:
    kinds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        kinds[row["type"]].append(row)
    return {
        kind: {
            "count": len(group),
            "reader_max_median": round(statistics.median(r["reader_max"] for r in group), 3),
            "decision_median": round(statistics.median(r["decision"] for r in group), 3),
            "top1_ranker": round(float(np.mean([r["ranker_top1_gold"] for r in group])), 3),
            "top1_reader": round(float(np.mean([r["reader_top1_gold"] for r in group])), 3),
        }
        for kind, group in sorted(kinds.items())
    }


def latency(reader: Reader, runs: int = 30) -> float:
    """Median ms to score 8 (question, sentence) pairs of news-length sentences."""
    question = "How many people did the bombing at the airport kill, according to the report?"
    sentences = [
        "On the morning of the attack, officials said the explosion near the main gate killed at least "
        f"{n} people and wounded dozens more, many of them waiting to board evacuation flights."
        for n in range(8)
    ]
    reader.score(question, sentences)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        reader.score(question, sentences)
        times.append(1000 * (time.perf_counter() - began))
    return round(statistics.median(times), 1)
