"""The page's formatting and handlers, without a browser: ui.render and ui.chat over the real seeds assistant."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from html import unescape

import pytest
from click.testing import CliRunner

from qa import Answer, Assistant, Citation, Document, Passage, Quotes, answer_record
from qa.cli import cli
from ui.chat import Chat
from ui.render import history, render_answer, render_article, render_article_list, render_conversation

QUESTION = (
    "If Washington and the Taliban ended up jointly defeating the terrorist group, what conclusion does "
    "the author say the world would draw?"
)
OFF_TOPIC = "What is the recipe for banana bread?"
EVIL = 'Evil <script>window.__pwned=1</script> & "quotes"\n\nA lamp <img src=x onerror="window.__pwned=2"> shone.'


def document(source: str, text: str, title: str) -> Document:
    return Document(source, text, title, hashlib.sha256(text.encode()).hexdigest())


def buttons(html: str, kind: str = "cite") -> list[tuple[str, int, int]]:
    """(source, start, end) of every button of `kind` that opens a span."""
    found = re.findall(
        rf'<button type="button" class="qa-{kind}" data-qa-open data-source="([^"]*)" '
        r'data-start="(\d+)" data-end="(\d+)"',
        html,
    )
    return [(unescape(source), int(start), int(end)) for source, start, end in found]


def marked(html: str) -> str:
    """The text inside the article's <mark>, as the browser shows it."""
    match = re.search(r'<mark class="qa-highlight" data-start="\d+" data-end="\d+">(.*?)</mark>', html, re.S)
    assert match is not None
    return unescape(match.group(1))


def test_cited_answer_links_every_marker_to_its_span(assistant: Assistant) -> None:
    answer = assistant.ask(QUESTION, engine="extractive")
    assert answer.citations and not answer.abstained
    html = render_answer(answer, assistant.documents)
    spans = {(c.source, c.start, c.end) for c in answer.citations}
    # once in the answer text, once in the Sources list
    assert sorted(buttons(html)) == sorted([*spans, *spans])
    for citation in answer.citations:
        assert f'<div class="qa-quote-text">{" ".join(citation.quote.split())}</div>' in unescape(html)
        assert f"{citation.source} [{citation.start}:{citation.end}]" in html
    assert "qa-cited" in html and "qa-abstained" not in html and "<h4>Sources</h4>" in html


def test_abstention_looks_different_and_lists_related_passages_apart(assistant: Assistant) -> None:
    answer = assistant.ask(OFF_TOPIC, engine="extractive")
    assert answer.abstained and answer.passages
    html = render_answer(answer, assistant.documents)
    assert "qa-abstained" in html and "No answer in the articles" in html
    assert "Related passages (they do not answer the question)" in html
    assert buttons(html) == []  # nothing is presented as a citation
    assert buttons(html, "passage") == [(p.source, p.start, p.end) for p in answer.passages[:3]]
    assert "<h4>Sources</h4>" not in html


def test_small_talk_has_no_sources(assistant: Assistant) -> None:
    answer = assistant.ask("hello", engine="extractive")
    assert answer.engine == "smalltalk"
    html = render_answer(answer, assistant.documents, show_uncited=True)
    assert "qa-smalltalk" in html and "Sources" not in html and "data-qa-open" not in html


def test_uncited_passages_only_when_asked(assistant: Assistant) -> None:
    answer = assistant.ask(QUESTION, engine="extractive", k=10)
    cited = {(c.source, c.start, c.end) for c in answer.citations}
    uncited = [
        (p.source, p.start, p.end)
        for p in answer.passages
        if not any(s == p.source and a < p.end and p.start < b for s, a, b in cited)
    ]
    assert uncited, "k=10 should retrieve passages the answer does not cite"
    assert "Retrieved but not cited" not in render_answer(answer, assistant.documents)
    shown = render_answer(answer, assistant.documents, show_uncited=True)
    assert "Retrieved but not cited" in shown and buttons(shown, "passage") == uncited


