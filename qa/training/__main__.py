"""`python -m qa.training STEP`: corpora -> questions -> pairs -> train -> measure (see qa/training/README.md)."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import click


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m qa.training", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    steps = parser.add_subparsers(dest="step", required=True)
    corpora = steps.add_parser("corpora", help="rebuild data/corpora.jsonl and data/squad.jsonl from source copies")
    corpora.add_argument("--gum-git-dir", type=Path, required=True, help="a clone (git dir) of amir-zeldes/gum")
    corpora.add_argument("--squad", type=Path, required=True, help="SQuAD 2.0 dev JSON (data/dev-v2.0.json)")
    questions = steps.add_parser("questions", help="ask the local LLM for questions (resumable, appends)")
    questions.add_argument("--limit", type=int, default=None, help="stop after this many new replies")
    questions.add_argument("--minutes", type=float, default=None, help="stop after this many minutes")
    questions.add_argument("--domain", action="append", help="only articles of this domain (repeatable): news, ...")
    questions.add_argument(
        "--model", type=Path, default=None, help="a GGUF file (default: the one `qa fetch-model` fetched)"
    )
    steps.add_parser("pairs", help="build data/pairs.jsonl from the corpora, the questions and SQuAD")
    train = steps.add_parser("train", help="train the reader on data/pairs.jsonl and write qa/models/reader")
    train.add_argument("--epochs", type=float, default=1.0)
    train.add_argument("--layers", type=int, default=4)
    train.add_argument("--minutes", type=float, default=None, help="stop at this deadline and save (resumable)")
    train.add_argument("--out", type=Path, default=None)
    measure = steps.add_parser("measure", help="held-out pairs and the dev split: the reader vs today's ranker")
    measure.add_argument("--model", type=Path, default=None)
    measure.add_argument(
        "--split", action="append", help="dev (default); test and second are held out: measure them once, at the end"
    )
    measure.add_argument("--no-heldout", action="store_true", help="skip the held-out pairs")
    measure.add_argument(
        "--out", type=Path, default=None, help="where to write the results (default data/measured.json)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s")
    run(args)


def run(args: argparse.Namespace) -> None:
    if args.step == "corpora":
        from qa.training.corpora import write_corpora  # noqa: PLC0415 - each step imports only what it needs

        show("articles, squad paragraphs:", write_corpora(args.gum_git_dir, args.squad))
    elif args.step == "questions":
        from qa import Settings  # noqa: PLC0415
        from qa.training.corpora import read_corpus  # noqa: PLC0415
        from qa.training.questions import generate, llama_asker  # noqa: PLC0415

        deadline = time.time() + 60 * args.minutes if args.minutes else None
        settings = Settings()
        asker = llama_asker(args.model or settings.llm_model_dir / f"{settings.llm_model}.gguf")
        articles = [a for a in read_corpus() if not args.domain or a.domain in args.domain]
        show("new replies:", generate(articles, asker, limit=args.limit, deadline=deadline))
    elif args.step == "pairs":
        from qa.training.pairs import write_pairs  # noqa: PLC0415

        show(write_pairs())
    elif args.step == "train":
        from qa.training.train import train  # noqa: PLC0415

        show(train(epochs=args.epochs, layers=args.layers, out=args.out, minutes=args.minutes))
    elif args.step == "measure":
        from qa.training.measure import RESULTS, measure  # noqa: PLC0415

        show(measure(args.model, splits=args.split or ["dev"], out=args.out or RESULTS, heldout=not args.no_heldout))


def show(*values: Any) -> None:
    """A step's result on stdout (click.echo: the library itself never prints)."""
    click.echo(" ".join(v if isinstance(v, str) else json.dumps(v, default=str) for v in values))


if __name__ == "__main__":
    main()
