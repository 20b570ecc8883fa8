"""The reader, measured: on held-out synthetic pairs (by article) and on the dev split against today's ranker.

- held out: pair AUROC and accuracy at 0.5, per origin; question level, the AUROC of the best candidate's score for
  answerable questions vs their near misses (the same question with its answering sentence removed) and SQuAD's
  unanswerable ones; MiniLM cosine beside it as a reference;
- per split of the evaluation (dev by default; test and second only when asked, once, at the end): over each
  question's shortlist (the sentence model's top 8, as answering reads it), top-1 on gold of the sentence model, of
  the re-ranking and of the reader alone; and the confidence table (`qa.evaluation.confidence`: AUROC near miss vs
  answerable, calibration error, abstention at false refusal 0.05 / 0.10) of the reader's best score and of the
  decision's P(answerable);
- the reader's time to score 8 pairs (median of 30 runs).
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from qa.decision import DEFAULT_READER, SHORTLIST, Reader, rerank
from qa.training.pairs import Pair, Ranker, read_pairs

logger = logging.getLogger(__name__)
RESULTS = Path(__file__).parent / "data" / "measured.json"


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (ties count half); nan when one class is missing."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not positives or not negatives:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return float(wins / (len(positives) * len(negatives)))


def measure(
    model: Path | None = None, *, splits: Sequence[str] = ("dev",), out: Path = RESULTS, heldout: bool = True
) -> dict[str, Any]:
    reader = Reader.load(model or DEFAULT_READER, threads=2)
    results: dict[str, Any] = {"latency_ms_8_pairs": latency(reader)}
    logger.info("latency %s", results)
    results["splits"] = measure_splits(reader, splits)
    logger.info("splits %s", results["splits"])
    if heldout:
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


def measure_splits(reader: Reader, splits: Sequence[str]) -> dict[str, Any]:
    """Per split of the evaluation (dev to tune on; test, second held out: measure them once, at the end)."""
    from qa.evaluation import QUESTION_SETS, load_questions  # noqa: PLC0415 - the evaluation's own question sets

    results: dict[str, Any] = {}
    for name, (path, corpus_dir) in QUESTION_SETS.items():
        chosen = [s for s in splits if s == name or (name == "seeds" and s in {"dev", "test"})]
        if not chosen:
            continue
        questions = [q for q in load_questions(path, corpus_dir) if q.split in chosen]
        rows = _split_rows(reader, questions, corpus_dir)
        for split in chosen:
            results[split] = summarize_split([r for r in rows if r["split"] == split])
    return results


def _split_rows(reader: Reader, questions: Sequence[Any], corpus_dir: Path) -> list[dict[str, Any]]:
    from qa import Assistant, Settings  # noqa: PLC0415 - the library, loaded only for this measurement

    with tempfile.TemporaryDirectory() as index_dir:
        settings = Settings(corpus_dir=corpus_dir, index_dir=Path(index_dir), engine="extractive")
        assistant = Assistant.load(settings)
        return [_question_row(assistant, reader, q) for q in questions]


def _question_row(assistant: Any, reader: Reader, question: Any) -> dict[str, Any]:
    """One question's shortlist: the sentence model's order vs the reader's re-ranking, the reader's best score and
    the decision's P(answerable) as the product computes it."""
    evidence = assistant.candidates(question.question, limit=4 * SHORTLIST)
    if evidence and not evidence[0].features.get("read"):  # a ranker that reads no reader: read the shortlist here
        evidence = rerank(evidence, reader.score(question.question, [e.text for e in evidence[:SHORTLIST]]), None)
    shortlist = [e for e in evidence if e.features.get("read")]
    by_ranker = max(shortlist, key=lambda e: e.features["stage1"]) if shortlist else None
    by_reader = max(shortlist, key=lambda e: e.features["reader"]) if shortlist else None
    decision = assistant.decision.judge(question.question, evidence[: assistant.settings.evidence_candidates])

    def on_gold(e: Any) -> bool:
        return e is not None and any(
            e.source == g.source and min(e.end, g.end) > max(e.start, g.start) for g in question.evidence
        )

    return {
        "id": question.id,
        "split": question.split,
        "type": question.type,
        "set": question.set,
        "reader_max": max((e.features["reader"] for e in shortlist), default=0.0),
        "decision": float(decision.probability),
        "top1_ranker": on_gold(by_ranker),
        "top1_reranked": on_gold(evidence[0] if evidence else None),
        "top1_reader_alone": on_gold(by_reader),
        "gold_in_shortlist": any(on_gold(e) for e in shortlist) if question.evidence else None,
    }


def summarize_split(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Top-1 on gold (sentence model, re-ranked, reader alone) and the confidence table for the reader's best score
    and for the decision, with the evaluation's own functions (`qa.evaluation.confidence`)."""
    from qa.evaluation.confidence import confidence_summary  # noqa: PLC0415

    with_gold = [r for r in rows if r["gold_in_shortlist"] is not None and r["type"] != "unanswerable"]
    result: dict[str, Any] = {
        "questions": len(rows),
        "answerable": sum(r["type"] != "unanswerable" for r in rows),
        "with_gold": len(with_gold),
        "gold_in_shortlist": _share(r["gold_in_shortlist"] for r in with_gold),
    }
    for key in ("top1_ranker", "top1_reranked", "top1_reader_alone"):
        result[f"{key}_on_gold"] = _share(r[key] for r in with_gold)
    for source in ("reader_max", "decision"):
        records = [_scored(r, r[source]) for r in rows]
        result[f"confidence_{source}"] = confidence_summary(records)  # type: ignore[arg-type]
    result["by_type"] = {
        kind: {
            "count": len(group),
            "reader_max_median": round(statistics.median(r["reader_max"] for r in group), 3),
            "decision_median": round(statistics.median(r["decision"] for r in group), 3),
            "top1_ranker": _share(r["top1_ranker"] for r in group),
            "top1_reranked": _share(r["top1_reranked"] for r in group),
        }
        for kind, group in sorted(_group(rows).items())
    }
    return result


def _scored(row: dict[str, Any], confidence: float) -> SimpleNamespace:
    """The fields of an evaluation Record the confidence functions read."""
    return SimpleNamespace(
        confidence=confidence, type=row["type"], set=row["set"], error=None, success=row["top1_reranked"]
    )


def _share(values: Iterable[Any]) -> float | None:
    items = [bool(v) for v in values]
    return round(sum(items) / len(items), 3) if items else None


def _group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        kinds[row["type"]].append(row)
    return kinds


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
