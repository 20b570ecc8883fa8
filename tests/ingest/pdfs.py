"""PDFs with known content for the extractor tests, drawn with reportlab: flowing paragraphs in one or more
columns, running headers and footers, explicit lines (hyphenation), pages with an image and no text.

Every line drawn is recorded with its page, the sentences it holds and its box (0-1 from the top-left), so tests
can check where the extractor says a sentence lies.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

WIDTH, HEIGHT = letter
MARGIN = 72.0
GUTTER = 24.0


@dataclass
class DrawnLine:
    page: int
    text: str
    sentences: set[int]
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass
class Drawn:
    lines: list[DrawnLine] = field(default_factory=list)
    pages: int = 0

    def of_sentence(self, sentence: int) -> list[DrawnLine]:
        return [line for line in self.lines if sentence in line.sentences]


def register_dejavu() -> str | None:
    """DejaVu Sans (shipped with matplotlib) has the fi/fl ligature glyphs; None when it is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not font.is_file():
        return None
    pdfmetrics.registerFont(TTFont("DejaVuSans", str(font)))
    return "DejaVuSans"


def write_pdf(
    path: Path,
    paragraphs: list[list[str]],
    *,
    columns: int = 1,
    header: str | None = None,
    footer: str | None = None,
    font: str = "Helvetica",
    size: float = 11.0,
    encrypt: str | None = None,
    labels: Sequence[tuple[int, str, int]] = (),
    image_pages: tuple[int, ...] = (),
) -> Drawn:
    """Draw `paragraphs` (each a list of sentences) flowing through columns and pages.

    Sentences are numbered in order across paragraphs. A paragraph is followed by a blank line. `header` and
    `footer` may hold "{page}". `image_pages` (1-based) are pages with only an image, inserted at those numbers.
    `labels` are (page index from 0, style, start) for reportlab's addPageLabel ("ROMAN_LOWER", "ARABIC").
    """
    pdf = canvas.Canvas(str(path), pagesize=letter, encrypt=encrypt)
    column_width = (WIDTH - 2 * MARGIN - GUTTER * (columns - 1)) / columns
    leading = size * 1.3
    drawn = Drawn()
    words = _numbered_words(paragraphs)
    state = {"page": 0, "column": 0, "y": 0.0}

    def new_page() -> None:
        if state["page"]:
            pdf.showPage()
        state["page"] += 1
        while state["page"] in image_pages:
            _draw_image(pdf)
            pdf.showPage()
            state["page"] += 1
        state["column"], state["y"] = 0, HEIGHT - MARGIN
        for text, y in ((header, HEIGHT - 40), (footer, 30)):
            if text:
                pdf.setFont(font, 9)
                pdf.drawString(MARGIN, y, text.format(page=state["page"]))

    new_page()
    for number, paragraph in enumerate(words):
        for line in _wrap(paragraph, font, size, column_width):
            if state["y"] < MARGIN:
                state["column"] += 1
                state["y"] = HEIGHT - MARGIN
                if state["column"] >= columns:
                    new_page()
            x = MARGIN + state["column"] * (column_width + GUTTER)
            text = " ".join(word for word, _ in line)
            pdf.setFont(font, size)
            pdf.drawString(x, state["y"], text)
            right = x + pdfmetrics.stringWidth(text, font, size)
            top, bottom = state["y"] + size, state["y"] - 0.3 * size
            drawn.lines.append(
                DrawnLine(
                    int(state["page"]),
                    text,
                    {s for _, s in line},
                    x / WIDTH,
                    1 - top / HEIGHT,
                    right / WIDTH,
                    1 - bottom / HEIGHT,
                )  # fmt: skip
            )
            state["y"] -= leading
        if number < len(words) - 1:
            state["y"] -= leading  # a blank line between paragraphs
    for page in image_pages:
        if page > state["page"]:
            pdf.showPage()
            _draw_image(pdf)
            state["page"] = page
    for page_index, style, start in labels:
        pdf.addPageLabel(page_index, style=style, start=start)
    pdf.save()
    drawn.pages = int(state["page"])
    return drawn


def write_lines(path: Path, lines: list[str], *, font: str = "Helvetica", size: float = 11.0) -> None:
    """One page with exactly these lines, one under the other (no blank lines)."""
    pdf = canvas.Canvas(str(path), pagesize=letter)
    pdf.setFont(font, size)
    y = HEIGHT - MARGIN
    for line in lines:
        pdf.drawString(MARGIN, y, line)
        y -= size * 1.3
    pdf.save()


def _numbered_words(paragraphs: list[list[str]]) -> list[list[tuple[str, int]]]:
    numbered: list[list[tuple[str, int]]] = []
    sentence = 0
    for paragraph in paragraphs:
        words: list[tuple[str, int]] = []
        for text in paragraph:
            words.extend((word, sentence) for word in text.split())
            sentence += 1
        numbered.append(words)
    return numbered


def _wrap(words: list[tuple[str, int]], font: str, size: float, width: float) -> list[list[tuple[str, int]]]:
    lines: list[list[tuple[str, int]]] = [[]]
    for word in words:
        candidate = " ".join(w for w, _ in lines[-1] + [word])
        if lines[-1] and pdfmetrics.stringWidth(candidate, font, size) > width:
            lines.append([])
        lines[-1].append(word)
    return [line for line in lines if line]


def _draw_image(pdf: canvas.Canvas) -> None:
    """A scanned-looking page: a grey picture with black bars, and no text layer."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (300, 400), "lightgrey")
    draw = ImageDraw.Draw(picture)
    for row in range(20, 380, 24):
        draw.rectangle((20, row, 280, row + 8), fill="black")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    buffer.seek(0)
    pdf.drawImage(ImageReader(buffer), MARGIN, MARGIN, width=WIDTH - 2 * MARGIN, height=HEIGHT - 2 * MARGIN)
