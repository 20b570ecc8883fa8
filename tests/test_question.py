from __future__ import annotations

import pytest

from qa.errors import InvalidQuestion
from qa.question import clean_question, smalltalk_reply, standalone_question


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
