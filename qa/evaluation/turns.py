"""Conversations x configurations -> scored turns -> metrics by turn position and follow-up kind.

A conversation is answered turn by turn through `stream(question, history=...)`; the history holds the earlier
questions and answers, each answer with its citations, as the page sends them. Every turn is scored like a single
question (`qa.evaluation.metrics.score`; retrieval is judged on the passages the answer was built from). On top:
- *evidence hit*: an answerable turn's answer cites a gold span;
- *new question*: a follow-up whose gold spans overlap none of the earlier turns' gold spans;
- *repeated citations*: an answered new question whose answer cites a span that an earlier answer of the same
  conversation cited (a citation overlapping this turn's own gold spans does not count): the failure of answering
  a follow-up with the previous answer again.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from qa import Answer, Citation, Document, QAError, Quotes
from qa.evaluation.conversations import FOLLOW_UP_KINDS, Conversation
from qa.evaluation.metrics import Record, cites, declined, overlap, score, summarize
from qa.evaluation.questions import ANSWERABLE_TYPES, Gold, Question
from qa.evaluation.runs import Configuration, Harness, peak_rss_mb, with_all

# The rows of the per-turn table: name -> which turns belong to it.
TURN_GROUPS = ("first turns", "follow-ups", "turn 2", "turn 3", "turn 4", *FOLLOW_UP_KINDS, "unanswerable follow-ups")
FOLLOW_UP_TARGET = 0.8  # follow-ups should reach this share of first-turn accuracy
REPEAT_TARGET = 0.1  # at most this share of answered new questions may repeat an earlier answer's citations


class ConversationAnswerer(Protocol):
    @property
    def documents(self) -> Mapping[str, Document]: ...

    def stream(
        self, question: str, *, history: Sequence[Mapping[str, Any]] | None = ..., engine: str | None = ...
    ) -> Iterator[str | Quotes | Answer]: ...


@dataclass(frozen=True, slots=True)
class TurnRecord:
    conversation: str
    position: int  # 1-based
    kind: str  # qa.evaluation.conversations.TURN_KINDS
    new_question: bool  # a follow-up whose gold evidence overlaps no earlier turn's
    repeats: bool  # the answer cites a span an earlier answer cited (not gold for this turn)
    evidence_hit: bool | None  # answerable turns: the answer cites a gold span
    record: Record


@dataclass
class ConversationRun:
    configurations: list[Configuration]
    splits: list[str]
    turns: list[TurnRecord] = field(default_factory=list)
    summaries: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)  # config/split/group
    skipped: dict[str, str] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)


def evaluate_conversations(
    harness: Harness,
    configurations: Sequence[Configuration],
    conversations: Sequence[Conversation],
    *,
    splits: Sequence[str],
) -> ConversationRun:
    """Answer every conversation of `splits` with every configuration; summaries per split and turn group."""
    run = ConversationRun(list(configurations), [s for s in splits if s in ("dev", "test")])
    chosen = [c for c in conversations if c.split in run.splits]
    harness.total += sum(len(c.turns) for c in chosen) * len(configurations)
    for configuration in configurations:
        turns: list[TurnRecord] = []
        for conversation in chosen:
            try:
                answerer: ConversationAnswerer = harness.answerer(configuration, conversation.corpus_dir)  # type: ignore[assignment]
            except QAError as exc:
                run.skipped[configuration.name] = str(exc)
                harness.tick(len(conversation.turns))
                continue
            turns += answer_conversation(answerer, conversation, configuration, harness)
        if turns:
            run.turns += turns
            run.summaries[configuration.name] = {
                split: summarize_turns([t for t in turns if split == "all" or t.record.split == split])
                for split in with_all(run.splits)
            }
            run.peak_rss_mb[configuration.name] = peak_rss_mb()
    return run


def answer_conversation(
    answerer: ConversationAnswerer, conversation: Conversation, configuration: Configuration, harness: Harness | None
) -> list[TurnRecord]:
    """Answer the turns in order, each with the conversation so far as history; score each turn."""
    engine = None if configuration.engine == "baseline" else configuration.engine
    history: list[dict[str, Any]] = []
    earlier_gold: list[Gold] = []
    earlier_cited: list[Citation] = []
    records = []
    for position, (question, kind) in enumerate(zip(conversation.turns, conversation.kinds, strict=True), start=1):
        answer, latency, error = _answer(answerer, question, history, engine)
        record = score(
            question, answer, answer.passages, answerer.documents, configuration=configuration.name,
            latency_ms=latency, ttft_ms=None,
        )  # fmt: skip
        new = (
            position > 1
            and bool(question.evidence)
            and not any(_same(g, e) for g in question.evidence for e in earlier_gold)
        )
        hit = any(cites(c, g) for c in answer.citations for g in question.evidence)
        records.append(
            TurnRecord(
                conversation.id,
                position,
                kind,
                new,
                new and repeats_citations(answer, question, earlier_cited),
                hit if question.type in ANSWERABLE_TYPES else None,
                dataclasses.replace(record, error=error),
            )
        )
        # what a client sends back with an answer (the page and the API's history): the span, not the pages
        cited = [
            {key: getattr(c, key) for key in ("marker", "source", "start", "end", "quote")} for c in answer.citations
        ]
        history += [
            {"role": "user", "content": question.question},
            {"role": "assistant", "content": answer.text, "citations": cited},
        ]
        earlier_gold += question.evidence
        earlier_cited += answer.citations
        if harness is not None:
            harness.tick()
    return records


def repeats_citations(answer: Answer, question: Question, earlier: Sequence[Citation]) -> bool:
    """Whether the answer cites a span an earlier answer cited, other than this turn's own gold spans."""
    if declined(answer):
        return False
    return any(
        not any(cites(c, g) for g in question.evidence)
        and any(c.source == e.source and overlap(c.start, c.end, e.start, e.end) for e in earlier)
        for c in answer.citations
    )


