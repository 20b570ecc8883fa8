from __future__ import annotations

import pytest

from qa.conversation.resolve import (
    MAX_CITATIONS,
    answer_entities,
    clean_history,
    conversation,
    entities,
    refers_back,
    resolve_follow_up,
    standalone_question,
)
from qa.errors import InvalidQuestion
from qa.question import clean_question, smalltalk_reply
from qa.text import echo_question


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


MENG = "Who is Meng Hongwei?"
MENG_ANSWER = "Prominent among them was former public security chief Meng Hongwei. [1]"


def exchange(question: str, answer: str, **extra: object) -> list[dict[str, object]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer, **extra}]


def test_a_question_without_history_stands_alone() -> None:
    for history in (None, []):
        follow_up = resolve_follow_up("Who is Meng Hongwei?", history)
        assert follow_up.query == follow_up.standalone == "Who is Meng Hongwei?"
        assert follow_up.context == "" and follow_up.exchanges == () and not follow_up.asks_new


def test_a_pronoun_carries_the_previous_question_and_the_names_of_its_answer() -> None:
    history = exchange(
        "Who met Mullah Baradar in Tianjin?", "In late July, Foreign Minister Wang Yi met Ghani Baradar. [1]"
    )
    follow_up = resolve_follow_up("What did he ask the Taliban to do?", history)
    assert follow_up.query.startswith("What did he ask the Taliban to do? Who met Mullah Baradar in Tianjin?")
    assert "Foreign Minister Wang Yi" in follow_up.context and "Ghani Baradar" in follow_up.context
    assert "In late" not in follow_up.context  # a sentence's first word is no name
    assert follow_up.standalone == (
        "What did he ask the Taliban to do? (It follows the question: Who met Mullah Baradar in Tianjin?)"
    )
    assert follow_up.asks_new


def test_an_ellipsis_reaches_back_through_a_follow_up_to_its_topic() -> None:
    history = exchange("Who met Mullah Baradar in Tianjin?", "Wang Yi met Baradar. [1]")
    history += exchange("What did he ask the Taliban to do?", "To break with the ETIM. [1]")
    follow_up = resolve_follow_up("And when did that meeting happen?", history)
    assert "What did he ask the Taliban to do?" in follow_up.context
    assert "Tianjin" in follow_up.context and "ETIM" in follow_up.context


@pytest.mark.parametrize(
    "question", ["What was President Biden's plan for dealing with the Taliban?", "Where is the Wakhan Corridor?"]
)
def test_a_topic_shift_carries_nothing_but_still_wants_new_evidence(question: str) -> None:
    follow_up = resolve_follow_up(question, exchange(MENG, MENG_ANSWER))
    assert follow_up.query == question and follow_up.context == ""
    assert follow_up.asks_new and len(follow_up.exchanges) == 1


def test_going_back_refers_to_the_earlier_exchange_it_names() -> None:
    history = exchange("Whom did Xi Jinping phone in mid-July?", "Xi held a call with Ashraf Ghani. [1]")
    history += exchange("What happened to him when the Taliban reached the capital?", "Ghani fled. [1]")
    back = resolve_follow_up("Back to the call: what did Xi assure him of?", history)
    assert "Whom did Xi Jinping phone" in back.context and "capital" not in back.context
    assert not back.asks_new  # going back may well want what was quoted then
    plain = resolve_follow_up("What did he say?", history)
    assert "capital" in plain.context


@pytest.mark.parametrize("question", ["Which article says that?", "Are you sure?", "What are your sources?"])
def test_a_question_about_the_answer_itself_may_reuse_its_quotes(question: str) -> None:
    follow_up = resolve_follow_up(question, exchange(MENG, MENG_ANSWER))
    assert follow_up.context and not follow_up.asks_new


def test_history_is_read_leniently_and_citations_are_optional() -> None:
    cited = [{"source": "a.txt", "start": 3, "end": 9, "quote": "..."}, {"source": "a.txt", "start": "x"}, "junk"]
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": 42},
        *exchange(MENG, MENG_ANSWER, citations=cited),
        {"role": "assistant", "content": "an assistant turn with no question before it"},
        {"role": "user", "content": "What happened to him?"},  # its answer failed
    ]
    exchanges = conversation(history)
    assert [(e.question, e.cited) for e in exchanges] == [(MENG, (("a.txt", 3, 9),)), ("What happened to him?", ())]
    assert resolve_follow_up("And when?", history).context.startswith("What happened to him? Meng Hongwei")
    assert (
        conversation([{"role": "user", "content": MENG}, {"role": "assistant", "content": "x", "citations": 5}])[
            0
        ].cited
        == ()
    )


def test_entities_are_names_and_dates_in_order() -> None:
    text = "On August 26, a bombing claimed by ISIS at Kabul airport in 2021 killed 85 people, Reuters reported."
    assert entities(text) == ["August", "August 26", "ISIS", "Kabul", "2021", "Reuters"]
    assert entities("Chinese Foreign Minister Wang Yi met Mullah Abdul Ghani Baradar.")[1:] == [
        "Mullah Abdul Ghani Baradar"
    ]
    assert answer_entities("According to “Big News Title”: Wang Yi met him. [1] The Taliban agreed. [2]") == [
        "Wang Yi",
        "Taliban",
    ]


@pytest.mark.parametrize(
    ("question", "refers"),
    [
        ("When was that?", True),
        ("On which day?", True),
        ("Did another official agree?", True),
        ("What will he do instead?", True),
        ("And how many provinces do they hold?", True),
        ("How many districts have fallen?", True),  # too few terms and no name to stand alone
        ("Which metal used in batteries does Afghanistan have large deposits of?", False),
        ("Until which year were terrorist attacks frequent in China?", False),
    ],
)
def test_refers_back(question: str, refers: bool) -> None:
    assert refers_back(question) is refers


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


def test_cleaning_the_history_keeps_what_earlier_answers_cited() -> None:
    """A follow-up demotes what earlier answers quoted: the bounded history must still say what that was."""
    cited = [{"source": "a.txt", "start": 3, "end": 9, "quote": "..."}, {"source": "a.txt", "start": "x"}, "junk"]
    many = [{"source": "b.txt", "start": n, "end": n + 1} for n in range(1000)]
    history = [
        {"role": "user", "content": MENG, "citations": cited},
        {"role": "assistant", "content": MENG_ANSWER, "citations": cited},
        {"role": "assistant", "content": MENG_ANSWER, "citations": many},
        {"role": "assistant", "content": MENG_ANSWER, "citations": "a.txt"},
    ]
    kept = clean_history(history, max_turns=8, max_chars=2000)
    assert "citations" not in kept[0] and "citations" not in kept[3]
    assert kept[1]["citations"] == [{"source": "a.txt", "start": 3, "end": 9}]
    assert len(kept[2]["citations"]) == MAX_CITATIONS
    assert conversation(kept)[0].cited == (("a.txt", 3, 9),)


def test_refused_questions_are_echoed_short_and_encodable() -> None:
    echoed = echo_question("x" * 5_000_000)
    assert len(echoed) <= 201 and echoed.endswith("…")
    assert echo_question("bad \ud800 text") == "bad \ufffd text"
    assert echo_question(None) == ""
