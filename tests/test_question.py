from __future__ import annotations

import pytest

from qa.errors import InvalidQuestion
from qa.question import clean_history, clean_question, echo_question, smalltalk_reply, standalone_question


def test_clean_question_strips_controls_and_spaces() -> None:
    assert clean_question("  Who\x00 is\u200b\tWang\nYi? ", max_chars=100) == "Who is Wang Yi?"


def test_limits_are_explained() -> None:
    with pytest.raises(InvalidQuestion, match="limit is 10"):
        clean_question("x" * 11, max_chars=10)
    with pytest.raises(InvalidQuestion, match="must be text"):
        clean_question(None, max_chars=10)


@pytest.mark.parametrize("text", ["hi", "Hello there!", "thanks a lot", "bye", "What can you do?"])
def test_smalltalk(text: str) -> None:
    assert smalltalk_reply(text, documents=5)


@pytest.mark.parametrize(
    "text",
    [
        "Hi, how many people died at Kabul airport?",
        "Thanks to whom did China gain?",
        "Great Wall of China length",
        "perfect storm damage in Texas",
    ],
)
def test_real_questions_are_not_smalltalk(text: str) -> None:
    assert smalltalk_reply(text, documents=5) is None


def test_standalone_question_joins_follow_ups_only() -> None:
    history = [{"role": "user", "content": "Who is Meng Hongwei?"}, {"role": "assistant", "content": "..."}]
    assert standalone_question("What happened to him?", history) == "Who is Meng Hongwei? What happened to him?"
    assert standalone_question("Where is Tianjin?", history) == "Where is Tianjin?"
    assert standalone_question("What happened to him?", None) == "What happened to him?"


@pytest.mark.parametrize("text", ["Who is \ud800 Wang Yi?", "caf\udce9 owner?"])
def test_lone_surrogates_are_refused_in_one_line(text: str) -> None:
    """A lone surrogate (from invalid UTF-8 decoded with surrogateescape, or a JSON "\\ud800") cannot be encoded."""
    with pytest.raises(InvalidQuestion, match="not valid Unicode text") as refused:
        clean_question(text, max_chars=100)
    assert "\n" not in str(refused.value)
    str(refused.value).encode("utf-8")  # the message itself holds no surrogate


def test_history_is_bounded_in_turns_and_characters() -> None:
    long_history = [{"role": "user", "content": "Q" * 1_000_000}, {"role": "assistant", "content": "A" * 900_000}]
    long_history += [{"role": "user", "content": f"question {n}"} for n in range(40)]
    kept = clean_history(long_history, max_turns=8, max_chars=2000)
    assert len(kept) == 8 and kept[-1]["content"] == "question 39"
    assert all(len(turn["content"]) <= 2000 for turn in clean_history(long_history[:2], max_turns=8, max_chars=2000))
    with pytest.raises(InvalidQuestion, match="history"):
        clean_history([{"role": "user", "content": ["not", "text"]}], max_turns=8, max_chars=2000)  # type: ignore[list-item]
    with pytest.raises(InvalidQuestion, match="history"):
        clean_history("not a list", max_turns=8, max_chars=2000)  # type: ignore[arg-type]


def test_refused_questions_are_echoed_short_and_encodable() -> None:
    echoed = echo_question("x" * 5_000_000)
    assert len(echoed) <= 201 and echoed.endswith("…")
    assert echo_question("bad \ud800 text") == "bad \ufffd text"
    assert echo_question(None) == ""
