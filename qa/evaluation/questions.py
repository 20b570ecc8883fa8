"""The evaluation set (JSONL, gold quotes) -> validated `Question`s; gate thresholds -> failures.

Each line: `id`, `question`, `type` (see QUESTION_TYPES), `answer`, `keywords` a correct answer must hold,
`evidence` [{`source`, `quote`, `pages`?}] with each quote an exact substring of the corpus file (of its extracted
text for a PDF, HTML, DOCX or EPUB file; `pages`: the 1-based PDF pages it is printed on), and `split` (dev or test:
tune on dev, never on test; second and formats: the held-out corpora). Metrics: `qa.evaluation.metrics`; runs:
`qa.evaluation.runs`; reports: `qa.evaluation.report`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from qa.errors import EvalSetError
from qa.ingest import reader_for

ANSWERABLE_TYPES = ("single", "multi", "numeric", "attribution", "comparison")
QUESTION_TYPES = (*ANSWERABLE_TYPES, "unanswerable", "false_premise")
SPLITS = ("dev", "test", "second", "formats")  # fit and tune on dev only; test, second and formats are held out
# The question sets `qa eval` knows: name -> (questions file, corpus folder). Only the seeds' dev split is fitted on.
QUESTION_SETS = {
    "seeds": (Path("eval/questions.jsonl"), Path("seeds")),
    "second": (Path("eval/second/questions.jsonl"), Path("eval/second/corpus")),
    "formats": (Path("eval/formats/questions.jsonl"), Path("eval/formats/documents")),  # PDF, HTML, DOCX, EPUB, txt
}
COPIED_RUN = 5  # a paraphrased question copies no run of this many words from an article...
NAME_WORDS = 3  # ...unless this many of them are capitalised (a name such as "U.S. News and World Report")
WORD = re.compile(r"[\w’'-]+")


@dataclass(frozen=True, slots=True)
class Gold:
    source: str
    start: int
    end: int
    quote: str
    pages: tuple[int, ...] = ()  # PDFs: the pages the quote is printed on (found by hand, not by the extractor)


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    question: str
    type: str
    answer: str
    keywords: tuple[str, ...]
    evidence: tuple[Gold, ...]
    split: str
    set: str = ""  # "paraphrase": written without copying the articles (checked by `validate_questions`)
    corpus_dir: Path = Path("seeds")  # the folder whose articles answer it


def check_gate(summary: Mapping[str, Any], thresholds: Mapping[str, Any]) -> list[str]:
    """The thresholds `summary` fails, as readable lines (empty when it passes)."""
    failures = []
    for bound in ("min", "max"):
        for metric, threshold in thresholds.get(bound, {}).items():
            value = summary.get(metric)
            if value is None or (value < threshold if bound == "min" else value > threshold):
                failures.append(f"{metric} = {value} is {'below' if bound == 'min' else 'above'} {threshold}")
    return failures


def load_thresholds(path: Path) -> dict[str, Any]:
    try:
        thresholds: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalSetError(f"Cannot read gate thresholds {path} ({exc}): restore it from git.") from exc
    if not {"configuration", "split"} <= thresholds.keys():
        raise EvalSetError(f"{path} must name the gated `configuration` and `split`, with `min`/`max` metrics.")
    return thresholds


def load_questions(path: Path, corpus_dir: Path) -> list[Question]:
    """The question set with each gold quote located in its file; EvalSetError lists every problem."""
    questions, problems = _parse(path, corpus_dir)
    raise_problems(path, problems)
    return questions


def validate_questions(path: Path, corpus_dir: Path) -> list[str]:
    """Every problem of the question set: JSONL, fields, types, splits, unique ids, quotes found verbatim."""
    return _parse(path, corpus_dir)[1]


class Identified(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=Identified)
LineParser = Callable[[str, Path, dict[str, str | None]], tuple[Item | None, list[str]]]


def parse_set(
    path: Path, corpus_dir: Path, parse_line: LineParser[Item], *, what: str, option: str
) -> tuple[list[Item], list[str]]:
    """A JSONL evaluation set read line by line with `parse_line`: its items and every problem, by line number,
    repeated ids included. `what` and `option` name the set and the option that points elsewhere."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalSetError(f"Cannot read the {what} {path} ({exc}): pass {option} FILE.") from exc
    texts: dict[str, str | None] = {}  # the corpus files the quotes are looked up in, read once
    items: list[Item] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            item, found = parse_line(line, corpus_dir, texts)
            items += [item] if item else []
            problems += [f"line {number}: {problem}" for problem in found]
    ids = [item.id for item in items]
    problems += [f"id {i!r} is used more than once" for i in sorted({i for i in ids if ids.count(i) > 1})]
    return items, problems


def raise_problems(path: Path, problems: Sequence[str]) -> None:
    """EvalSetError listing the first 20 problems of the set at `path`, if it has any."""
    if problems:
        shown = "\n".join(f"- {p}" for p in problems[:20])
        raise EvalSetError(f"{path} has {len(problems)} problem(s); fix these lines:\n{shown}")


def _parse(path: Path, corpus_dir: Path) -> tuple[list[Question], list[str]]:
    questions, problems = parse_set(path, corpus_dir, _parse_line, what="question set", option="--questions")
    present = {q.split for q in questions}
    if present & {"dev", "test"}:  # a set that is fitted on needs its held-out half, and the other way round
        problems += [f"split {s!r} has no question" for s in ("dev", "test") if s not in present]
    problems += copied_wording([q for q in questions if q.set == "paraphrase"], corpus_dir)
    if not questions and not problems:
        problems.append("the file holds no question")
    return questions, problems


