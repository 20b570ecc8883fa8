"""Answers + retrieved passages -> scored `Record`s -> summary metrics (pure functions, no models).

Matching rules (character spans, same source only):
- a gold span is *retrieved* by a passage that covers at least half of the gold span's characters, so a chunk
  boundary cutting a sentence does not hide it, but a chunk touching its last word does not count;
- a citation *cites* a gold span when the two share at least one character (citations are sentences, gold
  quotes are sentences or parts of one);
- a citation is *precise* (ALCE-style) when it cites a gold span or, for a question with keywords, holds one;
- an answer is *correct* when it does not abstain and holds every keyword (ignoring case, spacing and
  quote style).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qa import Answer, Citation, Document, Passage, is_valid_citation
from qa.engines import ENGINES, answering_engine
from qa.evaluation.questions import ANSWERABLE_TYPES, QUESTION_TYPES, Gold, Question

RECALL_AT = (1, 3, 5, 10)
ORIGINS = ("own", "corrected", "fallback", "abstained")
RETRIEVED_SHARE = 0.5  # share of a gold span a passage must cover to retrieve it
QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


@dataclass(frozen=True, slots=True)
class Record:
    """One question answered by one configuration, scored."""

    configuration: str
    id: str
    type: str
    split: str
    question: str
    answer: str
    abstained: bool
    success: bool  # answerable: correct; unanswerable: abstained; false premise: corrected
    missing_keywords: tuple[str, ...]  # keywords the answer lacks (all of them when it abstained)
    retrieved_ranks: tuple[int | None, ...]  # per gold span: 1-based rank of the first passage retrieving it
    reciprocal_rank: float | None  # None when the question has no gold span
    citations: int
    valid_citations: int
    precise_citations: int
    cited_share: float | None  # share of gold spans cited; None when there is none
    citation_chars: int
    latency_ms: float
    ttft_ms: float | None
    error: str | None = None
    origin: str | None = None  # LLM answers: "own", "corrected", "fallback" (extractive) or "abstained"
    corpus: str = ""
    paged_citations: int = 0  # citations of a gold quote whose pages are known
    page_correct: int = 0  # ... whose page_start..page_end lie within the gold pages
    confidence: float | None = None  # P(answerable) the decision gave the question
    hedged: bool = False  # the answer was a hedge (counted in `abstained`)
    set: str = ""  # how the question was written ("off-topic": a far miss)


def normalize_text(text: str) -> str:
    """Case-folded, straight quotes, single spaces: the form keywords are matched in."""
    return " ".join(text.translate(QUOTES).casefold().split())


def _missing(text: str, keywords: Sequence[str]) -> tuple[str, ...]:
    haystack = normalize_text(text)
    return tuple(keyword for keyword in keywords if normalize_text(keyword) not in haystack)


def contains_keywords(text: str, keywords: Sequence[str]) -> bool:
    """Whether `text` holds every keyword (case-insensitive, whitespace- and quote-style-insensitive)."""
    return not _missing(text, keywords)


def overlap(a_start: int, a_end: int, b_start: int, b_end: int) -> int:
    """Characters shared by the spans [a_start, a_end) and [b_start, b_end)."""
    return max(0, min(a_end, b_end) - max(a_start, b_start))


def retrieves(passage: Passage, gold: Gold) -> bool:
    covered = overlap(passage.start, passage.end, gold.start, gold.end)
    return passage.source == gold.source and covered >= RETRIEVED_SHARE * (gold.end - gold.start)


def retrieved_rank(gold: Gold, passages: Sequence[Passage]) -> int | None:
    """1-based rank of the first passage retrieving `gold`, or None."""
    return next((rank for rank, p in enumerate(passages, start=1) if retrieves(p, gold)), None)


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of gold spans retrieved within the top `k` (1.0 for none: nothing was missed)."""
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks) if ranks else 1.0


def cites(citation: Citation, gold: Gold) -> bool:
    return citation.source == gold.source and overlap(citation.start, citation.end, gold.start, gold.end) > 0


