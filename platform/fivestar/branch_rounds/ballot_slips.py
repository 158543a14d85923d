"""The ballot slips PDF (测评票): one slip per attendee with its group, its code and a QR code.

Made only at the moment the codes are issued — the database keeps nothing but their hashes — so
this is the one and only copy of the codes. The slips of all groups come in the order
`ballot_codes.issue_slips` shuffled them (secrets.SystemRandom), eight to an A4 page with cut marks; the
secretary cuts them apart, sorts them by the group printed on each and hands them out at random.

The QR code holds the voting address with the code in the URL *fragment* (`…/vote/#CODE`): browsers
never send a fragment to the server, so the code never reaches an access log; static/js/vote.js
moves it into the form. Without JavaScript (or a camera) the voter opens the printed address and
types the code. The QR code is drawn as vector rectangles (segno computes the modules).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import segno
from fpdf import FPDF
from fpdf.enums import Align

from fivestar.branch_rounds.ballot_codes import Slip, format_code
from fivestar.branch_rounds.ballot_meeting import group_label
from fivestar.documents import pdf
from fivestar.i18n import _

COLUMNS = 2
ROWS = 4
MARGIN = 10.0
QR_SIZE = 30.0
CUT_MARK = 4.0
CUT_GREY = (170, 170, 170)


@dataclass(frozen=True)
class SlipSheet:
    """What every slip repeats: who, which meeting, where to vote."""

    tenant_name: str
    branch_name: str
    year: int
    meeting_date: dt.date
    place: str
    vote_url: str  # the voting page, without a code


def draw_qr(doc: FPDF, data: str, *, x: float, y: float, size: float) -> None:
    """A QR code (error correction M) as filled rectangles, one per horizontal run of dark modules."""
    qr = segno.make(data, error="m", micro=False)
    width, _height = qr.symbol_size(scale=1, border=0)
    module = size / width
    doc.set_fill_color(0, 0, 0)
    for row_index, row in enumerate(qr.matrix_iter(scale=1, border=0)):
        start = None
        cells = list(row)
        for col_index, dark in enumerate([*cells, 0]):
            if dark and start is None:
                start = col_index
            elif not dark and start is not None:
                doc.rect(x + start * module, y + row_index * module, (col_index - start) * module, module, style="F")
                start = None


def _cut_marks(doc: FPDF, left: float, top: float, width: float, height: float) -> None:
    """Dashed cut lines around a slip, and solid ticks at its corners."""
    doc.set_draw_color(*CUT_GREY)
    doc.set_line_width(0.2)
    with doc.local_context():
        doc.set_dash_pattern(dash=1.5, gap=1.5)
        doc.rect(left, top, width, height)
    doc.set_dash_pattern()
    for cx, cy in ((left, top), (left + width, top), (left, top + height), (left + width, top + height)):
        doc.line(cx - CUT_MARK / 2, cy, cx + CUT_MARK / 2, cy)
        doc.line(cx, cy - CUT_MARK / 2, cx, cy + CUT_MARK / 2)


def _text(doc: FPDF, text: str, *, x: float, y: float, width: float, size: float,
          colour: pdf.Colour = pdf.INK, align: Align = Align.L) -> None:
    used = pdf.fit_size(doc, text, width=width, size=size)
    doc.set_font(pdf.FONT_FAMILY, size=used)
    doc.set_text_color(*colour)
    doc.set_xy(x, y)
    doc.cell(width, used * 0.3528 * 1.3, text, align=align)


def _slip(doc: FPDF, sheet: SlipSheet, slip: Slip, left: float, top: float, width: float, height: float) -> None:
    pad = 4.0
    inner = width - 2 * pad
    _cut_marks(doc, left, top, width, height)
    _text(doc, _("%(branch)s议星测评票", branch=sheet.branch_name), x=left + pad, y=top + pad, width=inner,
          size=12, colour=pdf.DARK_RED)
    _text(doc, _("%(year)d 年度党支部星级评定 · %(tenant)s", year=sheet.year, tenant=sheet.tenant_name),
          x=left + pad, y=top + pad + 6, width=inner, size=7.5, colour=pdf.MUTED)
    _text(doc, _("会议：%(day)s %(place)s", day=sheet.meeting_date.isoformat(), place=sheet.place),
          x=left + pad, y=top + pad + 10, width=inner, size=7.5, colour=pdf.MUTED)
    qr_top = top + pad + 16
    draw_qr(doc, f"{sheet.vote_url}#{slip.code}", x=left + pad, y=qr_top, size=QR_SIZE)
    right = left + pad + QR_SIZE + 4
    right_width = width - (right - left) - pad
    _text(doc, _("身份：%(group)s", group=group_label(slip.group)), x=right, y=qr_top, width=right_width, size=11,
          colour=pdf.RED)
    _text(doc, _("测评码"), x=right, y=qr_top + 8, width=right_width, size=8, colour=pdf.MUTED)
    _text(doc, format_code(slip.code), x=right, y=qr_top + 12, width=right_width, size=17)
    _text(doc, _("每个测评码只能使用一次"), x=right, y=qr_top + 22, width=right_width, size=7.5, colour=pdf.MUTED)
    _text(doc, _("扫码或打开网址，输入测评码："), x=left + pad, y=qr_top + QR_SIZE + 2, width=inner, size=8)
    _text(doc, sheet.vote_url, x=left + pad, y=qr_top + QR_SIZE + 6.5, width=inner, size=8)
    _text(doc, _("无记名测评：请勿在本票上写姓名"), x=left + pad, y=qr_top + QR_SIZE + 11, width=inner, size=7,
          colour=pdf.MUTED)


def slips_pdf(sheet: SlipSheet, slips: Sequence[Slip]) -> bytes:
    """The slips, in the order given (already shuffled), eight to an A4 page."""
    doc = pdf.new_document(
        size="A4",
        title=_("%(branch)s议星测评票", branch=sheet.branch_name),
        author=sheet.tenant_name,
        footer=_("%(tenant)s · %(year)d 年度 · %(branch)s · 共 %(n)d 张 · 沿虚线裁开", tenant=sheet.tenant_name,
                 year=sheet.year, branch=sheet.branch_name, n=len(slips)),
        margin=MARGIN,
    )
    doc.set_auto_page_break(auto=False)
    width = (doc.w - 2 * MARGIN) / COLUMNS
    height = (doc.h - 2 * MARGIN - 6) / ROWS
    per_page = COLUMNS * ROWS
    for index, slip in enumerate(slips):
        if index % per_page == 0:
            doc.add_page()
        position = index % per_page
        left = MARGIN + (position % COLUMNS) * width
        top = MARGIN + (position // COLUMNS) * height
        _slip(doc, sheet, slip, left, top, width, height)
    return pdf.finish(doc)


__all__ = ["SlipSheet", "draw_qr", "slips_pdf"]
