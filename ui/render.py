"""Answers, articles and the conversation -> HTML strings for the page. Plain Python, no Gradio.

Everything that comes from an article or from the user goes through `html.escape`: the page shows it as text and
never runs it. Clickable elements carry `data-qa-open` plus `data-source`/`data-start`/`data-end`; the page's
script turns a click into an event that opens that span of that article in a side panel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any, TypedDict

from qa import Answer, Citation, Document, Passage, Quotes
from qa.text import MARKER, shorten

SNIPPET_CHARS = 280


class Turn(TypedDict, total=False):
    """One message of the conversation as the page keeps it (role/content are what `Assistant` gets as history)."""

    role: str  # "user" or "assistant"
    content: str
    answer: Answer  # assistant turns that produced an Answer
    error: str  # assistant turns that failed with a QAError


def history(turns: Iterable[Turn]) -> list[dict[str, Any]]:
    """The conversation as `[{"role", "content"}]` dicts, oldest first, for `Assistant.stream(history=...)`; an
    answer's turn also carries its "citations" ({source, start, end}), so a follow-up knows what was quoted."""
    past: list[dict[str, Any]] = []
    for turn in turns:
        message: dict[str, Any] = {"role": turn["role"], "content": turn["content"]}
        if "answer" in turn:
            message["citations"] = [
                {"source": c.source, "start": c.start, "end": c.end} for c in turn["answer"].citations
            ]
        past.append(message)
    return past


def open_button(
    label: str, source: str, start: int | None = None, end: int | None = None, *, kind: str = "cite", title: str = ""
) -> str:
    """A button that opens `source` in the side panel, with [start:end] highlighted when given."""
    span = f' data-start="{start}" data-end="{end}"' if start is not None and end is not None else ""
    hint = f' title="{escape(title)}"' if title else ""
    return (
        f'<button type="button" class="qa-{kind}" data-qa-open data-source="{escape(source)}"{span}{hint}>'
        f"{escape(label)}</button>"
    )


def answer_body(text: str, citations: Sequence[Citation]) -> str:
    """Answer text as escaped paragraphs, each known [n] marker turned into a button opening its quote."""
    by_marker = {citation.marker: citation for citation in citations}

    def paragraph(block: str) -> str:
        parts: list[str] = []
        last = 0
        for match in MARKER.finditer(block):
            citation = by_marker.get(int(match.group(1)))
            if citation is None:
                continue
            parts.append(escape(block[last : match.start()]))
            parts.append(
                open_button(match.group(0), citation.source, citation.start, citation.end, title=citation.source)
            )
            last = match.end()
        parts.append(escape(block[last:]))
        return "<p>" + "".join(parts).replace("\n", "<br>") + "</p>"

    return "".join(paragraph(block) for block in re.split(r"\n\s*\n", text.strip()) if block.strip())


def one_line(text: str, limit: int | None = None) -> str:
    flat = " ".join(text.split())
    return flat if limit is None else shorten(flat, limit)


def sources_list(citations: Sequence[Citation], documents: Mapping[str, Document]) -> str:
    """The numbered Sources: marker, article title, source and span, and the exact quote."""
    items = []
    for citation in citations:
        document = documents.get(citation.source)
        title = document.title if document is not None else citation.source
        items.append(
            f'<li data-marker="{citation.marker}">'
            + open_button(f"[{citation.marker}]", citation.source, citation.start, citation.end)
            + f' <span class="qa-title">{escape(one_line(title, 100))}</span>'
            + f' <span class="qa-where">{escape(citation.source)} [{citation.start}:{citation.end}]</span>'
            + f'<div class="qa-quote-text">{escape(one_line(citation.quote))}</div></li>'
        )
    return '<div class="qa-sources"><h4>Sources</h4><ul>' + "".join(items) + "</ul></div>"


