"""Building PDFs with Chinese text, for every report of the platform (fpdf2 underneath).

Why this module: a PDF shows Chinese correctly on any reader only when the font travels inside
it. Offices print on machines without Chinese fonts, and government intranets download nothing,
so every document registers the one font shipped with the package (fonts/, WenQuanYi Micro Hei,
Apache-2.0; ops/make_font_subset.py says how it was cut to GBK) and fpdf2 embeds the glyphs a
document uses as a TrueType subset (a FontFile2 stream, /BaseFont ``XXXXXX+WenQuanYiMicroHei``),
with a ToUnicode map so that text can be searched, copied and read back.

The API is deliberately small::

    from fivestar.documents import pdf

    doc = pdf.new_document(size="A4", title="公示名单", footer="某某工委 · 2026Q1 · 规则第 3 版")
    doc.add_page()
    pdf.centred(doc, "第一党支部党员星级评定结果公示", y=20, size=16)
    with doc.table() as table:            # fpdf2's own tables, in the embedded font
        ...
    data = pdf.finish(doc)                # bytes, ready for fivestar.web.downloads.download(...)

Anything else fpdf2 offers (cells, tables, lines, images) may be used on the returned document;
keep to the registered font family `FONT_FAMILY` and the colours below so reports look alike.
Loading the font takes a few tenths of a second (≈22,000 characters), once per document.

Lengths are millimetres, font sizes points, colours (r, g, b).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos

from fivestar.timekeeping import clock

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT_PATH = FONT_DIR / "wqy-microhei-subset.ttf"
FONT_LICENCE_PATH = FONT_DIR / "LICENSE-Apache-2.0.txt"
FONT_FAMILY = "fivestar-hei"

# Portrait (width, height) in millimetres.
PAGE_SIZES: dict[str, tuple[float, float]] = {
    "A3": (297.0, 420.0),
    "A4": (210.0, 297.0),
    "A5": (148.0, 210.0),
    "A6": (105.0, 148.0),
}

Colour = tuple[int, int, int]
RED: Colour = (200, 16, 46)  # the platform's red (static/css --red)
DARK_RED: Colour = (150, 10, 32)
GOLD: Colour = (230, 170, 20)
INK: Colour = (30, 30, 30)
MUTED: Colour = (110, 110, 110)
WHITE: Colour = (255, 255, 255)

PageSize = Literal["A3", "A4", "A5", "A6"]


class Document(FPDF):
    """An fpdf2 document whose every page ends with a small provenance line and the page number
    (unless the footer is None), in the embedded font."""

    def __init__(self, *, size: PageSize, landscape: bool, footer_text: str | None) -> None:
        width, height = PAGE_SIZES[size]
        super().__init__(orientation="landscape" if landscape else "portrait", unit="mm", format=(width, height))
        self.footer_text = footer_text

    def footer(self) -> None:
        if self.footer_text is None:
            return
        self.set_y(-8)
        self.set_font(FONT_FAMILY, size=7)
        self.set_text_color(*MUTED)
        # {nb} becomes the page count when the document is finished
        self.cell(0, 4, f"{self.footer_text}    {self.page_no()} / {{nb}}".strip(), align=Align.C)


def new_document(
    *,
    size: PageSize = "A4",
    landscape: bool = False,
    title: str = "",
    subject: str = "",
    author: str = "",
    footer: str | None = None,
    margin: float = 12.0,
) -> Document:
    """A new, empty document with the embedded Chinese font registered and selected.

    `footer` is printed small at the foot of every page with the page number ("… 2 / 5"): say where
    the report comes from (the tenant, the round, the rule-set version). None: no footer at all
    (a card or a poster). Add pages with `doc.add_page()`.
    """
    if size not in PAGE_SIZES:
        raise ValueError(f"unknown page size {size!r}; use one of {sorted(PAGE_SIZES)}")
    doc = Document(size=size, landscape=landscape, footer_text=footer)
    doc.add_font(FONT_FAMILY, style="", fname=str(FONT_PATH))
    doc.set_font(FONT_FAMILY, size=11)
    doc.set_text_color(*INK)
    doc.set_margins(margin, margin, margin)
    doc.set_auto_page_break(auto=True, margin=margin)
    doc.alias_nb_pages()
    doc.set_lang("zh-CN")
    doc.set_creator("Fivestar")
    doc.set_creation_date(clock.now())
    if title:
        doc.set_title(title)
    if subject:
        doc.set_subject(subject)
    if author:
        doc.set_author(author)
    return doc


def finish(doc: FPDF) -> bytes:
    """The finished PDF as bytes (the font subset is cut and embedded here). The font file is
    closed afterwards, so always end a document with this, also when abandoning it (see `close`)."""
    try:
        return bytes(doc.output())
    finally:
        close(doc)


def close(doc: FPDF) -> None:
    """Close the font files a document keeps open (fpdf2 reads glyphs lazily)."""
    for font in doc.fonts.values():
        closer = getattr(font, "close", None)
        if callable(closer):
            closer()


def fit_size(doc: FPDF, text: str, *, width: float, size: float, minimum: float = 6.0) -> float:
    """The largest font size from `size` down to `minimum` at which `text` fits in `width`; the
    document's font is left at that size. Long names and branch names shrink instead of wrapping."""
    current = size
    while current > minimum:
        doc.set_font(FONT_FAMILY, size=current)
        if doc.get_string_width(text) <= width:
            return current
        current -= 0.5
    doc.set_font(FONT_FAMILY, size=minimum)
    return minimum


