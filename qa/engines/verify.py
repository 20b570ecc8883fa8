"""Model output + the numbered evidence it saw -> the sentences that survive checking, and why each did.

Model output is untrusted (MODELS.md: the 1.5B model invents figures, writes filler such as "This is supported by
[1].", and often puts a correct fact under the wrong [n]). So the model writes and the pipeline cites: each
sentence is aligned to the evidence sentences that support it, whatever markers it wrote (CiteFix). A citation is
kept only when that sentence supports the answer sentence on its own (it holds some of what the sentence adds to
the question); together they must hold every number and name the sentence uses (names may also come from the
question), and the sentence must be close to them in embedding space. A sentence nothing supports is dropped, and
so is a "No, ..." when the question holds no figure or name the evidence lacks (no premise the evidence can refute).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from langchain_core.embeddings import Embeddings

from qa.decision import is_model_refusal
from qa.text import (
    COMMON_CAPITALS,
    FILLER_WORDS,
    MARKER,
    POSSESSIVE,
    WORD,
    YEAR,
    capitalised_words,
    numbers,
    segmenter,
    words,
)
from qa.types import SentenceCheck

logger = logging.getLogger(__name__)

LIST_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})+)\]")  # "[1, 2]" -> "[1][2]"
TRAILING_MARKERS = re.compile(r"([.!?])((?:\s*\[\d{1,3}\])+)")  # "died. [1]" -> "died [1]."
DENIAL = re.compile(r"^\W*no\b", re.IGNORECASE)  # "No, ..." says the question's premise is wrong
SHORT_ANSWER_WORDS = 8  # fewer words than this: the answer is compared to its evidence together with the question
NEGATION = re.compile(
    r"\b(?:not|no|never|rather|instead|incorrect|wrong|contradicts?|however|but|only)\b", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Cited:
    """One numbered evidence sentence as the model saw it."""

    text: str
    title: str = ""
    article: str = ""  # the whole article's text, where a premise of the question may be found


@dataclass(frozen=True, slots=True)
class Verification:
    text: str  # the kept sentences, with only valid markers
    markers: tuple[int, ...]  # evidence numbers the text cites, in order of first use
    checks: tuple[SentenceCheck, ...]
    refused: bool  # the model said the evidence does not answer


@dataclass(slots=True)
class _Piece:
    original: str  # as the model wrote it
    text: str  # without markers that do not exist
    kind: str  # "content", "filler" (says only where facts come from) or "refusal"
    markers: list[int] = field(default_factory=list)  # valid ones, as written
    invalid: list[int] = field(default_factory=list)
    attached: list[int] = field(default_factory=list)  # markers lent by a citation-only sentence
    aligned: list[int] = field(default_factory=list)  # the evidence that supports it, found after writing

    @property
    def written(self) -> list[int]:
        """The markers as the model placed them (its own and those lent by a citation-only sentence)."""
        return list(dict.fromkeys(self.markers + self.attached))


def split_output(text: str) -> list[str]:
    """Model output -> sentences, each keeping the markers written right after its full stop."""
    text = LIST_MARKER.sub(lambda m: "".join(f"[{n.strip()}]" for n in m.group(1).split(",")), text)
    text = TRAILING_MARKERS.sub(lambda m: f"{m.group(2)}{m.group(1)}", text)
    pieces: list[str] = []
    for line in text.splitlines():
        if line.strip():
            pieces += [" ".join(p.sent.split()) for p in segmenter().segment(line)]
    return [p for p in pieces if p]


def content_of(sentence: str) -> str:
    """The sentence without its [n] markers."""
    return " ".join(MARKER.sub(" ", sentence).split())


def is_filler(sentence: str) -> bool:
    """True for a sentence that says nothing but where facts come from ("This is supported by [1], [2].")."""
    return all(word in FILLER_WORDS for word in WORD.findall(content_of(sentence).lower()))


def verify(
    output: str, evidence: Sequence[Cited], *, question: str, embedder: Embeddings | None, min_similarity: float
) -> Verification:
    """Check every sentence of `output` against the evidence it cites; keep only supported ones."""
    pieces = _attach_citations(split_output(output), len(evidence))
    content = [piece for piece in pieces if piece.kind == "content"]
    matrix = _similarities(content, evidence, embedder, question)
    similarity: dict[int, float] = {}
    checks: list[SentenceCheck] = []
    kept: list[_Piece] = []
    for piece in pieces:
        if piece.kind == "refusal":
            reason: str | None = "the model said the evidence does not answer"
        elif piece.kind == "filler":
            lent = f"; markers {piece.markers} lent to another sentence" if piece.markers else ""
            reason = f"citation-only filler{lent}"
        else:
            row = matrix[content.index(piece)]
            piece.aligned = align(piece, evidence, question, row)
            similarity[id(piece)] = max((float(row[m - 1]) for m in piece.aligned), default=0.0)
            reason = _unfounded_denial(piece, evidence, question) or _unsupported(
                piece, evidence, question, similarity[id(piece)], min_similarity
            )
        if reason is None:
            kept.append(piece)
        else:
            logger.info("Dropped generated sentence %r: %s", piece.original, reason)
        note = reason or f"supported (similarity {similarity[id(piece)]:.2f})"
        if piece.kind == "content" and reason is None and piece.aligned != piece.written:
            note += f"; citations realigned from {piece.written} to {piece.aligned}"
        if piece.invalid:
            logger.warning(
                "Dropped marker(s) %s (only [1]..[%d] exist) in %r", piece.invalid, len(evidence), piece.original
            )
            note += f"; dropped markers {piece.invalid} (only 1..{len(evidence)} exist)"
        checks.append(SentenceCheck(piece.original, reason is None, note, tuple(piece.aligned or piece.written)))
    used = tuple(dict.fromkeys(m for piece in kept for m in piece.aligned))
    refused = any(piece.kind == "refusal" for piece in pieces)
    return Verification(" ".join(map(_render, kept)), used, tuple(checks), refused and not kept)


def _attach_citations(sentences: list[str], count: int) -> list[_Piece]:
    """Classify sentences; a citation-only sentence lends its markers to the content sentence before it."""
    pieces: list[_Piece] = []
    pending: list[int] = []  # from a citation-only sentence that came before any content
    for sentence in sentences:
        found = [int(m) for m in MARKER.findall(sentence)]
        valid = list(dict.fromkeys(m for m in found if 1 <= m <= count))
        invalid = sorted(set(found) - set(valid))
        cleaned = MARKER.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= count else "", sentence)
        cleaned = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(cleaned.split()))
        if is_model_refusal(content_of(sentence)):
            pieces.append(_Piece(sentence, cleaned, "refusal", valid, invalid))
        elif is_filler(sentence):
            previous = [p for p in pieces if p.kind == "content"]
            (previous[-1].attached if previous else pending).extend(valid)
            pieces.append(_Piece(sentence, cleaned, "filler", valid, invalid))
        else:
            pieces.append(_Piece(sentence, cleaned, "content", valid, invalid, pending))
            pending = []
    return pieces


def _similarities(
    pieces: list[_Piece], evidence: Sequence[Cited], embedder: Embeddings | None, question: str
) -> np.ndarray:
    """Cosine similarity of each sentence (row) to each evidence sentence (column); all 1.0 without an embedder.

    A short answer ("In Tianjin [1].") is read with its question: alone it is too short to resemble the sentence
    it comes from (MiniLM gave a correct "August 15" 0.00 against its evidence)."""
    if embedder is None or not pieces:
        return np.ones((len(pieces), len(evidence)), dtype="float32")
    texts = [content_of(p.text) for p in pieces]
    texts = [f"{question} {text}" if len(WORD.findall(text)) < SHORT_ANSWER_WORDS else text for text in texts]
    vectors = np.asarray(embedder.embed_documents(texts + [item.text for item in evidence]), dtype="float32")
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    matrix: np.ndarray = vectors[: len(pieces)] @ vectors[len(pieces) :].T
    return matrix


def align(piece: _Piece, evidence: Sequence[Cited], question: str, similarity: np.ndarray) -> list[int]:
    """The evidence numbers (1-based) that support the sentence, best first, whatever markers it was written with.

    Each one holds some of what the sentence adds to the question (no passenger citations); the best supported
    comes first, then others only while they hold a number or name the chosen ones lack. Ties go to the markers
    the model wrote, then to embedding similarity.
    """
    content = content_of(piece.text)
    adds = _content_words(content) - words(question)
    # the sentence's numbers and the words of its names: what anchors a fact to a sentence
    wanted = numbers(content) | set().union(*(words(name) for name in capitalised_words(content)))
    written = set(piece.written)

    def support(number: int) -> set[str]:
        item = evidence[number - 1]
        return (adds & _content_words(item.text)) | (wanted & (numbers(item.text) | words(item.text)))

    own = {n: support(n) for n in range(1, len(evidence) + 1)}
    ranked = sorted(
        (n for n in own if own[n] & adds),
        # numbers and names anchor a fact best; then how much of the sentence it holds
        key=lambda n: (-len(own[n] & wanted), -len(own[n]), n not in written, -float(similarity[n - 1])),
    )
    chosen: list[int] = []
    covered: set[str] = set()
    for number in ranked:
        if not chosen or (own[number] & wanted) - covered:
            chosen.append(number)
            covered |= own[number]
    return chosen


def premise_gaps(question: str, evidence: Sequence[Cited]) -> list[str]:
    """The question's figures and names that the evidence's articles never mention (nor their titles).

    A false premise shows only through them ("500 people", "Brookings"): the prompt points them out to the model,
    and a "No, ..." is believed only when there is one. Whole articles, not just the evidence sentences: a question
    naming the outlet or the author of the article asks about it, it does not assume something false.
    """
    shown = " ".join(f"{item.text} {item.title} {item.article}" for item in evidence)
    known = words(shown)
    figures = sorted(numbers(question) - numbers(shown))
    names = [POSSESSIVE.sub("", name) for name in capitalised_words(question)]
    return figures + [name for name in dict.fromkeys(names) if not words(name) <= known]


def _unfounded_denial(piece: _Piece, evidence: Sequence[Cited], question: str) -> str | None:
    """Why a sentence starting "No," has no premise to correct, or None (the 1.5B model writes "No, ..." to plain
    questions too)."""
    if not DENIAL.match(content_of(piece.text)) or premise_gaps(question, evidence):
        return None
    return "says No, but every figure and name of the question is in the evidence: no premise to correct"


def _unsupported(
    piece: _Piece, evidence: Sequence[Cited], question: str, similarity: float, min_similarity: float
) -> str | None:
    """Why the sentence is not supported by the evidence aligned to it, or None when it is."""
    cited = piece.aligned
    if not cited:
        content = content_of(piece.text)
        if not _content_words(content) - words(question):
            return "adds nothing from the cited evidence to what the question says"
        invented = sorted(numbers(content) - numbers(question + " " + " ".join(item.text for item in evidence)))
        if invented:
            return f"number(s) {', '.join(invented)} not in the evidence"
        return "no evidence sentence holds what it says"
    sources = [evidence[m - 1] for m in cited]
    content = content_of(piece.text)
    allowed_numbers = numbers(" ".join(item.text for item in sources))
    if NEGATION.search(content):  # a correction may repeat the question's false figure ("not 500")
        allowed_numbers |= numbers(question)
    missing = sorted(numbers(content) - allowed_numbers - spans_between_years(content, allowed_numbers))
    if missing:
        return f"number(s) {', '.join(missing)} not in the cited evidence {cited}"
    allowed_words = words(" ".join([question] + [item.text + " " + item.title for item in sources]))
    names = [name for name in capitalised_words(content) if not words(name) <= allowed_words]
    if names:
        return f"name(s) {', '.join(names)} not in the cited evidence {cited} or the question"
    if not (_content_words(content) & _content_words(" ".join(item.text for item in sources))) - words(question):
        return "adds nothing from the cited evidence to what the question says"
    if similarity < min_similarity:
        return f"similarity to the cited evidence {similarity:.2f} < {min_similarity:.2f}"
    return None


def spans_between_years(sentence: str, known: set[str]) -> set[str]:
    """Year differences the sentence works out explicitly: "from 2005 to 2018, 13 years" may say 13 when both years
    are in the sentence and in its evidence (`known`) and 13 is their difference; any other figure stays unchecked.
    """
    years = sorted(int(year) for year in set(YEAR.findall(MARKER.sub(" ", sentence))) if year in known)
    return {str(later - earlier) for i, earlier in enumerate(years) for later in years[i + 1 :]}


def _content_words(text: str) -> set[str]:
    """Words that carry information: numbers and words outside the filler and common-word lists."""
    return {
        w for w in words(MARKER.sub(" ", text)) if w not in FILLER_WORDS and w not in COMMON_CAPITALS and len(w) > 1
    }


def _render(piece: _Piece) -> str:
    """The kept sentence without the markers the model wrote, its aligned markers placed before its final stop."""
    text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(MARKER.sub(" ", piece.text).split()))
    markers = "".join(f"[{m}]" for m in piece.aligned)
    match = re.search(r"[.!?]+[\"”’)]*$", text)
    if match:
        return f"{text[: match.start()]} {markers}{text[match.start() :]}"
    return f"{text} {markers}"