def test_article_highlights_exactly_the_quoted_span(assistant: Assistant) -> None:
    citation = assistant.ask(QUESTION, engine="extractive").citations[0]
    html = render_article(assistant.documents[citation.source], citation.start, citation.end)
    assert marked(html) == citation.quote
    assert f'data-start="{citation.start}" data-end="{citation.end}"' in html
    assert assistant.documents[citation.source].title in unescape(html)


@pytest.mark.parametrize("start, end", [(None, None), (5, 5), (-1, 3), (0, 10_000)])
def test_article_without_a_valid_span_has_no_mark(start: int | None, end: int | None) -> None:
    html = render_article(document("a.txt", "Short text.", "Short"), start, end)
    assert "<mark" not in html and "Short text." in html


def test_article_text_title_and_source_are_escaped() -> None:
    evil = document('x"><img src=y onerror=alert(1)>.txt', EVIL, "Evil <script>window.__pwned=1</script>")
    start = EVIL.index("<img")
    end = EVIL.index(" shone")
    for html in (render_article(evil, start, end), render_article(evil), render_article_list({evil.source: evil})):
        assert "<script" not in html and "<img" not in html and 'onerror="' not in html
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert marked(render_article(evil, start, end)) == EVIL[start:end]
    assert unescape(re.sub(r"<[^>]+>", "", render_article(evil).split('class="qa-article-text">')[1])) == EVIL


def test_answer_quotes_and_user_input_are_escaped() -> None:
    evil = document("evil.txt", EVIL, "Evil")
    start = EVIL.index("A lamp")
    quote = EVIL[start:]
    answer = Answer(
        "q",
        f"{quote} [1] and a stray [7]",
        False,
        (Citation(1, "evil.txt", start, len(EVIL), quote),),
        (Passage("evil.txt", 0, len(EVIL), EVIL, 0.5),),
    )
    turns = [
        {"role": "user", "content": "<b>hi</b><script>x()</script>"},
        {"role": "assistant", "content": answer.text, "answer": answer},
    ]
    html = render_conversation(turns, {"evil.txt": evil}, show_uncited=True)  # type: ignore[arg-type]
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;b&gt;hi&lt;/b&gt;" in html and "&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;" in html
    assert buttons(html) == [("evil.txt", start, len(EVIL))] * 2
    assert "[7]" in html  # an unknown marker stays plain text, not a button


def test_respond_streams_then_shows_the_verified_answer(assistant: Assistant) -> None:
    chat = Chat(assistant)
    steps = list(chat.respond(QUESTION, [], engine="extractive", k=5))
    assert "Searching the articles" in steps[0][0] and "qa-streaming" in steps[0][0]
    html, turns = steps[-1]
    expected = assistant.ask(QUESTION, engine="extractive", k=5)
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[1]["answer"].citations == expected.citations and "qa-streaming" not in html
    assert buttons(html) == buttons(render_answer(expected, assistant.documents))


def test_respond_shows_the_evidence_before_the_answer(assistant: Assistant) -> None:
    chat = Chat(assistant)
    steps = [html for html, _ in chat.respond(QUESTION, [], engine="extractive", k=5)]
    evidence = next(i for i, html in enumerate(steps) if "qa-evidence" in html)
    assert evidence == 1 and "qa-streaming" in steps[evidence]  # right after the question, before any answer
    quotes = next(item for item in assistant.stream(QUESTION, engine="extractive", k=5) if isinstance(item, Quotes))
    assert buttons(steps[evidence]) == [(c.source, c.start, c.end) for c in quotes.citations]
    assert "qa-evidence" not in steps[-1] and "qa-streaming" not in steps[-1]  # the verified answer replaced it


def test_follow_up_passes_the_conversation_as_history(assistant: Assistant) -> None:
    chat = Chat(assistant)
    *_, (_, turns) = chat.respond(QUESTION, [], engine="extractive")
    *_, (_, turns) = chat.respond("And what did they say about it?", turns, engine="extractive")
    past = history(turns[:2])
    cited = [{"source": c.source, "start": c.start, "end": c.end} for c in turns[1]["answer"].citations]
    assert cited and past == [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": turns[1]["content"], "citations": cited},
    ]
    expected = assistant.ask("And what did they say about it?", history=past, engine="extractive")
    assert turns[3]["answer"].citations == expected.citations


