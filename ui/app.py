"""An `Assistant` -> the Gradio page: a streamed, cited chat, a source panel and an article browser.

`build_app` builds the page without launching it; `build_server` mounts it on a FastAPI app next to the HTTP API
(`ui.openai_api`: OpenAI-compatible endpoints and /api/ask); `main` serves both on settings.host:settings.port
with uvicorn (no share link).
Clicks on [n] markers travel as custom events of the `gr.HTML` that shows the conversation (see CLICK_JS): the
server answers with the article, escaped, the quoted span in a <mark> that the panel scrolls into view.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Any

import gradio as gr
from fastapi import FastAPI

from qa import Assistant, QAError, Settings
from qa.engines import AUTO
from ui.chat import Chat
from ui.connections import serve
from ui.documents import STEP_JS, add_document_routes
from ui.openai_api import add_api
from ui.render import Turn, one_line, render_article_list, render_panel_placeholder
from ui.server import MAX_BODY_BYTES, Guard, is_loopback

logger = logging.getLogger(__name__)

# Runs once per gr.HTML: one listener on the component's root catches clicks on any [data-qa-open] element,
# including those added later by new answers.
CLICK_JS = """
element.addEventListener('click', function (event) {
  const button = event.target.closest('[data-qa-open]');
  if (!button || !element.contains(button)) return;
  event.preventDefault();
  element.querySelectorAll('.qa-active').forEach(function (b) { b.classList.remove('qa-active'); });
  button.classList.add('qa-active');
  trigger('click', {source: button.dataset.source || '', start: button.dataset.start || null,
                    end: button.dataset.end || null});
});
"""

# After each new article the highlighted quote is scrolled into view (or the panel back to the top).
REVEAL_JS = """
watch('value', function () {
  const mark = element.querySelector('mark.qa-highlight');
  const text = element.querySelector('.qa-article-text');
  if (!text) return;
  // Scroll the article's own box, not the page, so the chat stays where it was.
  const offset = mark ? mark.getBoundingClientRect().top - text.getBoundingClientRect().top + text.scrollTop : 0;
  text.scrollTop = Math.max(0, offset - text.clientHeight / 3);
  const box = element.getBoundingClientRect();
  if (box.bottom < 0 || box.top > window.innerHeight) element.scrollIntoView({block: 'start'});
});
"""

# Nested inside the component's own #id rule by Gradio (so it is scoped). It is a template: no dollar-brace.
CSS = """
.qa-conversation { display: flex; flex-direction: column; gap: 12px; }
.qa-msg { padding: 10px 14px; border-radius: 10px; max-width: 96%; }
.qa-msg p { margin: 0 0 8px 0; }
.qa-user { align-self: flex-end; background: var(--color-accent-soft); }
.qa-bot { align-self: flex-start; background: var(--background-fill-secondary);
          border: 1px solid var(--border-color-primary); }
