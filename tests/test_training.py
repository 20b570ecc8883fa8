"""The reader's training data and its generation (qa.training): committed files, filters, resumable generation."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.training.corpora import CORPORA, SQUAD, read_corpus, read_squad
from qa.training.pairs import PAIRS, absent_day_question, held_out, read_pairs
from qa.training.questions import (
    GENERATED,
    check_question,
    chosen_sentences,
    copied_run,
    generate,
    parse_reply,
    question_kind,
    read_generated,
)

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = (
    "The bridge, which opened in 1932 after six years of work, carries eight lanes of traffic across the harbour."
)


@pytest.fixture(scope="module")
def articles():  # type: ignore[no-untyped-def]
    return read_corpus()


@pytest.fixture(scope="module")
def paragraphs():  # type: ignore[no-untyped-def]
    return read_squad()


def test_data_files_exist_and_parse(articles, paragraphs) -> None:
    for path in (CORPORA, SQUAD, GENERATED, PAIRS):
        assert path.is_file(), path
    assert {a.domain for a in articles} == {"news", "encyclopaedic", "government"}
    assert len(articles) >= 60 and len(paragraphs) >= 600
    assert all(a.licence and a.url for a in articles)
    assert read_generated() and read_pairs()


def test_sentence_spans_are_exact(articles, paragraphs) -> None:
    for article in articles:
        assert article.sentences
        for start, end in article.sentences:
            assert 0 <= start < end <= len(article.text)
            assert article.text[start:end] == article.text[start:end].strip()
    for paragraph in paragraphs:
        for start, end in paragraph["sentences"]:
            assert paragraph["text"][start:end].strip() == paragraph["text"][start:end]


def test_every_pair_quotes_its_corpus_exactly(articles, paragraphs) -> None:
    texts = {a.id: a.text for a in articles} | {p["id"]: p["text"] for p in paragraphs}
    pairs = read_pairs()
    for pair in pairs:
        assert texts[pair.article][pair.start : pair.end] == pair.sentence, pair
        assert pair.label in (0, 1) and pair.split in ("train", "heldout")
    assert {p.label for p in pairs} == {0, 1}


def test_generated_questions_point_at_their_sentences(articles) -> None:
    by_id = {a.id: a for a in articles}
    for generated in read_generated():
        article = by_id[generated.article]
        assert article.text[generated.start : generated.end] == generated.sentence
        verdict = check_question(
            generated.question, generated.answer, generated.sentence, article.title, generated.kind
        )
        assert generated.kept == (verdict == "") and (verdict or "ok") == generated.reason


def test_held_out_split_is_by_article() -> None:
    splits: dict[str, set[str]] = {}
    for pair in read_pairs():
        # an LLM question's article is in its id (an other_article pair quotes another article)
        article = pair.question_id.split("/")[0] if pair.origin == "llm" else pair.article.rsplit("-", 1)[0]
        splits.setdefault(article, set()).add(pair.split)
    assert all(len(found) == 1 for found in splits.values())
    held = [key for key, found in splits.items() if found == {"heldout"}]
    assert 0.1 < len(held) / len(splits) < 0.4
    assert all(held_out(key) for key in held if key.startswith("gum-"))


def test_no_evaluation_or_nasa_text_in_the_corpora(articles, paragraphs) -> None:
    corpus = "\n".join([a.text for a in articles] + [p["text"] for p in paragraphs])
    assert "NASA" not in corpus and "Artemis" not in corpus
    evaluation = list((ROOT / "seeds").glob("*.txt")) + list((ROOT / "eval" / "second" / "corpus").rglob("*.*"))
    assert evaluation
    for path in evaluation:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if len(line.strip()) > 80]
        assert not any(line in corpus for line in lines), path


@pytest.mark.parametrize(
    ("sentence", "kind"),
    [
        ('"We are ready," the minister said on Tuesday.', "what did someone say"),
        ("The treaty was signed in March 1921 in Riga.", "when"),
        ("Rescuers pulled 900 people from the sea.", "how many or how much"),
        ("The match was cancelled because of the storm.", "why"),
        ("Maria Lopez won the race easily.", "who"),
        ("the committee chose the smaller design.", "which or what"),
    ],
)
def test_question_kind_follows_what_the_sentence_holds(sentence: str, kind: str) -> None:
    assert question_kind(sentence) == kind


@pytest.mark.parametrize(
    ("question", "answer", "reason"),
    [
        ("How long did it take to build the bridge?", "six years", ""),
        ("When did the harbour crossing open to traffic?", "1932", ""),
        ("How many years of work did the bridge need?", "eleven years", "answer is not a span of the sentence"),
        ("Which bridge carries eight lanes of traffic across the harbour?", "The bridge", "copies 5+ words"),
        ("Did it open in 1932?", "1932", "answer given away in the question"),
        ("How many lanes?", "eight", "not a question of 4-30 words"),
        ("When did the harbour crossing open to traffic?", "six years", "a when-question whose answer holds no date"),
    ],
)
def test_check_question_filters(question: str, answer: str, reason: str) -> None:
    kind = "when" if question.startswith("When") else ""
    found = check_question(question, answer, SENTENCE, "Harbour bridge", kind)
    assert found.startswith(reason) if reason else found == ""


def test_copied_run_counts_consecutive_words_only() -> None:
    assert copied_run("Does it carry eight lanes of traffic today?", SENTENCE) is False  # four in a row
    assert copied_run("Does it carry eight lanes of traffic across rivers?", SENTENCE) is True


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Q: Who won?\nA: Maria", ("Who won?", "Maria")),
        ("Who won the race?\nMaria Lopez", ("Who won the race?", "Maria Lopez")),
        ("Q: Who won?", ("Who won?", "")),
        ("I cannot write a question.", ("", "")),
    ],
)
def test_parse_reply(reply: str, expected: tuple[str, str]) -> None:
    assert parse_reply(reply) == expected


def test_absent_day_question_only_when_the_sentence_gives_no_day() -> None:
    assert absent_day_question("When did the bridge open?", SENTENCE) == "On what exact day did the bridge open?"
    assert absent_day_question("When did it open?", "It opened on 4 March 1932.") is None
    assert absent_day_question("How many lanes does it carry?", SENTENCE) is None


def test_chosen_sentences_interleave_articles(articles) -> None:
    order = chosen_sentences(articles, per_article=3)
    first = [article.id for article, _ in order[: len(articles)]]
    assert len(set(first)) == len(first)  # one sentence of each article before a second of any
    assert all(index > 0 for _, index in order)  # never the title line


def test_generation_appends_and_resumes(articles, tmp_path: Path) -> None:
    out = tmp_path / "generated.jsonl"
    asked: list[str] = []

    def ask(system: str, user: str) -> str:
        asked.append(user)
        return "Q: What is this sentence about?\nA: nothing"

    assert generate(articles[:2], ask, out=out, limit=3, per_article=2) == 3
    assert generate(articles[:2], ask, out=out, per_article=2) == 1  # only the one not yet asked
    assert len(asked) == 4 and len(read_generated(out)) == 4
    assert len({g.id for g in read_generated(out)}) == 4