def passages_list(
    passages: Sequence[Passage], documents: Mapping[str, Document], *, heading: str, css_class: str
) -> str:
    """Passages (not citations) with a snippet each; each opens its article with the passage highlighted."""
    items = []
    for passage in passages:
        document = documents.get(passage.source)
        title = document.title if document is not None else passage.source
        items.append(
            "<li>"
            + open_button("open", passage.source, passage.start, passage.end, kind="passage")
            + f' <span class="qa-title">{escape(one_line(title, 100))}</span>'
            + f' <span class="qa-where">{escape(passage.source)} [{passage.start}:{passage.end}]'
            + f" · score {passage.score:.3f}</span>"
            + f'<div class="qa-snippet">{escape(one_line(passage.text, SNIPPET_CHARS))}</div></li>'
        )
    return f'<div class="{css_class}"><h4>{escape(heading)}</h4><ul>' + "".join(items) + "</ul></div>"


def uncited(answer: Answer) -> list[Passage]:
    """Retrieved passages that contain none of the answer's citations."""
    return [
        p
        for p in answer.passages
        if not any(c.source == p.source and c.start < p.end and p.start < c.end for c in answer.citations)
    ]


def confidence_badge(answer: Answer) -> str:
    """P(answerable) as a small badge (none when no decision was made), its kind named by the answer: an answer,
    a hedge (answerable, not confidently: nothing asserted) or a refusal."""
    if answer.confidence is None:
        return ""
    kind = "refused" if answer.abstained else "hedged" if answer.hedged else "answered"
    meaning = {
        "answered": "the articles likely answer this",
        "hedged": "not confident the articles answer this: the closest passage is shown, nothing is asserted",
        "refused": "the articles likely do not answer this",
    }[kind]
    return (
        f'<span class="qa-confidence qa-confidence-{kind}" data-confidence="{answer.confidence:.2f}" '
        f'title="P(answerable) {answer.confidence:.2f}: {meaning}">P(answerable) {answer.confidence:.2f}</span>'
    )


def render_answer(answer: Answer, documents: Mapping[str, Document], *, show_uncited: bool = False) -> str:
    """One assistant message: the cited answer with its Sources, a hedge, an abstention, or a small-talk reply."""
    if answer.engine == "smalltalk":
        return f'<div class="qa-answer qa-smalltalk">{answer_body(answer.text, ())}</div>'
    footer = (
        f'<div class="qa-meta">{escape(answer.engine)} · {answer.timings_ms.get("total_ms", 0):.0f} ms'
        f"{' · ' + confidence_badge(answer) if answer.confidence is not None else ''}</div>"
    )
    if answer.abstained:
        related = (
            passages_list(
                answer.passages[:3],
                documents,
                css_class="qa-related",
                heading="Related passages (they do not answer the question)",
            )
            if answer.passages
            else ""
        )
        return (
            '<div class="qa-answer qa-abstained"><div class="qa-badge">No answer in the articles</div>'
            f"{answer_body(answer.text, ())}{related}{footer}</div>"
        )
    if answer.hedged:
        return (
            '<div class="qa-answer qa-hedged"><div class="qa-badge">Not stated directly in the articles</div>'
            f"{answer_body(answer.text, answer.citations)}{sources_list(answer.citations, documents)}{footer}</div>"
        )
    extra = ""
    rest = uncited(answer) if show_uncited else []
    if rest:
        extra = passages_list(rest, documents, css_class="qa-uncited", heading="Retrieved but not cited")
    return (
        f'<div class="qa-answer qa-cited">{answer_body(answer.text, answer.citations)}'
        f"{sources_list(answer.citations, documents)}{extra}{footer}</div>"
    )


def render_turn(turn: Turn, documents: Mapping[str, Document], *, show_uncited: bool = False) -> str:
    if turn["role"] == "user":
        return f'<div class="qa-msg qa-user"><p>{escape(turn["content"])}</p></div>'
    if "answer" in turn:
        return f'<div class="qa-msg qa-bot">{render_answer(turn["answer"], documents, show_uncited=show_uncited)}</div>'
    if "error" in turn:
        return f'<div class="qa-msg qa-bot"><div class="qa-answer qa-error">{escape(turn["error"])}</div></div>'
    return f'<div class="qa-msg qa-bot"><div class="qa-answer">{escape(turn["content"])}</div></div>'