.qa-abstained { border-left: 4px solid #d97706; padding-left: 10px; }
.qa-badge { font-weight: 600; color: #b45309; margin-bottom: 6px; }
.qa-hedged { border-left: 4px dashed #6b7280; padding-left: 10px; }
.qa-hedged .qa-badge { color: #4b5563; }
.qa-confidence { border-radius: 6px; padding: 0 5px; font-weight: 600; }
.qa-confidence-answered { background: #dcfce7; } .qa-confidence-hedged { background: #e5e7eb; }
.qa-confidence-refused { background: #fef3c7; }
.qa-error { color: #b91c1c; }
.qa-streaming .qa-draft { opacity: 0.6; }
.qa-evidence { border-left: 3px solid var(--color-accent); padding-left: 10px; margin-bottom: 8px; }
.qa-meta, .qa-where { font-size: 12px; opacity: 0.7; }
.qa-empty { opacity: 0.7; padding: 12px; }
.qa-sources h4, .qa-related h4, .qa-uncited h4, .qa-articles h4 { margin: 10px 0 4px 0; font-size: 14px; }
.qa-sources ul, .qa-related ul, .qa-uncited ul, .qa-articles ul { list-style: none; padding-left: 0; margin: 0; }
.qa-sources li, .qa-related li, .qa-uncited li, .qa-articles li { margin: 0 0 8px 0; }
.qa-quote-text { margin: 2px 0 0 0; padding: 0 0 0 8px; border-left: 3px solid var(--border-color-primary);
                 font-style: italic; font-size: 14px; }
.qa-snippet { font-size: 13px; opacity: 0.8; }
button.qa-cite, button.qa-passage, button.qa-doc { cursor: pointer; border: none; border-radius: 6px;
  padding: 0 5px; font: inherit; color: var(--color-accent); background: var(--color-accent-soft); }
button.qa-doc { text-align: left; background: none; padding: 0; text-decoration: underline; }
button.qa-active { outline: 2px solid var(--color-accent); }
.qa-article-title { margin: 0 0 4px 0; }
.qa-article-text { white-space: pre-wrap; max-height: 70vh; overflow-y: auto; line-height: 1.55;
                   margin-top: 8px; padding-right: 6px; }
mark.qa-highlight { background: #fde68a; color: #111; padding: 1px 0; border-radius: 2px; }
"""


def build_app(assistant: Assistant) -> gr.Blocks:
    """The page for `assistant`, not launched: `build_app(a).launch(...)`."""
    chat = Chat(assistant)
    app = gr.Blocks(title="Grounded news Q&A", analytics_enabled=False, fill_width=True)
    with app:
        gr.Markdown(
            f"## Grounded news Q&A\nAnswers from {_count(assistant.documents)} only. Every sentence "
            "cites its exact source; when the articles don't say, the assistant says so."
        )
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat_tab(chat, assistant)
            with gr.Tab("Articles", id="articles"):
                articles_tab(chat, assistant)
        gr.api(api_ask(chat), api_name="ask")  # type: ignore[attr-defined]  # public, though not in gradio.__all__
    return app


def html_panel(value: str, elem_id: str, js: str, **options: Any) -> gr.HTML:
    return gr.HTML(value, elem_id=elem_id, js_on_load=js, css_template=CSS, **options)


def chat_tab(chat: Chat, assistant: Assistant) -> None:
    """Conversation, question box and controls on the left; the cited article on the right."""
    engines, settings = assistant.engine_names(), assistant.settings
    turns = gr.State([])
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            conversation = html_panel(
                chat.conversation([]),
                "qa-conversation",
                CLICK_JS,
                autoscroll=True,
                max_height=680,
                min_height=240,
                container=True,
                padding=True,
            )
            with gr.Row():
                question = gr.Textbox(
                    placeholder="Ask a question about the articles…",
                    show_label=False,
                    scale=6,
                    elem_id="qa-question",
                    max_lines=4,
                )
                send = gr.Button("Ask", variant="primary", scale=1, elem_id="qa-send")
            with gr.Row():
                engine = gr.Dropdown(
                    [AUTO, *engines],
                    value=settings.engine,
                    label="Engine",
                    visible=len(engines) > 1,
                    elem_id="qa-engine",
                )
                k = gr.Slider(1, 20, value=settings.k, step=1, label="Passages (k)", elem_id="qa-k")
                show_uncited = gr.Checkbox(False, label="Show retrieved-but-uncited passages", elem_id="qa-uncited")
                clear = gr.Button("New conversation", variant="secondary", elem_id="qa-clear")
        with gr.Column(scale=2):
            panel = html_panel(
                render_panel_placeholder(), "qa-source-panel", REVEAL_JS + STEP_JS, container=True, padding=True
            )

    def respond(message: str, state: list[Turn], engine_name: str, passages: float, uncited: bool) -> Any:
        for html, new_turns in chat.respond(message, state, engine=engine_name, k=int(passages), show_uncited=uncited):
            yield html, new_turns, ""

    private: dict[str, Any] = {"api_visibility": "private", "show_progress": "hidden"}
    gr.on(
        [question.submit, send.click],
        respond,
        [question, turns, engine, k, show_uncited],
        [conversation, turns, question],
        **private,
    )
    show_uncited.change(
        lambda state, uncited: chat.conversation(state, show_uncited=uncited),
        [turns, show_uncited],
        conversation,
        **private,
    )
    clear.click(
        lambda: (chat.conversation([]), [], render_panel_placeholder()), None, [conversation, turns, panel], **private
    )
    conversation.click(opener(chat), None, panel, **private)


def articles_tab(chat: Chat, assistant: Assistant) -> None:
    """Every article of the corpus (a filterable picker and a clickable list) and a viewer."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            choices = [(_label(d.title, d.source), d.source) for d in assistant.documents.values()]
            picker = gr.Dropdown(
                choices, value=None, label="Open an article", filterable=True, elem_id="qa-article-picker"
            )
            listing = html_panel(render_article_list(assistant.documents), "qa-article-list", CLICK_JS)
        with gr.Column(scale=3):
            viewer = html_panel(
                render_panel_placeholder(), "qa-article-viewer", REVEAL_JS, container=True, padding=True
            )
    listing.click(opener(chat), None, viewer, api_visibility="private", show_progress="hidden")
    picker.change(chat.open_span, picker, viewer, api_visibility="private", show_progress="hidden")


def opener(chat: Chat) -> Callable[[gr.EventData], str]:
    """The handler of CLICK_JS's custom click event: its data names the source and span to open."""

    def open_clicked(evt: gr.EventData) -> str:
        data = getattr(evt, "_data", None) or {}
        return chat.open_span(data.get("source"), data.get("start"), data.get("end"))

    return open_clicked


def api_ask(chat: Chat) -> Callable[..., dict[str, Any]]:
    """The page's `/ask` endpoint for gradio_client (typed, so Gradio derives its API schema)."""

    def ask(
        question: str, engine: str = AUTO, k: int = 0, history: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        """Answer `question` over the corpus: the same JSON record as `qa ask --json`.

        Args:
            question: the question.
            engine: "auto", or one of the engines the page lists.
            k: number of passages to retrieve (0: the server's default).
            history: earlier turns as [{"role": "user" | "assistant", "content": "..."}], oldest first.
        """
        return chat.record(question, engine=engine, k=k or None, turns=history)

    return ask


def _count(documents: Mapping[str, Any]) -> str:
    return "1 article" if len(documents) == 1 else f"{len(documents):,} articles"


def _label(title: str, source: str) -> str:
    return f"{one_line(title, 91)} ({source})"


def build_server(assistant: Assistant, settings: Settings | None = None) -> FastAPI:
    """One ASGI app: the HTTP API (/v1/..., /api/ask) and the page mounted at "/" (queue of 2, like `launch`).

    With settings.api_key the page asks for it at a login form (any user name, the key as password).
    """
    settings = settings or assistant.settings
    server = FastAPI(title="qa", docs_url=None, redoc_url=None, openapi_url=None)
    add_api(server, assistant, settings)
    add_document_routes(server, assistant, settings)  # the original files of the corpus, for PDF citations
    page = build_app(assistant).queue(default_concurrency_limit=2)
    key = settings.api_key
    login = (lambda user, password: hmac.compare_digest(password.encode(), key.encode())) if key else None
    gr.mount_gradio_app(
        server,
        page,
        "/",
        server_name=settings.host,
        server_port=settings.port,
        auth=login,
        show_error=False,  # an unexpected exception's text stays in the server log
        enable_monitoring=False,
        max_file_size="1kb",  # the page takes no uploads (the route is closed too)
    )
    # the guard: security headers, Host check on loopback (DNS rebinding), closed routes, capped bodies
    server.add_middleware(
        Guard,
        check_host=is_loopback(settings.host),
        max_body=max(MAX_BODY_BYTES, settings.max_request_bytes),
        origins=settings.allowed_origins,
    )
    return server


def check_exposure(settings: Settings, *, insecure_no_key: bool = False) -> None:
    """Refuse to serve on a non-loopback address without an API key, unless told so explicitly."""
    if not settings.api_key and not is_loopback(settings.host) and not insecure_no_key:
        raise QAError(
            f"Refusing to serve on {settings.host} without an API key: anyone who reaches it could use it. "
            "Set QA_API_KEY, serve on 127.0.0.1, or pass --insecure-no-key if the network is yours."
        )


def main(
    assistant: Assistant | None = None,
    settings: Settings | None = None,
    *,
    insecure_no_key: bool = False,
    ready: Callable[[], None] | None = None,
) -> None:
    """Serve the page and its API on settings.host:settings.port until interrupted (never a public share link);
    `ready` runs once the port is bound."""
    settings = settings or (assistant.settings if assistant is not None else Settings.from_env())
    check_exposure(settings, insecure_no_key=insecure_no_key)
    assistant = assistant or Assistant.load(settings)
    server = build_server(assistant, settings)
    if not is_loopback(settings.host):
        logger.warning(
            "Listening on %s: anyone who can reach this address can read the articles (and, without QA_API_KEY, "
            "ask questions); there is no Host check off loopback. See README, 'The page on a network'.",
            settings.host,
        )
    serve(server, settings.host, settings.port, ready=ready)


if __name__ == "__main__":
    main()
