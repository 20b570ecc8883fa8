from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.chunk import chunk_document
from qa.ingest import load_corpus, make_document
from qa.segment import split_sentences
from qa.text import count_tokens
from tests.conftest import SEEDS

WORDS = st.sampled_from(
    [
        "alpha",
        "Beta.",
        "gamma,",
        "δέλτα",
        "東京。",
        "\r\n",
        "\n\n",
        "\u00a0",
        "épée!",
        "x" * 40,
        "Dr.",
        "3.5",
        "“q”",
        "  ",
        "end.",
    ]
)


@given(st.lists(WORDS, max_size=120).map(" ".join), st.integers(16, 60), st.integers(0, 15))
@settings(max_examples=100, deadline=None)
def test_chunks_are_exact_slices_within_budget(text: str, chunk_tokens: int, overlap: int) -> None:
    document = make_document("doc.txt", text)
    sentences = split_sentences(document)
    chunks = chunk_document(document, sentences, chunk_tokens=chunk_tokens, overlap_tokens=overlap)
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        for i in chunk.sentence_ids:  # a whole sentence, or a piece of one longer than a chunk
            sentence = document.text[sentences[i].start : sentences[i].end]
            assert sentence in chunk.text or chunk.text in sentence
    covered = {i for chunk in chunks for i in chunk.sentence_ids}
    assert covered == set(range(len(sentences)))  # every sentence lands in some chunk


def test_seed_chunks_cover_every_sentence_and_overlap() -> None:
    for document in load_corpus(SEEDS):
        sentences = split_sentences(document)
        chunks = chunk_document(document, sentences, chunk_tokens=160, overlap_tokens=40)
        assert all(count_tokens(c.text) <= 200 for c in chunks)
        shared = [set(a.sentence_ids) & set(b.sentence_ids) for a, b in zip(chunks, chunks[1:], strict=False)]
        assert any(shared), document.source  # consecutive chunks repeat trailing sentences


def test_short_and_empty_documents() -> None:
    short = make_document("s.txt", "Just one short sentence.")
    [chunk] = chunk_document(short, split_sentences(short), chunk_tokens=100, overlap_tokens=10)
    assert (chunk.start, chunk.end, chunk.text) == (0, 24, "Just one short sentence.")
    empty = make_document("e.txt", "")
    assert chunk_document(empty, split_sentences(empty), chunk_tokens=100, overlap_tokens=10) == []


def test_a_sentence_longer_than_a_chunk_is_split_at_words() -> None:
    text = " ".join(f"word{i}" for i in range(300))
    document = make_document("long.txt", text)
    chunks = chunk_document(document, split_sentences(document), chunk_tokens=50, overlap_tokens=5)
    assert len(chunks) > 1
    assert " ".join(c.text for c in chunks) == text


def test_overlap_must_be_smaller_than_the_chunk() -> None:
    document = make_document("d.txt", "One. Two.")
    with pytest.raises(ValueError, match="overlap_tokens"):
        chunk_document(document, split_sentences(document), chunk_tokens=20, overlap_tokens=20)
