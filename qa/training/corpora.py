"""Source files -> training corpora (JSONL): articles with exact sentence spans, and SQuAD 2.0's human questions.

Run once, by hand, from local copies of the source repositories (see `data/SOURCES.md`); the output is committed, so
generating pairs and training never need the sources again. Evaluation text never enters: no `seeds/`, no
`eval/second/`, no NASA text at all (the second evaluation corpus is NASA news).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
CORPORA = DATA / "corpora.jsonl"
SQUAD = DATA / "squad.jsonl"

# GUM (github.com/amir-zeldes/gum): genre -> (domain, licence). Only genres whose text licence allows training.
GUM_GENRES = {
    "news": ("news", "CC BY 2.5 (Wikinews)"),
    "bio": ("encyclopaedic", "CC BY-SA 3.0 (Wikipedia)"),
    "voyage": ("encyclopaedic", "CC BY-SA 3.0 (Wikivoyage)"),
    "speech": ("government", "public domain (U.S. federal government work)"),
}
# Speeches kept: only U.S. federal works (presidents in office, the Congressional Record, the Speaker's office).
# Left out: other governments' and the UN's speeches, a campaign speech, and a NASA briefing.
US_FEDERAL_SPEECHES = {"floyd", "impeachment", "inauguration", "maiden", "nixon", "remarks"}
EXCLUDED = re.compile(r"\bNASA\b|Artemis", re.IGNORECASE)
SQUAD_LICENCE = "CC BY-SA 4.0 (SQuAD 2.0, text from Wikipedia)"


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    corpus: str
    domain: str
    licence: str
    url: str
    title: str
    text: str
    sentences: tuple[tuple[int, int], ...]  # exact spans: text[start:end] is a sentence


def read_corpus(path: Path = CORPORA) -> list[Article]:
    """The committed training articles."""
    articles = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record["sentences"] = tuple((int(s), int(e)) for s, e in record["sentences"])
        articles.append(Article(**record))
    return articles


def read_squad(path: Path = SQUAD) -> list[dict[str, Any]]:
    """The committed SQuAD 2.0 paragraphs, each with its sentence spans and questions."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def gum_articles(git_dir: Path, commit: str = "HEAD") -> Iterator[Article]:
    """Articles rebuilt from GUM's CoNLL-U files (`# text =` per sentence, `# newpar` per paragraph)."""
    listing = _git(git_dir, "ls-tree", "-r", "--name-only", commit, "dep/")
    for name in sorted(listing.split()):
        match = re.fullmatch(r"dep/GUM_([a-z]+)_([a-z0-9]+)\.conllu", name)
        if not match or match.group(1) not in GUM_GENRES:
            continue
        genre, short = match.groups()
        if genre == "speech" and short not in US_FEDERAL_SPEECHES:
            continue
        article = _conllu_article(f"gum-{genre}-{short}", genre, _git(git_dir, "show", f"{commit}:{name}"))
        if not EXCLUDED.search(article.text) and not EXCLUDED.search(article.url):
            yield article


def _conllu_article(article_id: str, genre: str, conllu: str) -> Article:
    meta: dict[str, str] = {}
    paragraphs: list[list[str]] = []
    for line in conllu.splitlines():
        if line.startswith("# meta::"):
            key, _, value = line[len("# meta::") :].partition(" = ")
            meta[key] = value
        elif line.startswith("# newpar") and not line.startswith("# newpar_block"):
            paragraphs.append([])
        elif line.startswith("# text = "):
            if not paragraphs:
                paragraphs.append([])
            paragraphs[-1].append(line[len("# text = ") :].strip())
    text, spans = "", []
    for paragraph in (p for p in paragraphs if p):
        if text:
            text += "\n\n"
        for k, sentence in enumerate(paragraph):
            if k:
                text += " "
            spans.append((len(text), len(text) + len(sentence)))
            text += sentence
    domain, licence = GUM_GENRES[genre]
    return Article(
        article_id, "gum", domain, licence, meta.get("sourceURL", ""), meta.get("title", ""), text, tuple(spans)
    )


def squad_paragraphs(squad_json: Path) -> Iterator[dict[str, Any]]:
    """SQuAD 2.0 paragraphs with pysbd sentence spans and every question (answerable or not)."""
    import pysbd  # noqa: PLC0415 - a core dependency, slow to import

    segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)
    data = json.loads(squad_json.read_text(encoding="utf-8"))["data"]
    for article in data:
        for number, paragraph in enumerate(article["paragraphs"]):
            text = paragraph["context"]
            if EXCLUDED.search(text):
                continue
            spans = [_trimmed(text, piece.start, piece.end) for piece in segmenter.segment(text)]
            questions = [
                {
                    "id": qa["id"],
                    "question": qa["question"],
                    "answerable": not qa.get("is_impossible", False),
                    "answers": sorted({(a["answer_start"], a["text"]) for a in qa["answers"]}),
                }
                for qa in paragraph["qas"]
            ]
            yield {
                "id": f"squad-{article['title']}-{number}",
                "title": article["title"].replace("_", " "),
                "text": text,
                "sentences": [s for s in spans if s[1] > s[0]],
                "questions": questions,
            }


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def write_corpora(gum_git_dir: Path, squad_json: Path, *, out: Path = DATA) -> tuple[int, int]:
    """Write corpora.jsonl (GUM articles) and squad.jsonl; return how many of each were written."""
    out.mkdir(parents=True, exist_ok=True)
    articles = list(gum_articles(gum_git_dir))
    with (out / CORPORA.name).open("w", encoding="utf-8") as handle:
        for article in articles:
            handle.write(json.dumps(asdict(article), ensure_ascii=False) + "\n")
    paragraphs = list(squad_paragraphs(squad_json))
    with (out / SQUAD.name).open("w", encoding="utf-8") as handle:
        for paragraph in paragraphs:
            handle.write(json.dumps(paragraph, ensure_ascii=False) + "\n")
    return len(articles), len(paragraphs)


def _git(git_dir: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], check=True, capture_output=True, text=True).stdout
