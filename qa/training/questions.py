"""Article sentences -> questions the local LLM wrote for them, filtered for quality (resumable JSONL).

Each chosen sentence gets one question of a type its content allows (a date -> when, a figure -> how many, a quote
-> what did X say, ...). The model is told to paraphrase; the filters then keep a question only if it copies no run
of five words from the sentence, its answer is a span of the sentence, and the answer is not already in the question.
Every reply is stored (kept or not, with the reason), so a stopped run continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qa.training.corpora import DATA, Article

logger = logging.getLogger(__name__)

GENERATED = DATA / "generated.jsonl"
PER_ARTICLE = 14  # sentences asked about per article (the run interleaves articles, so a short run covers all)
MIN_WORDS, MAX_WORDS = 8, 60
COPY_RUN = 5  # a question sharing this many consecutive words with its sentence is a copy
WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")
YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
MONTH = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b"
)
NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundreds?|"
    r"thousands?|millions?|billions?|dozens?)\b",
    re.IGNORECASE,
)
QUOTE = re.compile(r"\b(said|says|told|stated|announced|added|according to)\b")
REASON = re.compile(r"\b(because|due to|so that|in order to|as a result|since)\b", re.IGNORECASE)
STOP = frozenset(
    "the a an of in on at to for from by with and or but is are was were be been being has have had do does did "
    "what which who whom whose when where why how many much that this these those it its their his her they he she "
    "as about into than then there after before over under did not no".split()
)

SYSTEM = """You write one reading-comprehension question about a sentence from an article.
Rules:
- The sentence must answer the question.
- Use your own words: rephrase, do not copy the sentence's wording.
- The question must make sense on its own: name the people, places or things it is about.
- Then give the short answer, copied word for word from the sentence.
Reply in exactly two lines:
Q: <question>
A: <short answer>