def summarize_turns(turns: Sequence[TurnRecord]) -> dict[str, dict[str, Any]]:
    """Metrics per TURN_GROUPS row (only rows with turns), plus "ratio": follow-up / first-turn accuracy."""
    members = {
        "first turns": [t for t in turns if t.position == 1],
        "follow-ups": [t for t in turns if t.position > 1],
        **{f"turn {n}": [t for t in turns if t.position == n] for n in (2, 3, 4)},
        **{kind: [t for t in turns if t.kind == kind] for kind in FOLLOW_UP_KINDS},
        "unanswerable follow-ups": [t for t in turns if t.position > 1 and t.record.type == "unanswerable"],
    }
    summary = {name: _group_metrics(group) for name, group in members.items() if group}
    first = summary.get("first turns", {}).get("accuracy")
    later = summary.get("follow-ups", {}).get("accuracy")
    summary["ratio"] = {"follow_up_vs_first": round(later / first, 4) if first and later is not None else None}
    return summary


def _group_metrics(turns: Sequence[TurnRecord]) -> dict[str, Any]:
    base = summarize([t.record for t in turns])
    answerable = [t for t in turns if t.evidence_hit is not None]
    new = [t for t in turns if t.new_question and not t.record.abstained]
    return {
        "turns": len(turns),
        "accuracy": base["accuracy"],
        "evidence_hit": _rate([t.evidence_hit for t in answerable]),
        "recall@5": base["recall@5"],
        "false_refusal": base["false_refusal"],
        "abstention_unanswerable": base["abstention_unanswerable"],
        "new_questions_answered": len(new),
        "repeated_citations": _rate([t.repeats for t in new]),
        "errors": base["errors"],
        "latency_p50_ms": base["latency_p50_ms"],
    }


def _rate(values: Sequence[bool | None]) -> float | None:
    return round(sum(bool(v) for v in values) / len(values), 4) if values else None


