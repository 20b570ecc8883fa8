"""A question + the conversation so far -> the question read in its conversation (`FollowUp`), without a model.

The history is validated and bounded first (`clean_history`); a follow-up ("and when?", "what did he say?")
carries what it refers to (the earlier question, the names and dates of its answer) into retrieval and ranking.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qa.errors import InvalidQuestion
from qa.text import (
    COMMON_CAPITALS,
    DATE_NUMBER,
    FULL_NAME,
    MARKER,
    QUESTION_WORDS,
    SURROGATE,
    YEAR,
    capitalised_words,
    terms,
)

MAX_CITATIONS = 32  # citations of an earlier answer kept in the history (an answer quotes a few)
# [{"role": "user" | "assistant", "content": "..."}], oldest first. An assistant turn may also carry the
# "citations" of its answer ([{"source", "start", "end", ...}], as in `qa ask --json`): what it quoted.
History = Sequence[Mapping[str, Any]]

# The "join" reading of a follow-up (Settings.follow_ups): a pointing word or a leading "and" joins it to the
# previous question.
FOLLOW_UP = re.compile(
    r"^(?:and|but|also|what about|how about)\b|\b(?:he|she|they|them|him|her|it|its|their|"
    r"this|that|those|these|there)\b",
    re.IGNORECASE,
)


def clean_history(history: object, *, max_turns: int, max_chars: int) -> list[dict[str, Any]]:
    """The last `max_turns` messages, each cut to `max_chars`; refuse anything that is not a list of messages.

    An assistant message keeps the well-formed "citations" of its answer (at most MAX_CITATIONS {source, start,
    end}; anything else in them is dropped): what it quoted, so a follow-up is not answered with it again.

    subtle: a follow-up is joined to the previous question for retrieval, so an unbounded history made every
    request embed and score megabytes of text.
    """
    if not isinstance(history, Sequence) or isinstance(history, (str, bytes)):
        raise InvalidQuestion('history must be a list of {"role": ..., "content": ...} messages.')
    kept: list[dict[str, Any]] = []
    for turn in list(history)[-max_turns:] if max_turns > 0 else []:
        role = turn.get("role") if isinstance(turn, Mapping) else None
        content = turn.get("content", "") if isinstance(turn, Mapping) else None
        if not isinstance(role, str) or not isinstance(content, str):
            raise InvalidQuestion('history must be a list of {"role": ..., "content": ...} messages with text.')
        message: dict[str, Any] = {"role": role, "content": SURROGATE.sub("\ufffd", content[:max_chars])}
        spans = _cited_spans(turn.get("citations")) if role == "assistant" and isinstance(turn, Mapping) else ()
        if spans:
            message["citations"] = [{"source": source, "start": start, "end": end} for source, start, end in spans]
        kept.append(message)
    return kept


def standalone_question(question: str, history: History | None) -> str:
    """A follow-up ("and what did he say?") joined to the previous user question so retrieval has context."""
    if not history or not FOLLOW_UP.search(question) or len(question.split()) > 14:
        return question
    previous = [turn.get("content", "") for turn in history if turn.get("role") == "user"]
    return f"{previous[-1]} {question}" if previous and previous[-1] else question


# A question that refers back to the conversation: a pronoun or pointing word, a leading "and" / "what about",
# or words such as "another", "instead", "similar".
REFERS_BACK = re.compile(
    r"^(?:and|but|also|so|then|what about|how about|(?:going |coming )?back to|returning to)\b"
    r"|\b(?:he|she|they|them|him|her|hers|his|it|its|their|theirs|this|that|those|these|there|then"
    r"|another|other|else|same|similar|instead|too|either)\b",
    re.IGNORECASE,
)
# Words of a follow-up that name no term the answer must hold: the noun it points back with ("that meeting", "those
# provinces") names what an earlier turn was about; "happen" / "occur" only ask for the when or where of it; the kind
# of thing asked for ("On which day?", "what share") is checked as a kind (`qa.text.asks_for`), not as a word
POINTED_AT = re.compile(
    r"\b(?:that|this|those|these|the same)\s+(\w+)|\b(happen(?:ed|s)?|occur(?:red|s)?)\b"
    r"|\b(?:which|what|exact|the)\s+(day|date|year|month|number|percentage|share|amount|figure)\b",
    re.IGNORECASE,
)
GOES_BACK = re.compile(r"^(?:and )?(?:(?:going|coming|getting) back to|back to|returning to)\b", re.IGNORECASE)
# A question about the earlier answer itself wants the same evidence ("which article says that?", "are you sure?").
ABOUT_ANSWER = re.compile(
    r"\b(?:which|what) (?:article|source|report|outlet)s? (?:says?|said|reports?|reported)\b|\bare you sure\b"
    r"|\b(?:say|tell me) (?:that|it) again\b|\brepeat\b|\b(?:your|the) (?:sources?|quotes?)\b",
    re.IGNORECASE,
)
# Capitalised only because they open a sentence or a question.
OPENERS = COMMON_CAPITALS | QUESTION_WORDS | {"is", "are", "will", "am"}
ARTICLE_PREFIX = re.compile(r"According to “[^”]*”: ")  # how the extractive engine names an article
STANDALONE_TERMS = 4  # a question with this many content terms, or a name of its own, may stand alone
CARRIED_NAMES = 6  # names and dates carried over from an earlier answer


@dataclass(frozen=True, slots=True)
class Exchange:
    """One earlier question and its answer, with the spans the answer cited when the history gives them."""

    question: str
    answer: str
    cited: tuple[tuple[str, int, int], ...]  # (source, start, end)


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A question read in its conversation (`resolve_follow_up`)."""

    question: str  # as asked
    query: str  # the question plus what it refers to (the earlier question, names, dates): retrieval reads this
    standalone: str  # a readable form for the answer engine: the follow-up, then the question it follows
    context: str  # what was carried over from earlier turns ("" when the question stands alone)
    exchanges: tuple[Exchange, ...]  # the conversation so far, oldest first
    asks_new: bool  # it asks for something earlier answers did not give: prefer evidence they did not quote


