"""The member's desk card (党员星级桌牌): A6 landscape, the level as stars, name, branch, period.

Members show their level at their workplace (domain.md, "Member rating"). The card is plain data
in, PDF bytes out — who may print it and when is decided by the view (member_rounds/member_views.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from fivestar.documents import pdf


@dataclass(frozen=True)
class DeskCard:
    tenant_name: str
    member_name: str
    branch_name: str
    period_label: str  # 2026年第一季度
    level: int  # 0..5
    title: str  # what the card proclaims: 五星党员, 四星党员, … (or the rules' name for level 0)
    heading: str  # the small line at the top, e.g. 党员星级评定
    provenance: str  # 评定期次 2026Q1 · 规则第 1 版 — where the level comes from


WIDTH, HEIGHT = 148.0, 105.0  # A6 landscape, millimetres


def render(card: DeskCard) -> bytes:
    """The card as a one-page PDF with the Chinese font embedded (a subset)."""
    doc = pdf.new_document(
        size="A6", landscape=True, title=f"{card.title} {card.member_name}", subject=card.heading,
        author=card.tenant_name, footer=None, margin=8.0,
    )
    try:
        doc.set_auto_page_break(auto=False)
        doc.add_page()
        # A red frame with a thin gold line inside: it reads as a certificate from across a desk.
        doc.set_draw_color(*pdf.RED)
        doc.set_line_width(1.6)
        doc.rect(4, 4, WIDTH - 8, HEIGHT - 8)
        doc.set_draw_color(*pdf.GOLD)
        doc.set_line_width(0.4)
        doc.rect(6.5, 6.5, WIDTH - 13, HEIGHT - 13)

        inner = WIDTH - 28
        pdf.centred(doc, card.tenant_name, y=10, size=10, colour=pdf.DARK_RED, width=inner)
        pdf.centred(doc, card.heading, y=15.5, size=8, colour=pdf.MUTED, width=inner)
        pdf.draw_stars(doc, centre_x=WIDTH / 2, top=23, filled=card.level, size=13, gap=3)
        pdf.centred(doc, card.title, y=39, size=24, colour=pdf.RED, width=inner)
        pdf.centred(doc, card.member_name, y=53, size=28, colour=pdf.INK, width=inner)
        pdf.centred(doc, card.branch_name, y=70, size=12, colour=pdf.INK, width=inner)
        pdf.centred(doc, card.period_label, y=78, size=10, colour=pdf.MUTED, width=inner)
        pdf.centred(doc, card.provenance, y=89, size=6.5, colour=pdf.MUTED, width=inner)
    except BaseException:
        pdf.close(doc)
        raise
    return pdf.finish(doc)
