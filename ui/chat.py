"""Page events -> HTML: the chat handler (question + conversation -> streamed conversation HTML), citation clicks
and the API record. Plain Python over the public `qa` API, so tests call it without a browser or Gradio.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from qa import Answer, Assistant, Document, QAError, Quotes, answer_record
from qa.text import echo_question
from ui.documents import render_pdf_view
from ui.render import (
    Turn,
    history,
    parse_span,
    render_article,
    render_conversation,
)

logger = logging.getLogger(__name__)


class Chat:
    """What the page does, one method per event. Holds no per-user state: the conversation travels as `turns`."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    @property
    def documents(self) -> Mapping[str, Document]:
        """The corpus the assistant answers from now (on PostgreSQL it follows a re-index by another process)."""
        return self.assistant.documents

    def conversation(
        self,
        turns: Sequence[Turn],
        *,
        show_uncited: bool = False,
        pending: str | None = None,
        quotes: Quotes | None = None,
    ) -> str:
        return render_conversation(turns, self.documents, show_uncited=show_uncited, pending=pending, quotes=quotes)

    def respond(
        self,
        message: str,
        turns: Sequence[Turn] | None,
        *,
        engine: str | None = None,
        k: int | None = None,
        show_uncited: bool = False,
    ) -> Iterator[tuple[str, list[Turn]]]:
        """Yield (conversation HTML, turns) as the answer streams; the last yield holds the verified answer.

        Evidence first: the chosen quotes, with their citations, are shown as soon as they are picked (milliseconds);
        then the engine's draft, labelled as a draft; the final Answer (what the citation gate kept) replaces both,
        since the gate may drop sentences that were already shown.
        """
        turns = list(turns or [])
        if not message or not message.strip():
            yield self.conversation(turns, show_uncited=show_uncited), turns
            return
        past = history(turns)
        # shown as sent, unless refused for its length or for invalid characters: then shortened and encodable
        turns.append({"role": "user", "content": echo_question(message, self.assistant.settings.max_question_chars)})
        yield self.conversation(turns, show_uncited=show_uncited, pending=""), turns
        streamed, quotes = "", None
        try:
            for item in self.assistant.stream(message, history=past, engine=engine or None, k=k):
                if isinstance(item, Answer):
                    turns.append({"role": "assistant", "content": item.text, "answer": item})
                    continue
                if isinstance(item, Quotes):
                    quotes = item
                else:
                    streamed += item
                yield self.conversation(turns, show_uncited=show_uncited, pending=streamed, quotes=quotes), turns
        except QAError as exc:
            logger.info("Question refused: %s", exc)
            turns.append({"role": "assistant", "content": str(exc), "error": str(exc)})
        yield self.conversation(turns, show_uncited=show_uncited), turns

    def open_span(self, source: object, start: object = None, end: object = None) -> str:
        """The side panel for a click: the article with [start:end] highlighted (ignored unless a valid span)."""
        name, first, last = parse_span(source, start, end)
        document = self.documents.get(name)
        if document is not None and document.pages:  # a PDF: its page images with boxes, and the text by page
            return render_pdf_view(self.assistant, document, first, last)
        return render_article(document, first, last)

    def record(
        self,
        question: str,
        *,
        engine: str | None = None,
        k: int | None = None,
        turns: Sequence[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """The same JSON record as `qa ask --json`; a refused question gives {"question", "error"}."""
        try:
            answer = self.assistant.ask(question, history=list(turns or []), engine=engine or None, k=k)
        except QAError as exc:  # the refused question is echoed short: it may be megabytes, or not encodable
            return {"question": echo_question(question), "error": str(exc)}
        return answer_record(answer)
