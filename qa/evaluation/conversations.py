"""The multi-turn evaluation set (JSONL, gold quotes per turn) -> validated `Conversation`s.

Each line is one conversation: `id`, `split` (dev or test: tune on dev, never on test) and `turns`, 2 to 4 objects
with the fields of a question of eval/questions.jsonl (`question`, `type`, `answer`, `keywords`, `evidence`, checked
by the same parser) plus `kind`: `first` for the opening turn, then how a later turn refers to the conversation —
`pronoun` ("he", "it", "that group"), `ellipsis` ("And when?"), `shift` (a new topic) or `return` (back to an earlier
one). No turn copies a run of words from an article (the paraphrase rule of the question set). Running and scoring
them: `qa.evaluation.turns`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.evaluation.questions import Question, copied_wording, parse_question, parse_set, raise_problems

CONVERSATIONS = Path("eval/conversations.jsonl")
FOLLOW_UP_KINDS = ("pronoun", "ellipsis", "shift", "return")
TURN_KINDS = ("first", *FOLLOW_UP_KINDS)
CONVERSATION_SPLITS = ("dev", "test")
MIN_TURNS, MAX_TURNS = 2, 4


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    split: str
    turns: tuple[Question, ...]  # each turn's id is "<conversation id>.<position>", its split the conversation's
    kinds: tuple[str, ...]  # TURN_KINDS, one per turn

    @property
    def corpus_dir(self) -> Path:
        return self.turns[0].corpus_dir


def load_conversations(path: Path, corpus_dir: Path) -> list[Conversation]:
    """The conversations with every gold quote located in its file; EvalSetError lists every problem."""
    conversations, problems = _parse(path, corpus_dir)
    raise_problems(path, problems)
    return conversations


def validate_conversations(path: Path, corpus_dir: Path) -> list[str]:
    """Every problem of the set: JSON, fields, turn counts and kinds, each turn as a question, copied wording."""
    return _parse(path, corpus_dir)[1]


def _parse(path: Path, corpus_dir: Path) -> tuple[list[Conversation], list[str]]:
    conversations, problems = parse_set(
        path, corpus_dir, _parse_line, what="conversation set", option="--conversation-file"
    )
    present = {c.split for c in conversations}
    problems += [f"split {s!r} has no conversation" for s in CONVERSATION_SPLITS if conversations and s not in present]
    problems += copied_wording([turn for c in conversations for turn in c.turns], corpus_dir)
    if not conversations and not problems:
        problems.append("the file holds no conversation")
    return conversations, problems


def _parse_line(line: str, corpus_dir: Path, texts: dict[str, str | None]) -> tuple[Conversation | None, list[str]]:
    try:
        raw = json.loads(line)
    except ValueError as exc:
        return None, [f"not JSON ({exc})"]
    problems = _conversation_problems(raw)
    if problems:
        return None, problems
    turns: list[Question] = []
    for position, turn in enumerate(raw["turns"], start=1):
        name = f"{raw['id']}.{position}"
        question, found = parse_question({**turn, "id": name, "split": raw["split"]}, corpus_dir, texts)
        problems += found
        turns += [question] if question else []
        expected = ("first",) if position == 1 else FOLLOW_UP_KINDS
        if turn.get("kind") not in expected:
            problems.append(f"{name}: kind {turn.get('kind')!r} is not one of {', '.join(expected)}")
    if problems:
        return None, problems
    kinds = tuple(str(turn["kind"]) for turn in raw["turns"])
    return Conversation(raw["id"], raw["split"], tuple(turns), kinds), []


def _conversation_problems(raw: Any) -> list[str]:
    if not isinstance(raw, dict):
        return ["not a JSON object"]
    name = raw.get("id", "?")
    problems = []
    if not isinstance(raw.get("id"), str) or not raw["id"].strip():
        problems.append("`id` must be non-empty text")
    if raw.get("split") not in CONVERSATION_SPLITS:
        problems.append(f"{name}: split {raw.get('split')!r} is not one of {', '.join(CONVERSATION_SPLITS)}")
    turns = raw.get("turns")
    if not isinstance(turns, list) or not all(isinstance(turn, dict) for turn in turns):
        problems.append(f"{name}: `turns` must be a list of question objects")
    elif not MIN_TURNS <= len(turns) <= MAX_TURNS:
        problems.append(f"{name}: has {len(turns)} turns; a conversation has {MIN_TURNS} to {MAX_TURNS}")
    return problems
