"""The page in a real headless browser (Debian chromium via Playwright) and its API via gradio_client."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa import Answer, Assistant, Quotes, Settings, answer_record
from tests.conftest import ROOT
from tests.servers import live_server

pytestmark = [
    pytest.mark.slow,
    # Gradio's queue computes usage statistics with a pandas option that pandas 3 deprecates.
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
QUESTION = (
    "If Washington and the Taliban ended up jointly defeating the terrorist group, what conclusion does "
    "the author say the world would draw?"
)
OFF_TOPIC = "What is the recipe for banana bread?"
EVIL_TITLE = "Harbor news <script>window.__pwned=1</script>"
EVIL_SENTENCE = (
    'The Port Ellis lighthouse lamp <img src=x onerror="window.__pwned=2"> can be seen '
    "30 kilometres out at sea, said the keeper Mara Quint."
)
EVIL_TEXT = (
    f"{EVIL_TITLE}\n\nThe old harbor lighthouse in Port Ellis reopened on Monday after a two-year "
    "restoration. ${window.__pwned=3} {{value}}\n\n"
    f"{EVIL_SENTENCE}\n\nVisitors can climb its 212 steps every weekend from May to October.\n"
)


def serve(assistant: Assistant) -> Iterator[str]:
    """What `qa chat` serves: the page mounted next to the HTTP API, on uvicorn."""
    from ui.app import build_server

    with live_server(build_server(assistant)) as url:
        yield url + "/"


@pytest.fixture(scope="module")
def url(assistant: Assistant) -> Iterator[str]:
    yield from serve(assistant)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make install-dev installs it)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; the test fails if the Content-Security-Policy blocked anything the page itself needs."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(60_000)
    blocked: list[str] = []
    opened.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    yield opened
    context.close()
    assert not blocked, blocked


def ask(page: Any, question: str) -> None:
    box = page.locator("#qa-question textarea")
    box.fill(question)
    page.locator("#qa-send").click()


def test_clicking_a_citation_highlights_its_exact_quote(assistant: Assistant, page: Any, url: str) -> None:
    expected = assistant.ask(QUESTION, engine="extractive")
    assert expected.citations
    page.goto(url)
    ask(page, QUESTION)
    answer = page.locator("#qa-conversation .qa-answer.qa-cited")
    answer.wait_for()
    assert answer.locator(".qa-sources li").count() == len(expected.citations)
    assert answer.locator(".qa-confidence-answered").text_content() == f"P(answerable) {expected.confidence:.2f}"
    answer.locator("p button.qa-cite", has_text="[1]").click()
    mark = page.locator("#qa-source-panel mark.qa-highlight")
    mark.wait_for()
    assert mark.text_content() == expected.citations[0].quote
    title = page.locator("#qa-source-panel .qa-article-title").text_content()
    assert title == assistant.documents[expected.citations[0].source].title
    # the quote is scrolled into the visible part of the article's box
    page.wait_for_function("""() => {
        const m = document.querySelector('#qa-source-panel mark.qa-highlight').getBoundingClientRect();
        const box = document.querySelector('#qa-source-panel .qa-article-text').getBoundingClientRect();
        return m.top >= box.top - 1 && m.top < box.bottom; }""")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-citation.png"))


def test_off_topic_question_shows_the_abstention(assistant: Assistant, page: Any, url: str) -> None:
    assert assistant.ask(OFF_TOPIC, engine="extractive").abstained
    page.goto(url)
    ask(page, OFF_TOPIC)
    abstained = page.locator("#qa-conversation .qa-abstained")
    abstained.wait_for()
    assert abstained.locator(".qa-badge").text_content() == "No answer in the articles"
    assert abstained.locator(".qa-confidence-refused").count() == 1
    assert abstained.locator("button.qa-cite").count() == 0
    assert page.locator("#qa-conversation .qa-sources").count() == 0
    page.screenshot(path=str(ARTIFACTS / "ui-abstention.png"))


@pytest.fixture(scope="module")
def evil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Assistant]]:
    root = tmp_path_factory.mktemp("evil")
    (root / "corpus").mkdir()
    (root / "corpus" / "harbor.txt").write_text(EVIL_TEXT, encoding="utf-8")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", engine="extractive")
    assistant = Assistant.load(settings)
    for url in serve(assistant):
        yield url, assistant


def test_html_in_an_article_is_shown_as_text_and_never_runs(page: Any, evil: tuple[str, Assistant]) -> None:
    url, assistant = evil
    page.goto(url)
    page.get_by_role("tab", name="Articles").click()
    page.locator("#qa-article-list button.qa-doc").first.click()
    viewer = page.locator("#qa-article-viewer .qa-article-text")
    viewer.wait_for()
    assert viewer.text_content() == EVIL_TEXT
    title = assistant.documents["harbor.txt"].title
    assert page.locator("#qa-article-viewer .qa-article-title").text_content() == title
    assert page.locator("#qa-article-viewer img, #qa-article-viewer script").count() == 0
    page.screenshot(path=str(ARTIFACTS / "ui-escaped-article.png"))

    page.get_by_role("tab", name="Chat").click()
    ask(page, "How far out at sea can the Port Ellis lighthouse lamp be seen?")
    page.locator("#qa-conversation .qa-answer.qa-cited").wait_for()
    page.locator("#qa-conversation p button.qa-cite").first.click()
    page.locator("#qa-source-panel mark.qa-highlight").wait_for()
    assert EVIL_SENTENCE in page.locator("#qa-source-panel mark.qa-highlight").text_content()
    assert page.locator("#qa-conversation img, #qa-source-panel img").count() == 0
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    page.screenshot(path=str(ARTIFACTS / "ui-escaped-citation.png"))


def test_api_returns_the_cli_answer_record(assistant: Assistant, url: str) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    result = client.predict(QUESTION, "extractive", 0, [], api_name="/ask")
    expected = answer_record(assistant.ask(QUESTION, engine="extractive"))
    assert result["citations"] and result["timings_ms"]["total_ms"] > 0
    assert {k: v for k, v in result.items() if k != "timings_ms"} == {
        k: v for k, v in expected.items() if k != "timings_ms"
    }
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": expected["answer"]}]
    follow_up = client.predict("And what did they say about it?", "extractive", 3, history, api_name="/ask")
    again = answer_record(assistant.ask("And what did they say about it?", history=history, engine="extractive", k=3))
    assert follow_up["citations"] == again["citations"] and follow_up["question"] == again["question"]
    client.close()


CONVERSATION = (
    "How many Chinese spies were reportedly caught in Kabul?",
    "When was that?",
    "On whose behalf were they supposed to carry out attacks?",
)
FOLLOW_UP_QUOTE = "The CCP spies were intended to carry out attacks on behalf of a former Islamic terrorist group"


def test_a_three_turn_conversation_is_cited_and_new_conversation_forgets_it(
    assistant: Assistant, page: Any, url: str
) -> None:
    history: list[dict[str, Any]] = []
    expected = []
    for question in CONVERSATION:  # what the Python API answers with the same history as the page keeps
        answer = assistant.ask(question, history=history, engine="extractive")
        expected.append(answer)
        cited = [{"source": c.source, "start": c.start, "end": c.end} for c in answer.citations]
        history += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer.text, "citations": cited},
        ]
    assert FOLLOW_UP_QUOTE in expected[2].citations[0].quote
    assert not {c.quote for c in expected[2].citations} & {c.quote for c in expected[0].citations}
    page.goto(url)
    answers = page.locator("#qa-conversation .qa-answer.qa-cited")
    for turn, question in enumerate(CONVERSATION, start=1):
        ask(page, question)
        page.wait_for_function(
            "n => document.querySelectorAll('#qa-conversation .qa-answer.qa-cited').length === n", arg=turn
        )
        answer = answers.nth(turn - 1)
        assert answer.locator(".qa-sources li").count() == len(expected[turn - 1].citations) > 0
    answers.nth(2).locator("p button.qa-cite", has_text="[1]").click()
    mark = page.locator("#qa-source-panel mark.qa-highlight")
    mark.wait_for()
    assert mark.text_content() == expected[2].citations[0].quote  # the follow-up's own passage, not turn 1's
    page.screenshot(path=str(ARTIFACTS / "ui-conversation.png"))

    page.locator("#qa-clear").click()
    page.wait_for_function("() => !document.querySelector('#qa-conversation .qa-msg')")
    assert page.locator("#qa-source-panel mark.qa-highlight").count() == 0
    # "When was that?" needs the conversation; subtle: the third question no longer does (the fitted ranker finds
    # its sentence without it), so it cannot show that the page forgot the conversation
    alone = assistant.ask(CONVERSATION[1], engine="extractive")  # the same words without the conversation
    assert expected[1].citations and alone.citations != expected[1].citations
    ask(page, CONVERSATION[1])
    page.locator("#qa-conversation .qa-msg.qa-bot .qa-answer:not(.qa-streaming)").wait_for()
    bot = page.locator("#qa-conversation .qa-msg.qa-bot")
    assert bot.count() == 1
    # the page answers as the API does without history: here it abstains, where the conversation had the answer
    assert alone.abstained
    assert bot.locator(".qa-abstained .qa-badge").text_content() == "No answer in the articles"
    assert bot.locator("button.qa-cite").count() == 0


def test_the_page_cannot_send_data_to_another_origin(browser: Any, url: str) -> None:
    """The Content-Security-Policy lets the page talk to its own server only (a script injected into an article
    could not send what the user reads elsewhere); the page test fixture fails on any such violation."""
    context = browser.new_context()
    opened = context.new_page()
    opened.goto(url)
    opened.locator("#qa-question textarea").wait_for()
    directive = opened.evaluate("""() => new Promise(resolve => {
        document.addEventListener('securitypolicyviolation', e => resolve(e.effectiveDirective));
        fetch('http://127.0.0.2:9/leak').catch(() => {});
        setTimeout(() => resolve('none'), 10000); })""")
    context.close()
    assert directive == "connect-src"


# --- load: five page sessions answered by the local LLM while another reader of the model's stream stalls --------

LLM_QUESTIONS = [
    "How many people were killed in the suicide bombing at Kabul airport?",
    "Where did Wang Yi hold talks with Mullah Abdul Ghani Baradar?",
    "Which RAND analyst described the road through the Wakhan Corridor?",
    "In which year did Beijing establish relations with the Taliban?",
    "Which Chinese state-run outlet interviewed Latif Pedram?",
]
SESSION_TIMEOUT_MS = 900_000  # 6 generations one after another on a busy 2-core machine; a bound, not a target


@pytest.fixture(scope="module")
def llm_url(assistant: Assistant) -> Iterator[tuple[str, Assistant]]:
    pytest.importorskip("llama_cpp")
    from qa.engines import make_engines
    from qa.errors import ModelError

    settings = assistant.settings.replace(engine="llm")
    try:
        engines = make_engines(settings, assistant.embedder)
    except ModelError as exc:
        pytest.skip(f"local model not assembled: {exc}")
    llm_assistant = Assistant(settings, assistant.index, assistant.embedder, engines)
    for url in serve(llm_assistant):
        yield url, llm_assistant


def test_five_llm_sessions_answer_while_a_stream_reader_stalls(browser: Any, llm_url: tuple[str, Assistant]) -> None:
    """The model lock is held while generating only: a reader that takes one piece of its stream and then stalls
    (a slow client) must not keep five page sessions from being answered by the same model."""
    url, llm_assistant = llm_url
    first_piece, sessions_done = threading.Event(), threading.Event()
    stalled: list[Any] = []

    def stalling_reader() -> None:
        stream = llm_assistant.stream("What did the spokesman of the Taliban say about China?", engine="llm")
        for item in stream:  # the evidence first, then the model's first piece
            stalled.append(item)
            if not isinstance(item, Quotes):
                break
        first_piece.set()
        sessions_done.wait(timeout=SESSION_TIMEOUT_MS / 1000)
        stalled.extend(stream)

    reader = threading.Thread(target=stalling_reader, daemon=True)
    reader.start()
    assert first_piece.wait(timeout=300), "the reader got no first piece"
    contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in LLM_QUESTIONS]
    pages = [context.new_page() for context in contexts]
    for page, question in zip(pages, LLM_QUESTIONS, strict=True):
        page.goto(url)
        ask(page, question)
    try:
        for page in pages:  # each session's verified answer (or abstention) replaces its stream
            page.locator("#qa-conversation .qa-answer:not(.qa-streaming)").wait_for(timeout=SESSION_TIMEOUT_MS)
        errors = sum(page.locator("#qa-conversation .qa-error").count() for page in pages)
        answered = sum(page.locator("#qa-conversation .qa-answer.qa-cited").count() for page in pages)
    finally:
        sessions_done.set()
        for context in contexts:
            context.close()
    reader.join(timeout=300)
    assert errors == 0 and answered >= 3, (errors, answered)
    assert isinstance(stalled[0], Quotes) and isinstance(stalled[1], str) and isinstance(stalled[-1], Answer)


def test_the_evidence_shows_first_then_the_llm_answer_replaces_it(browser: Any, llm_url: tuple[str, Assistant]) -> None:
    """Evidence first: the chosen quotes, with clickable citations, are on the page while the model still writes;
    the verified answer then replaces them."""
    url, llm_assistant = llm_url
    quotes = next(i for i in llm_assistant.stream(QUESTION, engine="extractive") if isinstance(i, Quotes))
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(url)
        ask(page, QUESTION)
        evidence = page.locator("#qa-conversation .qa-streaming .qa-evidence")
        evidence.wait_for(timeout=30_000)
        assert page.locator("#qa-conversation .qa-answer:not(.qa-streaming)").count() == 0  # no answer yet
        assert evidence.locator("button.qa-cite").count() == len(quotes.citations)
        page.screenshot(path=str(ARTIFACTS / "ui-evidence-first.png"))
        final = page.locator("#qa-conversation .qa-answer:not(.qa-streaming)")
        final.wait_for(timeout=SESSION_TIMEOUT_MS)
        assert page.locator("#qa-conversation .qa-evidence").count() == 0
        classes = (final.get_attribute("class") or "").split()
        assert "qa-cited" in classes or "qa-abstained" in classes
        page.screenshot(path=str(ARTIFACTS / "ui-evidence-then-answer.png"))
    finally:
        context.close()
