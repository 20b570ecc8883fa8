"""Answers, passages, errors and progress -> what the command line prints: text a terminal shows but never obeys.

Article text, titles and file names may hold escape sequences (a title-setting `ESC ] 0 ; ... BEL`, colours,
`CSI 2 J` to clear the screen); printed as they are, the terminal would act on them. Plain-text output drops them;
JSON output escapes them, so quotes stay exact.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from qa.errors import QAError
from qa.text import SURROGATE
from qa.types import Answer, Citation, Passage, Progress

# A whole escape sequence (CSI ... final byte; OSC/DCS/PM/APC ... BEL or ST; or ESC and one character), 7- or 8-bit.
ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]P^_X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what is left: other C0, DEL and C1 (tab and newline stay)
UNSAFE_IN_JSON = re.compile("[\\x7f-\\x9f\\ud800-\\udfff]")  # json.dumps leaves these raw with ensure_ascii=False


def terminal_safe(text: str) -> str:
    """`text` without escape sequences or control characters (newlines and tabs kept), and encodable."""
    return SURROGATE.sub("\ufffd", CONTROL.sub("", ESCAPE_SEQUENCE.sub("", text)))


def json_line(record: Any) -> str:
    """One JSON object on one line, with DEL, C1 controls and lone surrogates escaped (the data is unchanged)."""
    return UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(record, ensure_ascii=False))


def format_answer(answer: Answer) -> str:
    """A readable answer followed by its numbered sources and their exact quotes."""
    lines = [answer.text]
    if answer.citations:
        lines += ["", "Sources:"]
        for c in answer.citations:  # the quote on its own line, not wrapped in quotes it may already contain
            lines += [f"[{c.marker}] {c.source}{page_note(c)} [{c.start}:{c.end}]", f"    {' '.join(c.quote.split())}"]
    elif answer.abstained and answer.passages:
        lines += ["", "Related passages (they do not answer the question):"]
        lines += [f"- {p.source} [{p.start}:{p.end}]" for p in answer.passages[:3]]
    return terminal_safe("\n".join(lines))


def page_note(citation: Citation) -> str:
    """ " p. 7" (the printed label) or " pp. 6-7" for a citation of a paged document; "" otherwise."""
    labels = citation.page_labels
    if not labels:
        return ""
    return f" p. {labels[0]}" if len(labels) == 1 else f" pp. {labels[0]}-{labels[-1]}"


def format_passage(rank: int, passage: Passage) -> str:
    return terminal_safe(
        f"{rank}. {passage.source} [{passage.start}:{passage.end}] score={passage.score:.4f}\n"
        f"   {' '.join(passage.text.split())[:300]}"
    )


class UsageProblem(click.ClickException):
    """A wrong command line, reported on one line (click prints usage, a hint and the error on three)."""

    exit_code = 2


@contextmanager
def one_line_usage() -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:  # `qa` alone prints its help
        raise
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        raise UsageProblem(terminal_safe(exc.format_message()) + hint) from exc


class OneLineErrors(click.Group):
    """A command group whose usage errors, like its other errors, are one line on stderr (exit status 2)."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with one_line_usage():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_usage():
            return super().invoke(ctx)


@contextmanager
def errors_as_click() -> Iterator[None]:
    try:
        yield
    except QAError as exc:
        raise click.ClickException(terminal_safe(" ".join(str(exc).split()))) from exc


class SafeFormatter(logging.Formatter):
    """Log lines (they name files) without escape sequences."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record))


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])


@contextmanager
def progress_bar(*labels: str) -> Iterator[Progress]:
    """A `Progress` drawing a click bar on stderr, which appears only once there is progress to show.

    A report of (0, total) after progress starts the next step, under the next label (`build_index` splits
    sentences, then embeds).
    """
    bar: Any = None
    step = -1

    def progress(done: int, total: int) -> None:
        nonlocal bar, step
        if bar is None or (done == 0 and bar.pos > 0):
            if bar is not None:
                bar.__exit__(None, None, None)
            step = min(step + 1, len(labels) - 1)
            bar = click.progressbar(length=max(total, 1), label=labels[step], file=sys.stderr)
            bar.__enter__()
        bar.length = max(total, 1)
        bar.update(max(done - bar.pos, 0))

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
