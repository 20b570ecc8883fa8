"""Raw user input -> a clean question: validation, small talk, and follow-ups made standalone."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from qa.errors import InvalidQuestion
from qa.text import SURROGATE, shorten

ECHO_CHARS = 200  # a refused question is shown back at most this long
History = Sequence[Mapping[str, str]]  # [{"role": "user" | "assistant", "content": "..."}], oldest first

GREETING = re.compile(
    r"^(?:hi|hello|hey|hallo|good (?:morning|afternoon|evening)|greetings|yo)\b[\s!.,]*(?:there)?[\s!.]*$",
    re.IGNORECASE,
)
THANKS = re.compile(
    r"^(?:thanks?|thank you|thx|cheers|great|ok(?:ay)?|cool|nice|perfect)"
    r"(?:[\s,]+(?:a lot|so much|very much|again|you|thanks?|that'?s? (?:great|helpful)))*[\s!.,]*$",
    re.IGNORECASE,
)
BYE = re.compile(r"^(?:bye|goodbye|see you|ciao)\b[\w\s!.,]*$", re.IGNORECASE)
HELP = re.compile(r"^(?:help|who are you|what are you|what can you do|how does this work)\??[\s!.]*$", re.IGNORECASE)
FOLLOW_UP = re.compile(
    r"^(?:and|but|also|what about|how about)\b|\b(?:he|she|they|them|him|her|it|its|their|"
    r"this|that|those|these|there)\b",
    re.IGNORECASE,
)


def clean_question(question: object, *, max_chars: int) -> str:
    """Strip control characters and surrounding space; refuse empty or over-long questions with the fix."""
    if not isinstance(question, str):
        raise InvalidQuestion(f"A question must be text, not {type(question).__name__}.")
    if len(question) > max_chars:
        raise InvalidQuestion(
            f"The question is {len(question):,} characters long; the limit is {max_chars:,}. "
            "Ask about one thing in a sentence or two."
        )
    surrogate = SURROGATE.search(question)
    if surrogate is not None:
        raise InvalidQuestion(
            f"The question is not valid Unicode text (a lone surrogate at character {surrogate.start() + 1}, "
            "e.g. from bytes that are not UTF-8): retype it or save it as UTF-8."
        )
    visible = "".join(" " if unicodedata.category(c) in {"Cc", "Cf"} else c for c in question)
    cleaned = " ".join(visible.split())
    if not cleaned:
        raise InvalidQuestion("The question is empty: type a question about the articles.")
    return cleaned


def clean_history(history: object, *, max_turns: int, max_chars: int) -> list[dict[str, str]]:
    """The last `max_turns` messages, each cut to `max_chars`; refuse anything that is not a list of messages.

    subtle: a follow-up is joined to the previous question for retrieval, so an unbounded history made every
    request embed and score megabytes of text.
    """
    if not isinstance(history, Sequence) or isinstance(history, (str, bytes)):
        raise InvalidQuestion('history must be a list of {"role": ..., "content": ...} messages.')
    kept: list[dict[str, str]] = []
    for turn in list(history)[-max_turns:] if max_turns > 0 else []:
        role = turn.get("role") if isinstance(turn, Mapping) else None
        content = turn.get("content", "") if isinstance(turn, Mapping) else None
        if not isinstance(role, str) or not isinstance(content, str):
            raise InvalidQuestion('history must be a list of {"role": ..., "content": ...} messages with text.')
        kept.append({"role": role, "content": SURROGATE.sub("\ufffd", content[:max_chars])})
    return kept


def echo_question(question: object, limit: int = ECHO_CHARS) -> str:
    """A refused question as it may be shown back: short, and encodable (no lone surrogates)."""
    if not isinstance(question, str):
        return ""
    return shorten(SURROGATE.sub("\ufffd", question), limit)


def smalltalk_reply(question: str, *, documents: int) -> str | None:
    """A short reply to greetings, thanks and "who are you", or None for a real question."""
    if GREETING.match(question):
        return f"Hello! Ask me anything about the {documents} news articles I hold; I'll cite the exact passages."
    if THANKS.match(question):
        return "You're welcome. Ask another question whenever you like."
    if BYE.match(question):
        return "Goodbye!"
    if HELP.match(question):
        return (
            f"I answer questions about {documents} news articles. Every sentence of an answer cites the exact "
            "passage it comes from, and when the articles don't hold the answer I say so."
        )
    return None


def standalone_question(question: str, history: History | None) -> str:
    """A follow-up ("and what did he say?") joined to the previous user question so retrieval has context."""
    if not history or not FOLLOW_UP.search(question) or len(question.split()) > 14:
        return question
    previous = [turn.get("content", "") for turn in history if turn.get("role") == "user"]
    return f"{previous[-1]} {question}" if previous and previous[-1] else question
