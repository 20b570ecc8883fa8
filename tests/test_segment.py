from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qa.ingest import load_corpus, make_document
from qa.segment import split_sentences
from tests.conftest import SEEDS

PIECES = st.sampled_from(
    [
        "Hello world.",
        "Mr. Smith paid $3.50 today!",
        "Ünïcödé ‘quotes’ — here…",
        "\r\n",
        "\n\n",
        "  ",
        "\u00a0",
        "Is it? Yes.",
        "  • bullet item",
        "1. First point.",
        "\t",
        "東京は大きい。",
        "No punctuation here",
        "e.g. this, i.e. that.",
        "“Quote.” He said.",
    ]
)


@given(st.lists(PIECES, max_size=25).map("".join))
@settings(max_examples=150, deadline=None)
def test_sentence_spans_are_exact_trimmed_ordered_slices(text: str) -> None:
    document = make_document("doc.txt", text)
    sentences = split_sentences(document)
    previous_end = 0
    for sentence in sentences:
        span = text[sentence.start : sentence.end]
        assert span and span == span.strip()
        assert sentence.start >= previous_end
        previous_end = sentence.end


def test_seed_sentences_exclude_boilerplate_and_list_markers() -> None:
    document = next(d for d in load_corpus(SEEDS) if d.source.startswith("004"))
    texts = [document.text[s.start : s.end] for s in split_sentences(document)]
    assert "At least 28 Taliban soldiers killed" in texts  # "  • " bullet trimmed
    assert not any("遠藤" in t for t in texts)
    assert sum(t.startswith("Afghans lie on beds") for t in texts) == 1  # repeated caption skipped
    kinds = {document.text[s.start : s.end]: s.kind for s in split_sentences(document)}
    assert kinds["Will Xi Jinping Lose Face?"] == "heading"
    assert kinds["They are the Taliban’s enemies."] == "sentence"


def test_a_huge_single_line_is_split_in_windows_without_cutting_sentences() -> None:
    sentence = "The harbor reopened on Monday after repairs."
    text = " ".join([sentence] * 2000)  # 90 KB on one line, as scraped pages sometimes are
    spans = [text[s.start : s.end] for s in split_sentences(make_document("one-line.txt", text))]
    assert spans == [sentence] * 2000