def test_refused_question_shows_the_error_in_the_chat(assistant: Assistant) -> None:
    chat = Chat(assistant)
    html, turns = list(chat.respond("x" * (assistant.settings.max_question_chars + 1), []))[-1]
    assert "error" in turns[-1] and "qa-error" in html and "characters long" in html
    assert list(chat.respond("   ", [])) == [(chat.conversation([]), [])]


def test_record_is_the_cli_json_contract(assistant: Assistant) -> None:
    record = Chat(assistant).record(QUESTION, engine="extractive")
    expected = answer_record(assistant.ask(QUESTION, engine="extractive"))
    assert {key: value for key, value in record.items() if key != "timings_ms"} == {
        key: value for key, value in expected.items() if key != "timings_ms"
    }
    assert Chat(assistant).record("")["error"].startswith("The question is empty")


def test_open_span_ignores_unknown_sources_and_bad_offsets(assistant: Assistant) -> None:
    chat = Chat(assistant)
    source = next(iter(assistant.documents))
    assert "Article not found" in chat.open_span("../../etc/passwd", 0, 10)
    assert "<mark" not in chat.open_span(source, "abc", None)
    assert marked(chat.open_span(source, "0", "5")) == assistant.documents[source].text[:5]


def test_chat_command_without_gradio_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "ui.app", raising=False)
    result = CliRunner().invoke(cli, ["chat"])
    assert result.exit_code == 1
    assert "pip install 'qa[ui]'" in result.output


def test_build_app_builds_without_launching(assistant: Assistant) -> None:
    from ui.app import build_app

    app = build_app(assistant)
    assert not app.is_running
    assert "ask" in {fn.api_name for fn in app.fns.values()}


def test_a_refused_huge_or_invalid_question_is_not_echoed_back_whole(fake_assistant: Assistant) -> None:
    chat = Chat(fake_assistant)
    *_, (html, turns) = chat.respond("x" * 5_000_000, [])
    assert len(html) < 20_000 and turns[-1].get("error") and "limit is 2,000" in turns[-1]["content"]
    assert len(turns[0]["content"]) <= fake_assistant.settings.max_question_chars
    *_, (html, turns) = chat.respond("Who \ud800 erupted?", [])
    html.encode("utf-8")
    assert "not valid Unicode" in turns[-1]["content"]
    record = chat.record("y" * 5_000_000)
    assert len(record["question"]) <= 201 and "limit is 2,000" in record["error"]
    json.dumps(chat.record("bad \udc80 bytes")).encode("utf-8")


@pytest.mark.parametrize(
    ("abstained", "hedged", "kind", "badge"),
    [
        (False, False, "answered", None),
        (False, True, "hedged", "Not stated directly in the articles"),
        (True, False, "refused", "No answer in the articles"),
    ],
)
def test_confidence_is_shown_and_a_hedge_looks_like_neither_an_answer_nor_a_refusal(
    abstained: bool, hedged: bool, kind: str, badge: str | None
) -> None:
    text = "The lamp shone."
    doc = document("a.txt", text, "Lamps")
    citations = () if abstained else (Citation(1, "a.txt", 0, len(text), text),)
    shown = f"{text} [1]" if not abstained else "The articles don't say."
    answer = Answer("Did it shine?", shown, abstained, citations, (), confidence=0.4321, hedged=hedged)
    html = render_answer(answer, {"a.txt": doc})
    assert f'class="qa-confidence qa-confidence-{kind}" data-confidence="0.43"' in html
    assert "P(answerable) 0.43</span>" in html
    classes = {"answered": "qa-cited", "hedged": "qa-hedged", "refused": "qa-abstained"}
    assert classes[kind] in html and all(c not in html for k, c in classes.items() if k != kind)
    assert (badge is None and "qa-badge" not in html) or f'<div class="qa-badge">{badge}</div>' in html
    assert "qa-confidence" not in render_answer(dataclasses.replace(answer, confidence=None), {"a.txt": doc})