def is_precise(citation: Citation, question: Question) -> bool:
    """ALCE-style: the citation overlaps a gold span, or it supports the answer by containing a keyword."""
    if any(cites(citation, gold) for gold in question.evidence):
        return True
    quote = normalize_text(citation.quote)
    return any(normalize_text(keyword) in quote for keyword in question.keywords)


def page_scores(citations: Sequence[Citation], question: Question) -> tuple[int, int]:
    """(citations of a gold quote with known pages, those whose pages all lie within the gold quote's pages)."""
    paged = correct = 0
    for citation in citations:
        gold = next((g for g in question.evidence if g.pages and cites(citation, g)), None)
        if gold is None:
            continue
        paged += 1
        if citation.page_start is not None and citation.page_end is not None:
            correct += set(range(citation.page_start, citation.page_end + 1)) <= set(gold.pages)
    return paged, correct


def declined(answer: Answer) -> bool:
    """Whether the answer asserts nothing: a refusal, or a hedge pointing at the closest passage."""
    return answer.abstained or answer.hedged


def answer_origin(answer: Answer) -> str | None:
    """Whose text an LLM answer is: the model's own, the model's with sentences dropped or citations corrected,
    the extractive fallback, or an abstention; None for other engines."""
    engine = answering_engine(answer.engine)
    if engine not in ENGINES or not ENGINES[engine].writes:
        return None
    if answer.engine != engine:
        return "fallback"
    if declined(answer):
        return "abstained"
    corrected = any(not check.kept or "realigned" in check.reason for check in answer.checks)
    return "corrected" if corrected else "own"


def is_success(question: Question, answer: Answer) -> bool:
    if question.type == "unanswerable":
        return declined(answer)
    return not declined(answer) and contains_keywords(answer.text, question.keywords)


def score(
    question: Question,
    answer: Answer,
    retrieved: Sequence[Passage],
    documents: Mapping[str, Document],
    *,
    configuration: str,
    latency_ms: float,
    ttft_ms: float | None,
) -> Record:
    """Score one answer (and the passages retrieved for the question, best first) against the gold data."""
    ranks = tuple(retrieved_rank(gold, retrieved) for gold in question.evidence)
    first = next(
        (rank for rank, p in enumerate(retrieved, start=1) if any(retrieves(p, gold) for gold in question.evidence)),
        None,
    )
    cited = [any(cites(c, gold) for c in answer.citations) for gold in question.evidence]
    paged, page_correct = page_scores(answer.citations, question)
    return Record(
        configuration=configuration,
        id=question.id,
        type=question.type,
        split=question.split,
        question=question.question,
        answer=answer.text,
        abstained=declined(answer),
        success=is_success(question, answer),
        missing_keywords=question.keywords if declined(answer) else _missing(answer.text, question.keywords),
        retrieved_ranks=ranks,
        reciprocal_rank=(1.0 / first if first else 0.0) if question.evidence else None,
        citations=len(answer.citations),
        valid_citations=sum(is_valid_citation(c, documents) for c in answer.citations),
        precise_citations=sum(is_precise(c, question) for c in answer.citations),
        cited_share=sum(cited) / len(cited) if cited else None,
        citation_chars=sum(c.end - c.start for c in answer.citations),
        latency_ms=round(latency_ms, 2),
        ttft_ms=None if ttft_ms is None else round(ttft_ms, 2),
        origin=answer_origin(answer),
        corpus=question.corpus_dir.as_posix(),
        paged_citations=paged,
        page_correct=page_correct,
        confidence=answer.confidence,
        hedged=answer.hedged,
        set=question.set,
    )