Example. Sentence: "The bridge, which opened in 1932 after six years of work, carries eight lanes of traffic."
Q: How long did it take to build the bridge?
A: six years"""


@dataclass(frozen=True, slots=True)
class Generated:
    id: str  # "<article id>/<sentence index>"
    article: str
    sentence_index: int
    start: int
    end: int
    sentence: str
    kind: str
    question: str
    answer: str
    kept: bool
    reason: str
    seconds: float
    reply: str


def question_kind(sentence: str) -> str:
    """The question type this sentence supports best (what it holds decides what can be asked of it)."""
    if QUOTE.search(sentence):
        return "what did someone say"
    if YEAR.search(sentence) or MONTH.search(sentence):
        return "when"
    if NUMBER.search(sentence):
        return "how many or how much"
    if REASON.search(sentence):
        return "why"
    words = sentence.split()
    if len(words) > 1 and words[0][:1].isupper() and words[1][:1].isupper():
        return "who"
    return "which or what"


def chosen_sentences(
    articles: list[Article], *, per_article: int = PER_ARTICLE, seed: int = 13
) -> list[tuple[Article, int]]:
    """(article, sentence index) to ask about, articles interleaved so that any prefix covers every domain."""
    rng = random.Random(seed)
    queues = []
    for article in articles:
        usable = [
            k
            for k, (start, end) in enumerate(article.sentences)
            if k > 0 and MIN_WORDS <= len(article.text[start:end].split()) <= MAX_WORDS
        ]
        rng.shuffle(usable)
        queues.append([(article, k) for k in usable[:per_article]])
    order: list[tuple[Article, int]] = []
    for depth in range(per_article):
        order += [queue[depth] for queue in queues if depth < len(queue)]
    return order


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def copied_run(question: str, sentence: str, run: int = COPY_RUN) -> bool:
    """Whether the question repeats `run` consecutive words of the sentence."""
    sentence_words = words(sentence)
    grams = {tuple(sentence_words[k : k + run]) for k in range(len(sentence_words) - run + 1)}
    question_words = words(question)
    return any(tuple(question_words[k : k + run]) in grams for k in range(len(question_words) - run + 1))


def parse_reply(reply: str) -> tuple[str, str]:
    """(question, answer) from a "Q: ... / A: ..." reply; the model sometimes drops the labels, so the first line
    ending in "?" is the question and the next line the answer. Empty strings where one is missing."""
    question = answer = ""
    for line in (raw.strip() for raw in reply.splitlines()):
        label = line[:2].upper()
        text = line[2:].strip() if label in {"Q:", "A:"} else line
        if not question and (label == "Q:" or text.endswith("?")):
            question = text
        elif question and not answer and text:
            answer = text
    return question, answer


def check_question(question: str, answer: str, sentence: str, title: str = "", kind: str = "") -> str:
    """Why (question, answer) is unusable for `sentence`, or "" when it passes every filter."""
    normal = " ".join(sentence.split()).lower()
    answer = answer.strip().strip("\"'“”").rstrip(".").strip()
    if not question.endswith("?") or not 4 <= len(question.split()) <= 30:
        return "not a question of 4-30 words"
    if not answer or len(answer.split()) > 25:
        return "no short answer"
    if " ".join(answer.split()).lower() not in normal:
        return "answer is not a span of the sentence"
    if kind == "when" and not (YEAR.search(answer) or MONTH.search(answer) or re.search(r"\d|centur", answer)):
        return "a when-question whose answer holds no date"
    if kind.startswith("how many") and not NUMBER.search(answer):
        return "a how-many question whose answer holds no number"
    if answer.lower() in question.lower():
        return "answer given away in the question"
    if len(answer) >= 0.8 * len(sentence):
        return "answer is the whole sentence"
    if copied_run(question, sentence):
        return f"copies {COPY_RUN}+ words of the sentence"
    content = {w for w in words(question) if w not in STOP and len(w) > 3}
    if not content & set(words(sentence) + words(title)):
        return "shares no content word with the sentence"
    return ""


def read_generated(path: Path = GENERATED) -> list[Generated]:
    if not path.exists():
        return []
    return [Generated(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


Ask = Callable[[str, str], str]  # (system prompt, user message) -> reply


def generate(
    articles: list[Article],
    ask: Ask,
    *,
    out: Path = GENERATED,
    limit: int | None = None,
    deadline: float | None = None,
    per_article: int = PER_ARTICLE,
) -> int:
    """Ask `ask` for a question about each chosen sentence not yet in `out`; append each result. Returns how many
    new replies were written. Stops after `limit` replies or at `deadline` (time.time()), whichever comes first."""
    done = {g.id for g in read_generated(out)}
    written = 0
    with out.open("a", encoding="utf-8") as handle:
        for article, index in chosen_sentences(articles, per_article=per_article):
            key = f"{article.id}/{index}"
            if key in done:
                continue
            if (limit is not None and written >= limit) or (deadline is not None and time.time() > deadline):
                break
            handle.write(json.dumps(asdict(_ask_one(article, index, ask)), ensure_ascii=False) + "\n")
            handle.flush()
            written += 1
    return written


def _ask_one(article: Article, index: int, ask: Ask) -> Generated:
    start, end = article.sentences[index]
    sentence = article.text[start:end]
    kind = question_kind(sentence)
    user = f'Article: {article.title}\nSentence: "{sentence}"\nAsk a "{kind}" question.'
    began = time.perf_counter()
    reply = ask(SYSTEM, user)
    seconds = round(time.perf_counter() - began, 2)
    question, answer = parse_reply(reply)
    reason = check_question(question, answer, sentence, article.title, kind)
    logger.info("%s %.1fs %s | %s | %s", "kept" if not reason else "drop", seconds, question, answer, reason)
    return Generated(
        f"{article.id}/{index}",
        article.id,
        index,
        start,
        end,
        sentence,
        kind,
        question,
        answer,
        not reason,
        reason or "ok",
        seconds,
        reply,
    )


def llama_asker(model_path: Path, *, threads: int = 2, seed: int = 7) -> Ask:
    """An `Ask` over llama.cpp at temperature 0 (the system prompt stays cached between calls)."""
    from llama_cpp import Llama  # noqa: PLC0415 - the [llm] extra

    llm = Llama(model_path=str(model_path), n_ctx=1024, n_threads=threads, seed=seed, verbose=False)

    def ask(system: str, user: str) -> str:
        # The reply is started with "Q:" so that the two-line format is kept (the chat API cannot prefill it).
        prompt = (
            f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\nQ:"
        )
        reply: Any = llm.create_completion(
            prompt, temperature=0.0, max_tokens=60, seed=seed, stop=["<|im_end|>", "\n\n", "\nQ:"]
        )
        return "Q:" + str(reply["choices"][0]["text"] or "")

    return ask


def kept(generated: list[Generated]) -> Iterator[Generated]:
    return (g for g in generated if g.kept)
