"""Prompt name -> template text, from the package's `prompts/` (shipped in the wheel as qa/prompts)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from qa.errors import QAError

SOURCE_CHECKOUT = Path(__file__).resolve().parent.parent / "prompts"


def load_prompt(name: str, directory: Path | None = None) -> str:
    """The text of prompts/<name>.txt: from `directory` if given, else the installed package or the checkout."""
    candidates = [directory / f"{name}.txt"] if directory else []
    try:
        candidates.append(Path(str(importlib.resources.files("qa.prompts").joinpath(f"{name}.txt"))))
    except ModuleNotFoundError:  # an editable install maps qa/ only; the templates sit beside it
        pass
    candidates.append(SOURCE_CHECKOUT / f"{name}.txt")
    for path in candidates:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise QAError(
        f"Prompt template {name!r} not found (looked in {', '.join(map(str, candidates))}); reinstall the package."
    )
