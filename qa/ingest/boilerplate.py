"""Article text -> the ranges that are not article content (site furniture, repeated lines, other scripts, a
trailing listing), each with the reason. The text itself is never rewritten: ranges are skipped when chunking."""

from __future__ import annotations

import re
import unicodedata

# Lines that are site furniture, not article content. Matched against a whole stripped line.
BOILERPLATE_LINE = re.compile(
    r"""^(?:
        sign\ up\b.*|subscribe\b.*|by\ submitting\ this\ form\b.*|view\ original\ post
      | related\ (?:stories|articles|posts)
      | no\ stories\ found\.?|read\ more\b.*|advertisement|share\ this\ (?:article|story)\b.*|click\ here\b.*
      | all\ rights\ reserved\b.*|(?:copyright|©)\ .*|follow\ us\ on\b.*|download\ our\ app\b.*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
LINE = re.compile(r"[^\n]*(?:\n|$)")


def find_boilerplate(text: str) -> list[tuple[int, int, str]]:
    """Ranges of `text` that are not article content, each with the reason it is skipped."""
    lines = [(m.start(), m.end()) for m in LINE.finditer(text) if m.end() > m.start()]
    main_script = dominant_script(text)
    seen: set[str] = set()
    ranges: list[tuple[int, int, str]] = []
    for start, end in lines:
        stripped = text[start:end].strip()
        if not stripped:
            continue
        if BOILERPLATE_LINE.match(stripped):
            ranges.append((start, end, "site boilerplate"))
        elif stripped in seen and len(stripped) > 3:
            ranges.append((start, end, "repeated line"))
        elif dominant_script(stripped) != main_script:
            ranges.append((start, end, "other script than the article"))
        seen.add(stripped)
    ranges.extend(_trailing_listing(text, lines))
    return _merge(ranges)


def _trailing_listing(text: str, lines: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """A run of three or more short non-sentence lines closing the document (book lists, site footers), after
    some prose: a document of short lines only is the article itself, not its listing."""
    tail: list[tuple[int, int]] = []
    after_prose = False
    for start, end in reversed(lines):
        stripped = text[start:end].strip()
        if not stripped:
            continue
        if _is_prose(stripped):
            after_prose = True
            break
        tail.append((start, end))
    if len(tail) < 3 or not after_prose:
        return []
    return [(start, end, "trailing listing") for start, end in tail]


def _is_prose(line: str) -> bool:
    return len(line.split()) >= 8 and line.rstrip("”’\"') ").endswith((".", "!", "?", "…"))


def dominant_script(text: str) -> str:
    counts: dict[str, int] = {}
    for char in text:
        if char.isalpha():
            script = _script(char)
            counts[script] = counts.get(script, 0) + 1
    return max(counts, key=lambda script: counts[script]) if counts else "none"


def _script(char: str) -> str:
    if ord(char) < 0x250:
        return "latin"
    name = unicodedata.name(char, "")
    if name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")):
        return "cjk"
    return name.split(" ")[0].lower() or "other"


def _merge(ranges: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    merged: list[tuple[int, int, str]] = []
    for start, end, reason in sorted(ranges):
        if merged and start <= merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2])
        else:
            merged.append((start, end, reason))
    return merged