def _parse_line(line: str, corpus_dir: Path, texts: dict[str, str | None]) -> tuple[Question | None, list[str]]:
    try:
        raw = json.loads(line)
    except ValueError as exc:
        return None, [f"not JSON ({exc})"]
    if not isinstance(raw, dict):
        return None, ["not a JSON object"]
    return parse_question(raw, corpus_dir, texts)


def parse_question(
    raw: dict[str, Any], corpus_dir: Path, texts: dict[str, str | None]
) -> tuple[Question | None, list[str]]:
    """One question record -> a `Question` with its gold quotes located in `corpus_dir`, or the problems found.

    `texts` caches the files read (path -> text, None when unreadable) across calls.
    """
    problems = _field_problems(raw)
    if problems:
        return None, problems
    evidence = []
    for item in raw["evidence"]:
        text = _source_text(corpus_dir / item["source"], texts)
        start = -1 if text is None else text.find(item["quote"])
        if text is None:
            problems.append(f"{raw['id']}: source {item['source']!r} is not a readable file in {corpus_dir}")
        elif start < 0:
            problems.append(f"{raw['id']}: quote {item['quote'][:60]!r}… is not in {item['source']}")
        else:
            pages = tuple(int(page) for page in item.get("pages", ()))
            evidence.append(Gold(item["source"], start, start + len(item["quote"]), item["quote"], pages))
    question = Question(
        raw["id"],
        raw["question"],
        raw["type"],
        raw["answer"],
        tuple(raw["keywords"]),
        tuple(evidence),
        raw["split"],
        str(raw.get("set", "")),
        corpus_dir,
    )
    return (None if problems else question), problems


def _field_problems(raw: dict[str, Any]) -> list[str]:
    name = raw.get("id", "?")
    problems = [
        f"{name}: `{key}` must be non-empty text"
        for key in ("id", "question")
        if not isinstance(raw.get(key), str) or not raw[key].strip()
    ]
    if not isinstance(raw.get("answer"), str):
        problems.append(f"{name}: `answer` must be text (empty for an unanswerable question)")
    if raw.get("type") not in QUESTION_TYPES:
        problems.append(f"{name}: type {raw.get('type')!r} is not one of {', '.join(QUESTION_TYPES)}")
    if raw.get("split") not in SPLITS:
        problems.append(f"{name}: split {raw.get('split')!r} is not one of {', '.join(SPLITS)}")
    keywords, evidence = raw.get("keywords"), raw.get("evidence")
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
        problems.append(f"{name}: `keywords` must be a list of non-empty strings")
    if not isinstance(evidence, list) or not all(
        isinstance(e, dict) and isinstance(e.get("source"), str) and isinstance(e.get("quote"), str) and e["quote"]
        for e in evidence
    ):
        problems.append(f"{name}: `evidence` must be a list of {{source, quote}} with non-empty quotes")
    if problems:
        return problems
    if raw["type"] == "unanswerable" and (evidence or keywords):
        problems.append(f"{name}: an unanswerable question has no evidence and no keywords")
    if raw["type"] != "unanswerable" and not (evidence and keywords and raw["answer"].strip()):
        problems.append(f"{name}: a {raw['type']} question needs an answer, evidence and keywords")
    return problems


def _source_text(path: Path, texts: dict[str, str | None]) -> str | None:
    """The file's text as the corpus reads it, cached: decoded from bytes (no newline translation), or for a
    document format (PDF, ...) the text its reader extracts, which citations point into."""
    if str(path) not in texts:
        reader = reader_for(path)
        if reader is not None and reader.version and path.is_file():
            found = list(reader.read(path, path.name, set()))
            texts[str(path)] = found[0].text if found and found[0].text else None
            return texts[str(path)]
        try:
            texts[str(path)] = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            texts[str(path)] = None
    return texts[str(path)]


def copied_runs(question: str, articles: Sequence[str]) -> list[str]:
    """Runs of COPIED_RUN words of `question` that stand in one of `articles` (case and punctuation ignored),
    except runs that are mostly a name."""
    words = WORD.findall(question)
    article_runs = set()
    for text in articles:
        found = [w.lower() for w in WORD.findall(text)]
        article_runs |= {tuple(found[i : i + COPIED_RUN]) for i in range(len(found) - COPIED_RUN + 1)}
    copied = []
    for i in range(len(words) - COPIED_RUN + 1):
        run = words[i : i + COPIED_RUN]
        if tuple(w.lower() for w in run) in article_runs and sum(w[0].isupper() for w in run) < NAME_WORDS:
            copied.append(" ".join(run))
    return copied


def copied_wording(questions: Sequence[Question], corpus_dir: Path) -> list[str]:
    """A problem line for each question that copies a run of words from an article of `corpus_dir`."""
    if not questions:
        return []
    articles = [_source_text(path, {}) or "" for path in sorted(corpus_dir.glob("*")) if path.is_file()]
    return [
        f"{q.id}: copies the article's wording {run!r} (a paraphrased question must not)"
        for q in questions
        for run in copied_runs(q.question, articles)[:1]
    ]
