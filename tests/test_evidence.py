"""The abstention rule (`EvidencePicker.judge`), one hand-made example per branch, on the tiny corpus."""

from __future__ import annotations

import pytest

from qa import Assistant
from qa.evidence import Evidence, EvidencePicker

ERUPTED = "Mount Kelud, a volcano on the Indonesian island of Java, erupted on Thursday night."
EVACUATED = "Officials said 12,000 villagers were evacuated from the slopes before dawn."
SEALS = "The seal population is estimated at 100,000."
FINAL = "The world chess championship final between Ana Ruiz and Li Wei ended in a draw after 14 games."
PRIZE = "The prize fund of 2 million euros will be split equally, the organisers said."
BAIKAL = "It lies in Siberia and is about 25 million years old."


@pytest.fixture()
def picker(fake_assistant: Assistant) -> EvidencePicker:
    return fake_assistant.picker


def evidence(picker: EvidencePicker, *texts: str, score: float = 0.9, dense: float = 0.9) -> list[Evidence]:
    """Evidence for sentences of the tiny corpus, given by their text, with chosen scores."""
    index = picker.index
    found = []
    for text in texts:
        sentence_id = next(i for i, s in enumerate(index.sentences) if index.text(s) == text)
        sentence = index.sentences[sentence_id]
        found.append(Evidence(sentence_id, sentence.source, sentence.start, sentence.end, text, score, dense, 0.5))
    return found


def reason(picker: EvidencePicker, question: str, items: list[Evidence]) -> str:
    verdict = picker.judge(question, items)
    return "answerable" if verdict.answerable else verdict.reason


def test_no_evidence_abstains(picker: EvidencePicker) -> None:
    assert reason(picker, "Where did ash fall?", []) == "no citable sentence was retrieved"


def test_weak_best_score_abstains(picker: EvidencePicker) -> None:
    items = evidence(picker, EVACUATED, score=0.3)
    assert reason(picker, "How many villagers were evacuated?", items).startswith("best evidence scores 0.30")


def test_low_similarity_abstains_even_with_a_good_score(picker: EvidencePicker) -> None:
    items = evidence(picker, EVACUATED, score=0.9, dense=0.2)
    assert reason(picker, "How many villagers were evacuated?", items).startswith("best evidence similarity 0.20")


def test_evidence_covering_too_little_of_the_question_abstains(picker: EvidencePicker) -> None:
    items = evidence(picker, ERUPTED)
    assert reason(picker, "What is the capital of Peru?", items) == "evidence covers 0% of the question's terms"


def test_a_count_must_be_in_a_sentence_on_the_subject(picker: EvidencePicker) -> None:
    question = "How many villagers left the slopes of Mount Kelud?"
    assert reason(picker, question, evidence(picker, EVACUATED)) == "answerable"
    # 100,000 is a quantity, but the seal sentence is not about the question's subject
    assert "asks for a quantity" in reason(picker, question, evidence(picker, ERUPTED, SEALS))


def test_years_and_days_are_not_quantities(picker: EvidencePicker) -> None:
    items = evidence(picker, ERUPTED)
    assert "asks for a quantity" in reason(picker, "How many people died when Mount Kelud erupted?", items)


def test_who_needs_a_name_unless_the_question_names_its_person(picker: EvidencePicker) -> None:
    assert reason(picker, "Who played in the chess championship final?", evidence(picker, FINAL)) == "answerable"
    assert "names nobody" in reason(picker, "Who shared the chess prize fund?", evidence(picker, PRIZE))
    # "Who is Li Wei?" already names the person: a sentence from the right article may answer without a name
    assert reason(picker, "Who is Li Wei?", evidence(picker, PRIZE)) == "answerable"


def test_a_year_question_needs_a_year(picker: EvidencePicker) -> None:
    assert "asks for a year" in reason(picker, "In what year did Mount Kelud erupt?", evidence(picker, ERUPTED))


def test_a_when_question_needs_a_number_or_a_month(picker: EvidencePicker) -> None:
    assert "asks for a date" in reason(picker, "When did Mount Kelud erupt?", evidence(picker, ERUPTED))
    assert reason(picker, "When did Mount Kelud villagers leave?", evidence(picker, EVACUATED)) == "answerable"


def test_strong_evidence_on_the_subject_is_answerable(picker: EvidencePicker) -> None:
    assert reason(picker, "How old is the lake in Siberia?", evidence(picker, BAIKAL)) == "answerable"