def follow_up_text(question: str, earlier: str) -> str:
    """How the answer engine reads a follow-up: the question asked now first, then the one it follows (a small model
    given "EARLIER NOW" answers the earlier question)."""
    return f"{question} (It follows the question: {earlier})"


def resolve_follow_up(question: str, history: History | None) -> FollowUp:
    """`question` with what it refers to carried over from the conversation, without a language model.

    A question that refers back (a pronoun, "and when?", "another official") carries the previous question, itself
    resolved the same way (so "that meeting" reaches back two turns, its names fading after one), plus the names and
    dates of the previous answer. A question that stands alone (names of its own or enough terms, no pointing
    word) is a topic shift: it carries nothing, though earlier answers still count as already quoted.
    """
    exchanges = tuple(conversation(history))
    topics: list[str] = []  # the topic each earlier question had, oldest first
    carried: list[list[str]] = []  # the names and dates of each earlier answer
    for number, exchange in enumerate(exchanges):
        if number and refers_back(exchange.question):
            topics.append(" ".join([exchange.question, *entities(topics[-1]), *carried[-1]]))
        else:
            topics.append(exchange.question)
        carried.append(answer_entities(exchange.answer)[:CARRIED_NAMES])
    refers = bool(exchanges) and refers_back(question)
    context, standalone = "", question
    if refers:
        source = antecedent(question, exchanges)
        context = _distinct(question, [topics[source], *carried[source]])
        standalone = follow_up_text(question, exchanges[source].question)
    return FollowUp(
        question=question,
        query=f"{question} {context}" if context else question,
        standalone=standalone,
        context=context,
        exchanges=exchanges,
        # subtle: going back to an earlier topic ("back to the call: ...") may well want what was quoted then
        asks_new=bool(exchanges) and ABOUT_ANSWER.search(question) is None and GOES_BACK.match(question) is None,
    )


