"""The evidence stage and the decision: features worked out by hand on the tiny corpus, the linear models, the
abstention decision and the selection of sentences to quote."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from qa import Assistant, Settings
from qa.decision import (
    DEFAULT_PATH,
    QUESTION_FEATURES,
    RERANK_FEATURES,
    SENTENCE_FEATURES,
    SHORTLIST,
    Decision,
    LinearModel,
    Ranker,
    load_ranker,
    rerank,
)
from qa.errors import ModelError
from qa.evidence import EvidencePicker, select
from qa.text import asks_for
from qa.types import Evidence
from tests.fakes import HashEmbeddings

ERUPTED = "Mount Kelud, a volcano on the Indonesian island of Java, erupted on Thursday night."
EVACUATED = "Officials said 12,000 villagers were evacuated from the slopes before dawn."
SEALS = "The seal population is estimated at 100,000."
FINAL = "The world chess championship final between Ana Ruiz and Li Wei ended in a draw after 14 games."
PRIZE = "The prize fund of 2 million euros will be split equally, the organisers said."


@pytest.fixture()
def picker(fake_assistant: Assistant) -> EvidencePicker:
    return fake_assistant.picker


@pytest.fixture()
def decision(fake_assistant: Assistant) -> Decision:
    return Decision(fake_assistant.decision.stats, fake_assistant.ranker, fake_assistant.settings)


def features_of(assistant: Assistant, question: str, text: str) -> dict[str, float]:
    found = next(e for e in assistant.candidates(question, limit=100) if e.text == text)
    return found.features


def evidence(picker: EvidencePicker, *texts: str, score: float = 0.9) -> list[Evidence]:
    index = picker.index
    found = []
    for text in texts:
        number = next(i for i, s in enumerate(index.sentences) if index.text(s) == text)
        sentence = index.sentences[number]
        found.append(Evidence(number, sentence.source, sentence.start, sentence.end, text, score, 0.5, 0.5))
    return found


def model(features: tuple[str, ...], weights: dict[str, float], intercept: float) -> LinearModel:
    ones = np.ones(len(features))
    coef = np.array([weights.get(name, 0.0) for name in features])
    return LinearModel(features, np.zeros(len(features)), ones, coef, intercept)


def test_a_linear_model_is_a_standardised_logistic_regression_by_hand() -> None:
    fitted = LinearModel(("a", "b"), np.array([1.0, 0.0]), np.array([2.0, 1.0]), np.array([2.0, -1.0]), 0.5)
    # a=3 -> (3-1)/2 = 1 -> +2; b=1 -> -1; logit 0.5 + 2 - 1 = 1.5
    assert fitted.probabilities([{"a": 3.0, "b": 1.0}])[0] == pytest.approx(1 / (1 + np.exp(-1.5)))
    assert fitted.contributions({"a": 3.0, "b": 1.0}) == {"a": 2.0, "b": -1.0}
    again = LinearModel.from_json(fitted.to_json(), ("a", "b"), where="x")
    assert again.probabilities([{"a": 3.0, "b": 1.0}])[0] == pytest.approx(
        fitted.probabilities([{"a": 3.0, "b": 1.0}])[0]
    )


def test_a_ranker_fitted_on_other_features_is_refused_with_the_fix(tmp_path: Path) -> None:
    record = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    record["sentence"]["features"][0] = "something_else"
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ModelError, match="qa fit"):
        Ranker.load(path, SENTENCE_FEATURES, QUESTION_FEATURES)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match=str(path)):
        Ranker.load(path, SENTENCE_FEATURES, QUESTION_FEATURES)


def test_the_shipped_ranker_matches_the_features_and_was_fitted_on_dev_only() -> None:
    ranker = Ranker.load(None, SENTENCE_FEATURES, QUESTION_FEATURES)
    assert ranker.meta["fitted_on"] == "dev split of eval/questions.jsonl"
    assert 0.0 < ranker.threshold < 1.0


def test_sentence_features_by_hand(fake_assistant: Assistant) -> None:
    question = "How many villagers left the slopes of Mount Kelud?"
    evacuated = features_of(fake_assistant, question, EVACUATED)
    erupted = features_of(fake_assistant, question, ERUPTED)
    assert evacuated["type_missing"] == 0.0 and erupted["type_missing"] == 1.0  # "how many" wants a quantity
    assert evacuated["coverage"] > 0 and erupted["coverage"] > 0  # villagers/slopes; mount/kelud
    assert max(evacuated["coverage_gap"], erupted["coverage_gap"]) == 0.0  # the best coverage has gap 0
    assert 0.0 <= evacuated["chunk_rank"] <= 1.0 and evacuated["bm25"] <= 1.0
    # the two rarest known question terms: "villager" and "slope" are in the evacuation sentence only
    assert evacuated["focus"] == 1.0 and erupted["focus"] == 0.0


def test_no_evidence_abstains(decision: Decision) -> None:
    verdict = decision.judge("Where did ash fall?", [])
    assert not verdict.answerable and verdict.reason == "no citable sentence was retrieved"


def test_the_decision_compares_p_answerable_with_the_threshold_and_says_why(
    picker: EvidencePicker, decision: Decision
) -> None:
    decide = model(QUESTION_FEATURES, {"logit1": 1.0, "type_missing_top": -4.0}, 0.0)
    decision.ranker = dataclasses.replace(decision.ranker, answerable=decide, threshold=0.5)
    sure = evidence(picker, EVACUATED, score=0.9)
    verdict = decision.judge("How many villagers left Mount Kelud?", sure)
    assert verdict.answerable and verdict.probability == pytest.approx(0.9)
    # same confidence, but the question asks for a count and the top sentences hold none
    refused = decision.judge("How many villagers left Mount Kelud?", evidence(picker, ERUPTED, score=0.9))
    assert not refused.answerable and "type_missing_top 1.00" in refused.reason
    assert refused.probability == pytest.approx(1 / (1 + np.exp(4 - np.log(9))))


def test_the_asked_kind_must_be_in_the_sentences_the_answer_quotes(decision: Decision, picker: EvidencePicker) -> None:
    """A count in a candidate the answer will not quote does not make the question answered (the near miss
    "How many diplomats were sent?" over a sentence saying diplomats were sent, a figure two sentences down)."""
    question = "How many villagers left Mount Kelud?"
    erupted, evacuated = evidence(picker, ERUPTED, EVACUATED)
    floor = decision.settings.quote_floor
    quoted_too = decision.question_features(question, [erupted, dataclasses.replace(evacuated, score=floor)])
    not_quoted = decision.question_features(question, [erupted, dataclasses.replace(evacuated, score=floor / 2)])
    assert quoted_too["type_missing_top"] == 0.0 and not_quoted["type_missing_top"] == 1.0
    # a follow-up's query carries the earlier question ("How many …? Why did it erupt?"); what is asked now decides
    query = f"{question} Why did it erupt?"
    assert decision.question_features(query, [erupted])["type_missing_top"] == 1.0
    now = asks_for("Why did it erupt?")
    assert decision.question_features(query, [erupted], asked=now)["type_missing_top"] == 0.0


def test_settings_can_move_the_threshold(fake_assistant: Assistant, picker: EvidencePicker) -> None:
    stats, ranker, settings = fake_assistant.decision.stats, fake_assistant.ranker, fake_assistant.settings
    always = Decision(stats, ranker, settings.replace(abstain_threshold=0.0))
    never = Decision(stats, ranker, settings.replace(abstain_threshold=1.01))
    items = evidence(picker, EVACUATED)
    assert always.judge("What is the capital of Peru?", items).answerable
    assert not never.judge("How many villagers were evacuated?", items).answerable


def test_select_quotes_the_best_then_only_likely_ones(picker: EvidencePicker) -> None:
    best, likely, unlikely = evidence(picker, EVACUATED, ERUPTED, SEALS)
    likely = dataclasses.replace(likely, score=0.8)
    unlikely = dataclasses.replace(unlikely, score=0.2)
    chosen = select("How many villagers fled?", [best, likely, unlikely], limit=3, floor=0.7)
    assert chosen == [best, likely]
    assert select("How many villagers fled?", [best, likely, unlikely], limit=1, floor=0.0) == [best]


def test_a_comparison_quotes_a_second_article(picker: EvidencePicker) -> None:
    volcano, same_article, chess = evidence(picker, EVACUATED, ERUPTED, FINAL)
    ranked = [volcano, dataclasses.replace(same_article, score=0.5), dataclasses.replace(chess, score=0.4)]
    chosen = select("How do the volcano and chess reports differ?", ranked, limit=2, floor=0.95)
    assert [e.source for e in chosen] == [volcano.source, chess.source]


def test_a_follow_up_is_not_answered_with_the_sentence_already_quoted(fake_assistant: Assistant) -> None:
    from qa.conversation import resolve_follow_up

    picker = fake_assistant.picker

    def scores(question: str, earlier: str) -> dict[str, Evidence]:
        history = [{"role": "user", "content": earlier}, {"role": "assistant", "content": f"{EVACUATED} [1]"}]
        follow_up = resolve_follow_up(question, history)
        retrieval = fake_assistant.retriever.retrieve(follow_up.query)
        return {e.text: e for e in picker.pick(follow_up.query, retrieval, limit=20, follow_up=follow_up)}

    kelud = "How many villagers were evacuated when Mount Kelud erupted?"
    new = scores("And when did the volcano erupt?", kelud)  # asks for a date, which the quoted sentence lacks
    assert new[EVACUATED].score == pytest.approx(new[EVACUATED].features["ranker"] * 0.1, abs=1e-4)
    assert "ranker" not in new[ERUPTED].features
    assert "ranker" not in scores("Which article says that?", kelud)[EVACUATED].features  # the same evidence is fine
    assert "ranker" in scores("And how many villagers were there?", kelud)[EVACUATED].features  # nothing new asked
    # the figure and the word it adds to the earlier question are in the quoted sentence: it may answer again
    assert "ranker" not in scores("How many villagers?", "What did officials do before dawn?")[EVACUATED].features


def test_a_question_naming_only_strangers_is_refused_before_the_model(
    picker: EvidencePicker, decision: Decision
) -> None:
    items = evidence(picker, FINAL)
    assert decision.unknown_full_names("What did Vladimir Putin say about the chess final?") == ["Vladimir Putin"]
    verdict = decision.judge("What did Vladimir Putin say about the chess final?", items)
    assert not verdict.answerable and "Vladimir Putin, whom no article mentions" in verdict.reason
    # a false premise names someone the corpus knows next to a wrong name: the model decides
    assert decision.unknown_full_names("Did Magnus Carlsen beat Ana Ruiz in the final?") == []
    assert decision.unknown_full_names("Who won the chess final?") == []


class FakeReader:
    """Scores a sentence 0.9 when it holds `word`, else 0.1; records what it was asked."""

    def __init__(self, word: str) -> None:
        self.word = word
        self.asked: list[list[str]] = []

    def score(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        self.asked.append(list(sentences))
        return np.array([0.9 if self.word in s else 0.1 for s in sentences], dtype=np.float32)


READER_HEAVY = model(RERANK_FEATURES, {"ranker_logit": 0.1, "reader_logit": 2.0}, 0.0)


def test_rerank_by_hand(picker: EvidencePicker) -> None:
    found = evidence(picker, EVACUATED, ERUPTED, SEALS)
    first, second, third = (dataclasses.replace(e, score=s) for e, s in zip(found, (0.8, 0.6, 0.4), strict=True))
    kept = rerank([first, second, third], [0.1, 0.9], None)  # no model: features added, order kept
    assert [e.text for e in kept] == [EVACUATED, ERUPTED, SEALS]
    assert [e.features["read"] for e in kept] == [1.0, 1.0, 0.0]
    assert kept[2].features["reader"] == pytest.approx(0.1)  # unread: the lowest score read
    assert [e.features["stage1"] for e in kept] == [0.8, 0.6, 0.4]
    moved = rerank([first, second, third], [0.1, 0.9], READER_HEAVY)
    assert [e.text for e in moved] == [ERUPTED, EVACUATED, SEALS]
    expected = 1 / (1 + np.exp(-(0.1 * np.log(0.6 / 0.4) + 2.0 * np.log(0.9 / 0.1))))
    assert moved[0].score == pytest.approx(expected, abs=1e-4)
    assert rerank([], [], READER_HEAVY) == []


def test_the_picker_reads_only_the_shortlist_and_re_ranks_it(fake_assistant: Assistant) -> None:
    reader = FakeReader("seal")
    picker = fake_assistant.picker
    reading = EvidencePicker(picker.index, picker.settings, picker.model, picker.stats, reader=reader, reranker=None)
    question = "How many villagers were evacuated?"
    retrieval = fake_assistant.retriever.retrieve(question)
    plain = picker.pick(question, retrieval, limit=50)
    timings: dict[str, float] = {}
    read = reading.pick(question, retrieval, limit=50, timings=timings)
    assert [e.text for e in read] == [e.text for e in plain]  # no re-ranking model: the order stands
    assert reader.asked == [[e.text for e in plain[:SHORTLIST]]] and timings["reader_ms"] >= 0
    assert sum(e.features["read"] for e in read) == min(SHORTLIST, len(read))
    reading.reranker = READER_HEAVY
    moved = reading.pick(question, retrieval, limit=50)
    shortlisted = {e.text for e in plain[:SHORTLIST]}
    if SEALS in shortlisted:
        assert moved[0].text == SEALS  # the reader's choice goes first
    assert {e.text for e in moved[: len(shortlisted)]} == shortlisted  # unread candidates stay below the shortlist


def test_the_decision_reads_the_readers_scores(picker: EvidencePicker, decision: Decision) -> None:
    items = rerank(evidence(picker, EVACUATED, ERUPTED, SEALS), [0.2, 0.8], None)
    row = decision.question_features("How many villagers were evacuated?", items)
    assert row["reader_max"] == pytest.approx(np.log(0.8 / 0.2), abs=1e-3)
    assert row["reader_top"] == pytest.approx(np.log(0.2 / 0.8), abs=1e-3)
    assert decision.question_features("How many villagers?", evidence(picker, EVACUATED))["reader_max"] == 0.0


def test_a_ranker_that_reads_needs_its_reader(tmp_path: Path, tiny_settings: Settings) -> None:
    ranker = load_ranker(None)
    assert not dataclasses.replace(ranker, rerank=None, answerable=model(QUESTION_FEATURES, {}, 0.0)).reads
    reads = dataclasses.replace(ranker, rerank=READER_HEAVY)
    assert reads.reads
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps(reads.to_json()), encoding="utf-8")
    again = load_ranker(path)
    assert again.rerank is not None and again.rerank.features == RERANK_FEATURES
    settings = tiny_settings.replace(ranker_path=path, reader_path=tmp_path / "no-reader")
    with pytest.raises(ModelError, match="make train-reader"):
        Assistant.load(settings, embedder=HashEmbeddings())