def render_streaming(text: str, quotes: Quotes | None = None) -> str:
    """What is known before the verified answer: the evidence (quotes with clickable citations) as soon as it is
    chosen, and the engine's draft, labelled as such (markers not clickable) until the verified answer replaces it."""
    evidence = ""
    if quotes is not None:
        evidence = (
            '<div class="qa-evidence"><div class="qa-meta">Evidence from the articles (the answer follows)</div>'
            f"{answer_body(quotes.text, quotes.citations)}</div>"
        )
    if text:
        note = '<div class="qa-meta">draft, checking citations…</div>'
        draft = f'<div class="qa-draft"><p>{escape(text)}</p>{note}</div>'
    elif quotes is not None:
        draft = '<div class="qa-meta">writing the answer…</div>'
    else:
        draft = "<p>Searching the articles…</p>"
    return f'<div class="qa-msg qa-bot"><div class="qa-answer qa-streaming">{evidence}{draft}</div></div>'


def render_conversation(
    turns: Sequence[Turn],
    documents: Mapping[str, Document],
    *,
    show_uncited: bool = False,
    pending: str | None = None,
    quotes: Quotes | None = None,
) -> str:
    """The whole conversation, oldest first; `pending` is text still streaming for the last question, after its
    evidence `quotes`."""
    if not turns and pending is None:
        return (
            f'<div class="qa-empty">Ask a question about the {len(documents)} articles. Every sentence of an '
            "answer cites its source: click a [n] marker to see the exact passage.</div>"
        )
    parts = [render_turn(turn, documents, show_uncited=show_uncited) for turn in turns]
    if pending is not None:
        parts.append(render_streaming(pending, quotes))
    return '<div class="qa-conversation">' + "".join(parts) + "</div>"


def render_article(document: Document | None, start: int | None = None, end: int | None = None) -> str:
    """The article's title, source and full text, with text[start:end] in a <mark> when the span is valid."""
    if document is None:
        return '<div class="qa-article qa-empty">Article not found: it is not in this corpus.</div>'
    text = document.text
    if start is not None and end is not None and 0 <= start < end <= len(text):
        body = (
            escape(text[:start])
            + f'<mark class="qa-highlight" data-start="{start}" data-end="{end}">'
            + escape(text[start:end])
            + "</mark>"
            + escape(text[end:])
        )
        where = f"{escape(document.source)} · characters {start}–{end}"
    else:
        body, where = escape(text), f"{escape(document.source)} · {len(text):,} characters"
    return (
        f'<div class="qa-article"><h3 class="qa-article-title">{escape(document.title)}</h3>'
        f'<div class="qa-where">{where}</div><div class="qa-article-text">{body}</div></div>'
    )


def render_panel_placeholder() -> str:
    return '<div class="qa-article qa-empty">Click a citation [n] to see the quoted passage in its article.</div>'


def render_article_list(documents: Mapping[str, Document]) -> str:
    """Every article of the corpus: a button opening it, its source and length."""
    rows = [
        f"<li>{open_button(one_line(d.title, 120) or d.source, d.source, kind='doc')}"
        f' <span class="qa-where">{escape(d.source)} · {len(d.text):,} characters</span></li>'
        for d in sorted(documents.values(), key=lambda d: d.source)
    ]
    return f'<div class="qa-articles"><h4>{len(rows)} articles</h4><ul>' + "".join(rows) + "</ul></div>"


def parse_span(source: object, start: object, end: object) -> tuple[str, int | None, int | None]:
    """A click's (source, start, end) from the browser, where start/end may be missing or malformed."""

    def number(value: object) -> int | None:
        try:
            return int(value)  # type: ignore[call-overload, no-any-return]
        except (TypeError, ValueError):
            return None

    return str(source or ""), number(start), number(end)
