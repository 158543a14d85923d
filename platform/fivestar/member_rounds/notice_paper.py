"""A branch's public notice (公示) on paper: the same list as the public page, as an A4 PDF to post
on the branch's notice board."""

from __future__ import annotations

from fpdf.fonts import FontFace

from fivestar.documents import pdf
from fivestar.i18n import _
from fivestar.member_rounds.notice import NoticeView


def notice_pdf(view: NoticeView, tenant_name: str, rules_version: int | None, link: str | None = None) -> bytes:
    """The branch's public notice on A4, with the same content as the public page: who publishes
    it, the period, the members and their levels, the notice period and how to object."""
    title = _("%(branch)s党员星级评定结果公示", branch=view.branch_name)
    provenance = " · ".join(
        part
        for part in (
            tenant_name,
            view.round.period_key,
            _("规则第 %(n)s 版", n=rules_version) if rules_version is not None else "",
        )
        if part
    )
    doc = pdf.new_document(size="A4", title=title, subject=view.period, author=tenant_name, footer=provenance)
    doc.add_page()
    y = 16.0
    y += pdf.centred(doc, tenant_name, y=y, size=11, colour=pdf.DARK_RED)
    y += 2
    y += pdf.centred(doc, title, y=y, size=17, colour=pdf.RED)
    y += 1
    y += pdf.centred(doc, view.period, y=y, size=11, colour=pdf.MUTED)
    doc.set_y(y + 4)
    doc.set_font(pdf.FONT_FAMILY, size=11)
    doc.set_text_color(*pdf.INK)
    when = _(
        "公示时间：%(start)s 至 %(end)s（%(length)s）",
        start=view.starts.strftime("%Y-%m-%d %H:%M"),
        end=view.ends.strftime("%Y-%m-%d %H:%M"),
        length=view.length,
    )
    doc.multi_cell(0, 6, when, new_x="LMARGIN", new_y="NEXT")
    doc.ln(3)
    plain = FontFace(family=pdf.FONT_FAMILY, emphasis="", fill_color=(242, 242, 242))
    with doc.table(
        col_widths=(14, 36, 70, 36),
        text_align=("CENTER", "CENTER", "LEFT", "CENTER"),
        line_height=7.5,
        headings_style=plain,
    ) as table:
        heading = table.row()
        for text in (_("序号"), _("党员编号"), _("姓名"), _("星级")):
            heading.cell(text)
        for index, row in enumerate(view.rows, start=1):
            cells = table.row()
            cells.cell(str(index))
            cells.cell(row.member_no)
            cells.cell(row.name)
            cells.cell(row.level_text)
    doc.ln(5)
    doc.set_font(pdf.FONT_FAMILY, size=10)
    doc.multi_cell(
        0,
        5.5,
        _("如对上述评定结果有异议，请在公示期内通过公示页面提出（可不署名）。"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    if link:
        doc.set_text_color(*pdf.MUTED)
        doc.set_font(pdf.FONT_FAMILY, size=8)
        doc.multi_cell(0, 4.5, link, new_x="LMARGIN", new_y="NEXT")
    return pdf.finish(doc)


__all__ = ["notice_pdf"]