def _distinct(question: str, pieces: list[str]) -> str:
    """The pieces joined, without those already said (in the question or in a longer piece)."""
    kept: list[str] = []
    for piece in sorted(dict.fromkeys(p for p in pieces if p), key=len, reverse=True):
        if piece not in question and not any(piece in other for other in kept):
            kept.append(piece)
    return " ".join(sorted(kept, key=pieces.index))


def antecedent(question: str, exchanges: Sequence[Exchange]) -> int:
    """The exchange a follow-up refers to: the last one, unless it goes back ("back to the call: ...") to an
    earlier one sharing more of its terms."""
    last = len(exchanges) - 1
    if not GOES_BACK.match(question) or last < 1:
        return last
    wanted = terms(question)
    shared = [len(wanted & terms(f"{e.question} {e.answer}")) for e in exchanges[:last]]
    best = max(range(last), key=lambda i: (shared[i], i))
    return best if shared[best] else last


def refers_back(question: str) -> bool:
    """Whether `question` needs the conversation: it points back, or is too short and nameless to stand alone."""
    if REFERS_BACK.search(question):
        return True
    return not entities(question) and len(terms(question)) < STANDALONE_TERMS


def conversation(history: History | None) -> list[Exchange]:
    """The history as (question, answer, cited spans) exchanges; turns that are not text are skipped."""
    exchanges: list[Exchange] = []
    asked: str | None = None
    for turn in history or ():
        content = turn.get("content")
        if not isinstance(content, str):
            continue
        if turn.get("role") == "user":
            asked = content
        elif turn.get("role") == "assistant" and asked is not None:
            exchanges.append(Exchange(asked, content, _cited_spans(turn.get("citations"))))
            asked = None
    if asked is not None:  # a question whose answer is missing (an error, say) still gives context
        exchanges.append(Exchange(asked, "", ()))
    return exchanges


def entities(text: str) -> list[str]:
    """The names (runs of capitalised words, other capitalised words) and dates of `text`, in order, no repeats.

    subtle: a run at the very start loses its first word when that word is capitalised only because it opens the
    sentence ("Did Baradar ...", "The Taliban ..."), so "Wang Yi met him" still names Wang Yi.
    """
    found = []
    for match in FULL_NAME.finditer(text):
        first, _, rest = match.group(0).partition(" ")
        opener = match.start() == 0 and first.lower() in OPENERS
        found.append((match.end() - len(rest), rest.lstrip()) if opener else (match.start(), match.group(0)))
    covered = " ".join(name for _, name in found)
    found += [(text.find(word), word) for word in capitalised_words(text) if word not in covered]
    found += [(m.start(), m.group(0)) for pattern in (DATE_NUMBER, YEAR) for m in pattern.finditer(text)]
    return list(dict.fromkeys(name for _, name in sorted(found)))


def answer_entities(answer: str) -> list[str]:
    """The names and dates of an answer, sentence by sentence (each quote ends at its [n] marker), without the
    articles' titles ("According to “title”:")."""
    found: list[str] = []
    for part in MARKER.split(ARTICLE_PREFIX.sub("", answer))[::2]:
        found += entities(part.strip())
    return list(dict.fromkeys(found))


def _cited_spans(citations: object) -> tuple[tuple[str, int, int], ...]:
    """(source, start, end) of each well-formed citation of an assistant turn (the first MAX_CITATIONS); anything
    else is ignored."""
    if not isinstance(citations, Sequence) or isinstance(citations, str):
        return ()
    spans = []
    for citation in itertools.islice(citations, MAX_CITATIONS):
        if isinstance(citation, Mapping):
            source, start, end = citation.get("source"), citation.get("start"), citation.get("end")
            if isinstance(source, str) and isinstance(start, int) and isinstance(end, int) and start < end:
                spans.append((source, start, end))
    return tuple(spans)
