"""亮星 on paper: the bulletin-board poster of a year's branch ratings (A3 portrait) and the plaque of
one branch (A4 landscape).

Plain data in, PDF bytes out, Chinese in the embedded font (documents/pdf.py). Who may print what and
when is decided by the view (branch_rounds/publication_views.py); the texts arrive translated.

The poster lists every branch under its organisation with its level (drawn stars and the label) and
a medal per indicator. It flows onto as many A3 pages as the branches need, repeating the column
heads (and the organisation, marked 续) at the top of each page, so a district with 300 branches
prints as readable as one with 3; names too long for their column shrink instead of wrapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from fpdf import FPDF
from fpdf.enums import Align

from fivestar.documents import pdf

MEDAL_COLOURS: dict[str, pdf.Colour] = {
    "gold": (212, 160, 23),
    "silver": (150, 155, 165),
    "bronze": (176, 108, 48),
}
GROUP_FILL: pdf.Colour = (253, 232, 235)
HEAD_FILL: pdf.Colour = (242, 242, 242)
STRIPE_FILL: pdf.Colour = (250, 250, 250)
LINE: pdf.Colour = (210, 210, 210)


@dataclass(frozen=True)
class PosterMedal:
    medal: str | None  # "gold" / "silver" / "bronze", or None: no medal
    label: str  # 金星 … or the "none" text


@dataclass(frozen=True)
class PosterBranch:
    name: str
    level: int  # 0..5
    level_label: str  # 五星 … 无星
    medals: tuple[PosterMedal, ...]  # one per indicator, in the poster's column order (may be empty)


@dataclass(frozen=True)
class PosterGroup:
    name: str  # the 机关党委/党总支, or the committee for its direct branches
    note: str  # e.g. "5 个党支部"
    branches: tuple[PosterBranch, ...]


@dataclass(frozen=True)
class Poster:
    tenant_name: str
    title: str  # 2025年度党支部星级评定结果
    subtitle: str  # 经……工委会议研究决定，现予公布
    summary: str  # 共 n 个党支部：五星 a 个 · 四星 b 个 …
    indicators: tuple[str, ...]  # medal column heads (the rules' indicator labels)
    groups: tuple[PosterGroup, ...]
    footer: str  # tenant · year · rule-set version · generated on …
    headings: tuple[str, str, str]  # 序号, 党支部, 星级
    continued: str  # 续
    none_text: str = "—"


WIDTH, HEIGHT = pdf.PAGE_SIZES["A3"]
MARGIN = 15.0
BOTTOM = HEIGHT - MARGIN - 8.0  # room for the footer line
HEAD_ROW = 12.0
GROUP_ROW = 10.0
BRANCH_ROW = 11.0


def _columns(indicators: int) -> tuple[float, float, float, float]:
    """(number, name, level, each medal) widths filling the A3 width between the margins."""
    usable = WIDTH - 2 * MARGIN
    number, level = 12.0, 64.0
    if indicators:
        medal = min(26.0, max(14.0, (usable - number - level - 70.0) / indicators))
        name = usable - number - level - medal * indicators
    else:
        medal, name = 0.0, usable - number - level
    return number, name, level, medal


def _text(
    doc: FPDF,
    text: str,
    *,
    x: float,
    y: float,
    w: float,
    h: float,
    size: float,
    colour: pdf.Colour,
    align: Align = Align.L,
    minimum: float = 6.0,
) -> None:
    pdf.fit_size(doc, text, width=max(w - 2.0, 1.0), size=size, minimum=minimum)
    doc.set_text_color(*colour)
    doc.set_xy(x + 1.0, y)
    doc.cell(max(w - 2.0, 1.0), h, text, align=align)


class _PosterWriter:
    def __init__(self, doc: FPDF, poster: Poster) -> None:
        self.doc = doc
        self.poster = poster
        self.widths = _columns(len(poster.indicators))
        self.y = MARGIN
        self.stripe = False

    def title_block(self) -> None:
        doc, poster = self.doc, self.poster
        doc.set_fill_color(*pdf.RED)
        doc.rect(0, 0, WIDTH, 6, style="F")
        pdf.centred(doc, poster.tenant_name, y=16, size=20, colour=pdf.DARK_RED)
        pdf.centred(doc, poster.title, y=28, size=34, colour=pdf.RED)
        pdf.draw_stars(doc, centre_x=WIDTH / 2, top=48, filled=5, size=9, gap=3)
        y = 62.0
        if poster.subtitle:
            pdf.centred(doc, poster.subtitle, y=y, size=13, colour=pdf.INK)
            y += 8
        if poster.summary:
            pdf.centred(doc, poster.summary, y=y, size=12, colour=pdf.MUTED)
            y += 8
        doc.set_draw_color(*pdf.RED)
        doc.set_line_width(0.6)
        doc.line(MARGIN, y + 2, WIDTH - MARGIN, y + 2)
        self.y = y + 6

    def column_heads(self) -> None:
        doc, poster = self.doc, self.poster
        number, name, level, medal = self.widths
        doc.set_fill_color(*HEAD_FILL)
        doc.rect(MARGIN, self.y, WIDTH - 2 * MARGIN, HEAD_ROW, style="F")
        x = MARGIN
        heads = [(poster.headings[0], number, Align.C), (poster.headings[1], name, Align.L)]
        heads += [(poster.headings[2], level, Align.L)]
        heads += [(label, medal, Align.C) for label in poster.indicators]
        for text, width, align in heads:
            _text(doc, text, x=x, y=self.y, w=width, h=HEAD_ROW, size=11, colour=pdf.INK, align=align, minimum=6)
            x += width
        self.y += HEAD_ROW

    def new_page(self) -> None:
        self.doc.add_page()
        self.y = MARGIN
        self.column_heads()

    def room_for(self, height: float) -> bool:
        return self.y + height <= BOTTOM

    def group_row(self, group: PosterGroup, *, continued: bool) -> None:
        doc = self.doc
        doc.set_fill_color(*GROUP_FILL)
        doc.rect(MARGIN, self.y, WIDTH - 2 * MARGIN, GROUP_ROW, style="F")
        doc.set_fill_color(*pdf.RED)
        doc.rect(MARGIN, self.y, 2.0, GROUP_ROW, style="F")
        title = group.name + (f"（{self.poster.continued}）" if continued else "")
        usable = WIDTH - 2 * MARGIN - 6
        note_width = 50.0 if group.note else 0.0
        _text(doc, title, x=MARGIN + 4, y=self.y, w=usable - note_width, h=GROUP_ROW, size=13, colour=pdf.DARK_RED)
        if group.note:
            _text(
                doc,
                group.note,
                x=WIDTH - MARGIN - note_width,
                y=self.y,
                w=note_width,
                h=GROUP_ROW,
                size=10,
                colour=pdf.MUTED,
                align=Align.R,
            )
        self.y += GROUP_ROW
        self.stripe = False

    def branch_row(self, number_text: str, branch: PosterBranch) -> None:
        doc, poster = self.doc, self.poster
        number, name, level, medal = self.widths
        if self.stripe:
            doc.set_fill_color(*STRIPE_FILL)
            doc.rect(MARGIN, self.y, WIDTH - 2 * MARGIN, BRANCH_ROW, style="F")
        self.stripe = not self.stripe
        x = MARGIN
        _text(doc, number_text, x=x, y=self.y, w=number, h=BRANCH_ROW, size=10, colour=pdf.MUTED, align=Align.C)
        x += number
        _text(doc, branch.name, x=x, y=self.y, w=name, h=BRANCH_ROW, size=13, colour=pdf.INK, minimum=7)
        x += name
        star = 5.2
        stars_width = pdf.draw_stars(
            doc,
            centre_x=x + 2 + (5 * star + 4 * 1.2) / 2,
            top=self.y + (BRANCH_ROW - star) / 2,
            filled=branch.level,
            size=star,
            gap=1.2,
        )
        label_colour = pdf.RED if branch.level >= 4 else pdf.INK
        _text(
            doc,
            branch.level_label,
            x=x + 3 + stars_width,
            y=self.y,
            w=level - stars_width - 3,
            h=BRANCH_ROW,
            size=12,
            colour=label_colour,
        )
        x += level
        for index in range(len(poster.indicators)):
            shown = branch.medals[index] if index < len(branch.medals) else None
            if shown is None or shown.medal is None:
                _text(
                    doc,
                    shown.label if shown is not None else poster.none_text,
                    x=x,
                    y=self.y,
                    w=medal,
                    h=BRANCH_ROW,
                    size=10,
                    colour=pdf.MUTED,
                    align=Align.C,
                )
            else:
                colour = MEDAL_COLOURS.get(shown.medal, pdf.GOLD)
                size = 3.6
                label_width = medal - size - 3
                pdf.fit_size(doc, shown.label, width=label_width - 1, size=10.5, minimum=6)
                used = doc.get_string_width(shown.label)
                left = x + (medal - (size + 1.2 + used)) / 2
                pdf.draw_stars(
                    doc,
                    centre_x=left + size / 2,
                    top=self.y + (BRANCH_ROW - size) / 2,
                    filled=1,
                    of=1,
                    size=size,
                    gap=0,
                    fill=colour,
                    outline=colour,
                )
                doc.set_text_color(*colour)
                doc.set_xy(left + size + 1.2, self.y)
                doc.cell(used + 0.5, BRANCH_ROW, shown.label)
            x += medal
        doc.set_draw_color(*LINE)
        doc.set_line_width(0.2)
        doc.line(MARGIN, self.y + BRANCH_ROW, WIDTH - MARGIN, self.y + BRANCH_ROW)
        self.y += BRANCH_ROW


def render_poster(poster: Poster) -> bytes:
    """The poster as A3 portrait pages with the Chinese font embedded (a subset)."""
    doc = pdf.new_document(
        size="A3",
        title=poster.title,
        subject=poster.subtitle,
        author=poster.tenant_name,
        footer=poster.footer,
        margin=MARGIN,
    )
    try:
        doc.set_auto_page_break(auto=False)
        doc.add_page()
        writer = _PosterWriter(doc, poster)
        writer.title_block()
        writer.column_heads()
        number = 0
        for group in poster.groups:
            # an organisation's heading never sits alone at the foot of a page
            if not writer.room_for(GROUP_ROW + BRANCH_ROW):
                writer.new_page()
            writer.group_row(group, continued=False)
            for branch in group.branches:
                if not writer.room_for(BRANCH_ROW):
                    writer.new_page()
                    writer.group_row(group, continued=True)
                number += 1
                writer.branch_row(str(number), branch)
    except BaseException:
        pdf.close(doc)
        raise
    return pdf.finish(doc)


# --- the plaque -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plaque:
    tenant_name: str
    branch_name: str
    level: int  # 1..5
    title: str  # 五星党支部
    year_label: str  # 2025年度
    heading: str  # 党支部星级评定
    issuer_line: str  # the committee and the date it decided
    provenance: str  # 评定年度 2025 · 规则第 1 版 · 编号 17


PLAQUE_WIDTH, PLAQUE_HEIGHT = pdf.PAGE_SIZES["A4"][1], pdf.PAGE_SIZES["A4"][0]  # A4 landscape


def render_plaque(plaque: Plaque) -> bytes:
    """One branch's plaque: A4 landscape, a red and gold frame, the stars, the title and the branch."""
    doc = pdf.new_document(
        size="A4",
        landscape=True,
        title=f"{plaque.title} {plaque.branch_name}",
        subject=plaque.heading,
        author=plaque.tenant_name,
        footer=None,
        margin=10.0,
    )
    try:
        doc.set_auto_page_break(auto=False)
        doc.add_page()
        doc.set_draw_color(*pdf.RED)
        doc.set_line_width(3.0)
        doc.rect(8, 8, PLAQUE_WIDTH - 16, PLAQUE_HEIGHT - 16)
        doc.set_draw_color(*pdf.GOLD)
        doc.set_line_width(0.8)
        doc.rect(13, 13, PLAQUE_WIDTH - 26, PLAQUE_HEIGHT - 26)

        inner = PLAQUE_WIDTH - 60
        pdf.centred(doc, plaque.tenant_name, y=22, size=18, colour=pdf.DARK_RED, width=inner)
        pdf.centred(doc, plaque.heading, y=32, size=12, colour=pdf.MUTED, width=inner)
        pdf.draw_stars(doc, centre_x=PLAQUE_WIDTH / 2, top=44, filled=plaque.level, size=20, gap=5)
        pdf.centred(doc, plaque.title, y=72, size=58, colour=pdf.RED, width=inner)
        pdf.centred(doc, plaque.branch_name, y=112, size=32, colour=pdf.INK, width=inner)
        pdf.centred(doc, plaque.year_label, y=136, size=18, colour=pdf.INK, width=inner)
        doc.set_text_color(*pdf.DARK_RED)
        pdf.fit_size(doc, plaque.issuer_line, width=inner / 2, size=14)
        doc.set_xy(PLAQUE_WIDTH / 2, 160)
        doc.cell(inner / 2, 8, plaque.issuer_line, align=Align.R)
        pdf.centred(doc, plaque.provenance, y=184, size=7, colour=pdf.MUTED, width=inner)
    except BaseException:
        pdf.close(doc)
        raise
    return pdf.finish(doc)


__all__ = [
    "Plaque",
    "Poster",
    "PosterBranch",
    "PosterGroup",
    "PosterMedal",
    "render_plaque",
    "render_poster",
]
