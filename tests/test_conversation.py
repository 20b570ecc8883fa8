"""What earlier answers quoted (from their citations or their text) and how the evidence scores move for a
follow-up, on the tiny corpus."""

from __future__ import annotations

import pytest

from qa import Assistant
from qa.conversation import QUOTED_KEEP, QuoteFinder, resolve_follow_up
from qa.text import same_stem
from tests.test_evidence import ERUPTED, EVACUATED, PRIZE

ASH = "Ash fell as far as 500 kilometres away, closing three airports."
KELUD = "How many villagers were evacuated when Mount Kelud erupted?"


@pytest.fixture()
def finder(fake_assistant: Assistant) -> QuoteFinder:
    return QuoteFinder(fake_assistant.index, fake_assistant.decision.stats)


def sentence_id(assistant: Assistant, text: str) -> int:
    index = assistant.index
    return next(i for i, s in enumerate(index.sentences) if index.text(s) == text)


def span(assistant: Assistant, text: str) -> dict[str, object]:
    sentence = assistant.index.sentences[sentence_id(assistant, text)]
    return {"source": sentence.source, "start": sentence.start, "end": sentence.end}


def test_cited_spans_map_to_the_sentences_they_overlap(fake_assistant: Assistant, finder: QuoteFinder) -> None:
    evacuated, ash = sentence_id(fake_assistant, EVACUATED), sentence_id(fake_assistant, ASH)
    first = fake_assistant.index.sentences[evacuated]
    assert finder.covering(first.source, first.start, first.end) == [evacuated]
    assert finder.covering(first.source, first.start + 5, first.start + 6) == [evacuated]  # a part of it
    last = fake_assistant.index.sentences[ash]
    assert finder.covering(first.source, first.start, last.end) == [evacuated, ash]
    assert finder.covering("no-such-file.txt", 0, 100) == []


def test_quotes_are_found_in_an_answer_text_when_no_citation_is_given(
    fake_assistant: Assistant, finder: QuoteFinder
) -> None:
    # how the extractive engine writes quotes from two articles (titles, one-line quotes, [n] markers)
    answer = (
        f"According to “Mount Kelud erupts again”: {EVACUATED} [1] {ASH} [2]\n\n"
        f"According to “Chess final ends in a draw”: {PRIZE}   [3]"
    )
    expected = {sentence_id(fake_assistant, text) for text in (EVACUATED, ASH, PRIZE)}
    assert finder.in_text(answer) == expected
    assert finder.in_text(f"Officials said 12,000 villagers were evacuated. [1] {ERUPTED}") == set()  # no marker after


def test_citations_given_win_over_the_text(fake_assistant: Assistant, finder: QuoteFinder) -> None:
    history = [
        {"role": "user", "content": KELUD},
        {"role": "assistant", "content": f"{EVACUATED} [1]", "citations": [span(fake_assistant, ASH)]},
        {"role": "user", "content": "And the seals?"},
        {"role": "assistant", "content": f"{PRIZE} [1]"},
    ]
    quoted = finder.quoted(resolve_follow_up("What else?", history))
    assert quoted == {sentence_id(fake_assistant, ASH): [KELUD], sentence_id(fake_assistant, PRIZE): ["And the seals?"]}


def test_an_already_quoted_sentence_keeps_a_tenth_unless_it_holds_what_is_newly_asked(
    fake_assistant: Assistant, finder: QuoteFinder
) -> None:
    evacuated, ash = sentence_id(fake_assistant, EVACUATED), sentence_id(fake_assistant, ASH)
    history = [{"role": "user", "content": KELUD}, {"role": "assistant", "content": f"{EVACUATED} [1]"}]
    scores = {evacuated: 0.9, ash: 0.5}
    # the ash's distance: nothing of it in the quoted evacuation sentence
    moved = finder.rescore(scores, resolve_follow_up("And how far did the ash fall?", history))
    assert moved == {evacuated: pytest.approx(0.9 * QUOTED_KEEP), ash: 0.5}
    # the same evidence is what a question about the answer wants
    assert finder.rescore(scores, resolve_follow_up("Which article says that?", history)) == scores
    # a figure and words the earlier question did not ask for, all in the quoted sentence: it may answer again
    earlier = [{"role": "user", "content": "What did officials do before dawn?"}, history[1]]
    assert finder.rescore(scores, resolve_follow_up("How many villagers?", earlier)) == scores
    # "that evacuation" points back and "happen" adds nothing: only the newly asked kind (a date) must be there
    assert finder.rescore(scores, resolve_follow_up("When did that evacuation happen?", earlier)) == scores
    moved = finder.rescore(scores, resolve_follow_up("When did the evacuation order come?", earlier))
    assert moved[evacuated] == pytest.approx(0.9 * QUOTED_KEEP)  # "order" is a new term the sentence lacks
    # "On which day?": the day is the newly asked kind, not a word the sentence must hold
    erupted = sentence_id(fake_assistant, ERUPTED)
    told = [
        {"role": "user", "content": "Which volcano erupted on Java?"},
        {"role": "assistant", "content": f"{ERUPTED} [1]"},
    ]
    assert finder.rescore({erupted: 0.9, ash: 0.5}, resolve_follow_up("On which day?", told)) == {
        erupted: 0.9,
        ash: 0.5,
    }


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [("provide", "provided", True), ("lead", "leader", True), ("target", "targeting", True), ("say", "said", False),
     ("district", "distance", False), ("war", "ward", False)],
)  # fmt: skip
def test_same_stem(a: str, b: str, same: bool) -> None:
    assert same_stem(a, b) is same and same_stem(b, a) is same
