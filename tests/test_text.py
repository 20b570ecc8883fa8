"""The text rules every stage shares (`qa.text`), each checked on hand-made strings."""

from __future__ import annotations

import pytest

from qa.text import (
    MARKER,
    asks_for,
    capitalised_words,
    compares,
    count_tokens,
    echo_question,
    has_quantity,
    holds_type,
    names_someone,
    numbers,
    same_stem,
    shorten,
    stem,
    terms,
    words,
)


def test_what_a_question_asks_for() -> None:
    #                                number person year  date   place
    assert asks_for("How many villagers fled?") == (True, False, False, False, False)
    assert asks_for("Who won the final?") == (False, True, False, False, False)
    assert asks_for("Who is Li Wei?") == (False, False, False, False, False)  # names its person already
    assert asks_for("In what year did it erupt?") == (False, False, True, True, False)
    assert asks_for("Where did ash fall?") == (False, False, False, False, True)


def test_holds_the_type_asked_for() -> None:
    assert holds_type(asks_for("How many villagers fled?"), "Officials said 12,000 villagers left.")
    assert not holds_type(asks_for("How many villagers fled?"), "Villagers left in 2021.")  # a year is no count
    assert holds_type(asks_for("When did it erupt?"), "It erupted on Thursday, 13 February.")
    assert holds_type(asks_for("Who won the final?"), "The winner was Ana Ruiz of Spain.")
    assert not holds_type(asks_for("Who won the final?"), "The final was drawn.")


def test_numbers_quantities_and_names() -> None:
    assert numbers("10,000 US dollars and 85 people [3]") == {"10000", "85"}  # the marker is no figure
    assert has_quantity("killed 85 people") and not has_quantity("in 2021") and not has_quantity("on August 26")
    assert names_someone("Talks with Wang Yi were held.") and not names_someone("The Taliban met.")
    assert capitalised_words("The Taliban met Wang Yi in Tianjin.") == ["Taliban", "Wang", "Yi", "Tianjin"]


def test_stems_terms_and_words() -> None:
    assert stem("Uighurs") == "uighur" and stem("city's") == "city" and stem("cities") == "city"
    assert stem("reported", inflections=True) == "report" and stem("reported") == "reported"
    assert terms("How many villagers were evacuated?") == {"villager", "evacuated"}
    assert "evacuat" in words("They were evacuated")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [("provide", "provided", True), ("lead", "leader", True), ("say", "said", False), ("war", "ward", False)],
)
def test_same_stem(a: str, b: str, same: bool) -> None:
    assert same_stem(a, b) is same and same_stem(b, a) is same


def test_markers_comparisons_tokens_and_display() -> None:
    assert [m.group(1) for m in MARKER.finditer("a [1] b [23]")] == ["1", "23"]
    assert compares("How do the two reports differ?") and not compares("Where did they meet?")
    assert count_tokens("") == 0 and count_tokens("hello world") == 2
    assert shorten("abcdef", 4) == "abc…" and shorten("abc", 4) == "abc"
    assert (
        echo_question("x\ud800y") == "x\ufffdy" and echo_question(None) == "" and len(echo_question("q" * 500)) == 200
    )