def _same(a: Gold, b: Gold) -> bool:
    return a.source == b.source and overlap(a.start, a.end, b.start, b.end) > 0


def _answer(
    answerer: ConversationAnswerer, question: Question, history: list[dict[str, Any]], engine: str | None
) -> tuple[Answer, float, str | None]:
    """The final answer, its latency in ms and the error that replaced it, if any."""
    started = time.perf_counter()
    try:
        answer: Answer | None = None
        for item in answerer.stream(question.question, history=list(history), engine=engine):
            if isinstance(item, Answer):
                answer = item
        if answer is None:
            raise QAError("the answerer returned no Answer")
    except QAError as exc:
        return Answer(question.question, f"error: {exc}", True, (), ()), 0.0, str(exc)
    return answer, (time.perf_counter() - started) * 1000, None


# (label, summary key, format): the columns of the per-turn table
TURN_COLUMNS = (
    ("accuracy", "accuracy", "{:.2f}"),
    ("evidence hit", "evidence_hit", "{:.2f}"),
    ("R@5", "recall@5", "{:.2f}"),
    ("false refusal", "false_refusal", "{:.2f}"),
    ("abstain unans.", "abstention_unanswerable", "{:.2f}"),
    ("repeated cites", "repeated_citations", "{:.2f}"),
    ("new Qs answered", "new_questions_answered", "{}"),
    ("p50 ms", "latency_p50_ms", "{:.0f}"),
)


def turn_table(run: ConversationRun, split: str) -> tuple[list[str], list[list[str]]]:
    """One row per configuration and turn group: accuracy, evidence hit, abstention, repeated citations."""
    headers = ["configuration", "turns", "n", *(label for label, _, _ in TURN_COLUMNS)]
    rows = []
    for configuration in run.configurations:
        groups = run.summaries.get(configuration.name, {}).get(split, {})
        for name in TURN_GROUPS:
            if name in groups:
                cells = [_cell(groups[name].get(key), form) for _, key, form in TURN_COLUMNS]
                rows.append([configuration.name, name, str(groups[name]["turns"]), *cells])
    return headers, rows


def target_table(run: ConversationRun) -> tuple[list[str], list[list[str]]]:
    """Per configuration and split: follow-up vs first-turn accuracy and repeated citations against their targets."""
    headers = ["configuration", "split", "follow-up / first-turn accuracy", "repeated cites", "targets met"]
    rows = []
    for name, by_split in run.summaries.items():
        for split, groups in by_split.items():
            ratio = groups["ratio"]["follow_up_vs_first"]
            repeated = groups.get("follow-ups", {}).get("repeated_citations")
            met = ratio is not None and ratio >= FOLLOW_UP_TARGET and (repeated or 0.0) < REPEAT_TARGET
            rows.append([name, split, _cell(ratio, "{:.2f}"), _cell(repeated, "{:.2f}"), "yes" if met else "no"])
    return headers, rows


def _cell(value: Any, form: str) -> str:
    return "–" if value is None else form.format(value)


def turn_failure_table(run: ConversationRun, configuration: str) -> tuple[list[str], list[list[str]]]:
    """The turns of one configuration that failed or repeated an earlier answer's citations, in order."""
    rows = []
    for turn in run.turns:
        record = turn.record
        if record.configuration != configuration or (record.success and not turn.repeats):
            continue
        outcome = (
            "error"
            if record.error
            else "repeats earlier citations"
            if record.success
            else (
                "answered an unanswerable turn"
                if record.type == "unanswerable"
                else "false refusal"
                if record.abstained
                else "misses keywords"
            )
        )
        if turn.repeats and not record.success:
            outcome += ", repeats earlier citations"
        answer = " ".join(record.answer.split())
        rows.append([record.id, turn.kind, record.type, outcome, record.question, answer[:160]])
    return ["turn", "kind", "type", "outcome", "question", "answer"], rows
