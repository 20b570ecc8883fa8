"""Document + its sentences -> list[Chunk]: token-bounded chunks on sentence boundaries, with overlap.

Token counts use tiktoken's cl100k encoding from the offline package. A chunk is always the contiguous slice
`text[start:end]` of the original document; chunks never cross excluded text (boilerplate, other script).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.text import count_tokens
from qa.types import Chunk, Document, Sentence

WORD = re.compile(r"\S+")


def chunk_document(
    document: Document,
    sentences: Sequence[Sentence],
    *,
    chunk_tokens: int,
    overlap_tokens: int,
    first_id: int = 0,
    first_sentence_id: int = 0,
) -> list[Chunk]:
    """Pack consecutive sentences into chunks of at most `chunk_tokens` tokens, repeating up to
    `overlap_tokens` tokens of trailing sentences at the start of the next chunk.

    `first_sentence_id` is the global id of `sentences[0]`; chunks record the global ids of their sentences.
    A sentence longer than a chunk becomes a chunk of its own, split at word boundaries.
    """
    if overlap_tokens >= chunk_tokens:
        raise ValueError(f"overlap_tokens ({overlap_tokens}) must be smaller than chunk_tokens ({chunk_tokens})")
    chunks: list[Chunk] = []
    window: list[tuple[int, int]] = []  # (sentence index, tokens)
    previous_end = -1

    def emit() -> None:
        first, last = sentences[window[0][0]], sentences[window[-1][0]]
        ids = tuple(first_sentence_id + index for index, _ in window)
        chunks.append(
            Chunk(
                first_id + len(chunks),
                document.source,
                first.start,
                last.end,
                document.text[first.start : last.end],
                ids,
            )
        )

    for index, sentence in enumerate(sentences):
        tokens = count_tokens(document.text[sentence.start : sentence.end])
        # subtle: text between two kept sentences that holds letters was excluded (boilerplate, other script)
        crosses_skip = previous_end >= 0 and any(c.isalnum() for c in document.text[previous_end : sentence.start])
        if window and (crosses_skip or sum(t for _, t in window) + tokens > chunk_tokens):
            emit()
            window = [] if crosses_skip else _overlap(window, overlap_tokens, chunk_tokens - tokens)
        if tokens > chunk_tokens:
            if window:
                emit()
            chunks.extend(
                _split_long(document, sentence, first_sentence_id + index, chunk_tokens, first_id + len(chunks))
            )
            window = []
        else:
            window.append((index, tokens))
        previous_end = sentence.end
    if window:
        emit()
    return chunks


def _overlap(window: list[tuple[int, int]], overlap_tokens: int, room: int) -> list[tuple[int, int]]:
    kept: list[tuple[int, int]] = []
    total = 0
    for index, tokens in reversed(window):
        if total + tokens > min(overlap_tokens, room):
            break
        kept.insert(0, (index, tokens))
        total += tokens
    return kept


def _split_long(
    document: Document, sentence: Sentence, sentence_id: int, chunk_tokens: int, first_id: int
) -> list[Chunk]:
    pieces: list[Chunk] = []
    start = end = sentence.start
    total = 0
    for word in WORD.finditer(document.text, sentence.start, sentence.end):
        tokens = count_tokens(word.group()) + 1
        if total and total + tokens > chunk_tokens:
            pieces.append(
                Chunk(first_id + len(pieces), document.source, start, end, document.text[start:end], (sentence_id,))
            )
            start, total = word.start(), 0
        end = word.end()
        total += tokens
    pieces.append(Chunk(first_id + len(pieces), document.source, start, end, document.text[start:end], (sentence_id,)))
    return pieces
