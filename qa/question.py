"""Raw user input -> a clean question: validation and small talk. Follow-ups: `qa.conversation`."""

from __future__ import annotations

import re
import unicodedata

from qa.errors import InvalidQuestion
from qa.text import SURROGATE

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