def centred(
    doc: FPDF,
    text: str,
    *,
    y: float,
    size: float,
    colour: Colour = INK,
    width: float | None = None,
    shrink: bool = True,
) -> float:
    """Write one line centred between the margins (or in `width` around the page centre) at `y`
    (its top); the font shrinks to fit when `shrink`. Returns the line height used."""
    available = width if width is not None else doc.epw
    used = fit_size(doc, text, width=available, size=size) if shrink else size
    doc.set_font(FONT_FAMILY, size=used)
    doc.set_text_color(*colour)
    height = used * 0.3528 * 1.35  # points to millimetres, with some leading
    doc.set_xy((doc.w - available) / 2, y)
    doc.cell(available, height, text, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return height


def draw_stars(
    doc: FPDF,
    *,
    centre_x: float,
    top: float,
    filled: int,
    of: int = 5,
    size: float = 10.0,
    gap: float = 2.0,
    fill: Colour = GOLD,
    outline: Colour = RED,
) -> float:
    """Draw a row of `of` five-pointed stars centred on `centre_x`, the first `filled` of them
    filled, the others outlined (a level as people expect to see it: ★★★☆☆). Drawn as vector
    shapes, so they print crisply whatever the font. Returns the row's width."""
    filled = max(0, min(filled, of))
    width = of * size + (of - 1) * gap
    left = centre_x - width / 2
    r_out = size / 2
    r_in = r_out * math.sin(math.radians(18)) / math.sin(math.radians(126))  # a regular star's inner radius
    doc.set_line_width(0.35)
    doc.set_draw_color(*outline)
    doc.set_fill_color(*fill)
    for index in range(of):
        x = left + index * (size + gap) + r_out
        # fpdf2 puts the first point straight down; turned half a circle, one point faces up.
        doc.star(x, top + r_out, r_in, r_out, corners=5, rotate_degrees=180, style="DF" if index < filled else "D")
    return width


__all__ = [
    "DARK_RED",
    "FONT_FAMILY",
    "FONT_LICENCE_PATH",
    "FONT_PATH",
    "GOLD",
    "INK",
    "MUTED",
    "PAGE_SIZES",
    "RED",
    "WHITE",
    "Document",
    "centred",
    "close",
    "draw_stars",
    "finish",
    "fit_size",
    "new_document",
]