def summarize(records: Sequence[Record]) -> dict[str, Any]:
    """Aggregate metrics of one configuration on one split (None where no question qualifies)."""
    answerable = [r for r in records if r.type in ANSWERABLE_TYPES]
    with_gold = [r for r in records if r.reciprocal_rank is not None]
    cited = [r for r in records if r.citations]
    all_citations = sum(r.citations for r in records)
    latencies = [r.latency_ms for r in records]
    ttfts = [r.ttft_ms for r in records if r.ttft_ms is not None]
    summary: dict[str, Any] = {"questions": len(records), "errors": sum(r.error is not None for r in records)}
    for k in RECALL_AT:
        summary[f"recall@{k}"] = _mean([recall_at(r.retrieved_ranks, k) for r in with_gold])
    summary["mrr"] = _mean([r.reciprocal_rank or 0.0 for r in with_gold])
    summary["citation_validity"] = sum(r.valid_citations for r in records) / all_citations if all_citations else None
    paged = sum(r.paged_citations for r in records)
    summary["page_accuracy"] = sum(r.page_correct for r in records) / paged if paged else None
    summary["citation_precision"] = _mean([r.precise_citations / r.citations for r in cited])
    summary["citation_recall"] = _mean([r.cited_share or 0.0 for r in with_gold])
    summary["citation_chars"] = _mean([r.citation_chars / r.citations for r in cited])
    summary["accuracy"] = _rate(answerable, lambda r: r.success)
    summary["false_refusal"] = _rate(answerable, lambda r: r.abstained)
    summary["abstention_unanswerable"] = _rate([r for r in records if r.type == "unanswerable"], lambda r: r.abstained)
    summary["false_premise_corrected"] = _rate([r for r in records if r.type == "false_premise"], lambda r: r.success)
    summary["by_type"] = {t: _rate([r for r in records if r.type == t], lambda r: r.success) for t in QUESTION_TYPES}
    summary.update(refusal_scores(records))
    origins = [r for r in records if r.origin is not None]
    if origins:
        summary["origin"] = {o: _rate(origins, lambda r, o=o: r.origin == o) for o in ORIGINS}  # type: ignore[misc]
        summary["origin_by_type"] = {
            t: {o: _rate(typed, lambda r, o=o: r.origin == o) for o in ORIGINS}  # type: ignore[misc]
            for t in QUESTION_TYPES
            if (typed := [r for r in origins if r.type == t])
        }
        answered = [r for r in origins if r.origin != "abstained"]
        summary["model_share"] = _rate(answered, lambda r: r.origin in {"own", "corrected"})
        # accuracy counting only the model's own verified words: a right answer that fell back to quotes is a miss
        summary["own_accuracy"] = _rate(
            [r for r in origins if r.type in ANSWERABLE_TYPES], lambda r: r.success and r.origin in {"own", "corrected"}
        )
        summary["fallback_answerable"] = _rate(
            [r for r in origins if r.type in ANSWERABLE_TYPES], lambda r: r.origin == "fallback"
        )
    summary["latency_p50_ms"] = _percentile(latencies, 50)
    summary["latency_p95_ms"] = _percentile(latencies, 95)
    summary["ttft_p50_ms"] = _percentile(ttfts, 50)
    return summary


def refusal_scores(records: Sequence[Record]) -> dict[str, float | None]:
    """Refusal precision, recall and F1, and Trust-Score's F1_RG: the macro mean of the F1 of refusing the
    unanswerable and of answering the rest (false premises count as answerable: they need a correction)."""
    refused = [r for r in records if r.abstained]
    unanswerable = [r for r in records if r.type == "unanswerable"]
    answered = [r for r in records if not r.abstained]
    answerable = [r for r in records if r.type != "unanswerable"]
    precision = _rate(refused, lambda r: r.type == "unanswerable")
    recall = _rate(unanswerable, lambda r: r.abstained)
    answer_precision = _rate(answered, lambda r: r.type != "unanswerable")
    answer_recall = _rate(answerable, lambda r: not r.abstained)
    refuse_f1, answer_f1 = _f1(precision, recall), _f1(answer_precision, answer_recall)
    macro = None if refuse_f1 is None or answer_f1 is None else round((refuse_f1 + answer_f1) / 2, 4)
    return {
        "refusal_precision": precision,
        "refusal_recall": recall,
        "refusal_f1": refuse_f1,
        "answer_f1": answer_f1,
        "refusal_f1_rg": macro,
    }


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None if recall is None else 0.0
    return round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _rate(records: Sequence[Record], predicate: Callable[[Record], bool]) -> float | None:
    return round(sum(predicate(r) for r in records) / len(records), 4) if records else None


def _percentile(values: Sequence[float], percent: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), without numpy."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * percent / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 2)
