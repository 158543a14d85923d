"""The advanced-organisation report on paper (A4 portrait): the condition, then the branches that may be
proposed and every 机关党委/党总支 with the numbers behind its answer. Chinese in the embedded font
(documents/pdf.py); fpdf2's tables flow onto as many pages as needed, repeating their heads."""

from __future__ import annotations

from fpdf.fonts import FontFace
from fpdf.table import Table

from fivestar.documents import pdf
from fivestar.i18n import _
from fivestar.overview.advanced import AdvancedReport, percent

HEAD = FontFace(family=pdf.FONT_FAMILY, emphasis="", fill_color=(242, 242, 242))  # the embedded font has no bold


def condition_text(report: AdvancedReport) -> str:
    criterion = report.criterion
    if criterion is None:
        return _("评定规则未设定先进机关党组织条件。")
    return _(
        "可推荐：%(branch)s党支部；或所属党支部中%(level)s及以上占比不低于 %(share)s 的机关党委、党总支。",
        branch=report.branch_level_label,
        level=report.org_level_label,
        share=percent(criterion.org_min_share),
    )


def _row(table: Table, texts: list[str]) -> None:
    cells = table.row()
    for text in texts:
        cells.cell(text)


def advanced_pdf(report: AdvancedReport) -> bytes:
    footer = f"{report.tenant_name} · {report.generated}"
    if report.rules_version is not None:
        footer += " · " + _("规则第 %(n)s 版", n=report.rules_version)
    doc = pdf.new_document(size="A4", title=_("先进机关党组织推荐参考"), footer=footer)
    doc.add_page()
    pdf.centred(doc, _("先进机关党组织推荐参考"), y=14, size=16)
    doc.set_font(pdf.FONT_FAMILY, size=10)
    doc.ln(3)
    doc.multi_cell(0, 6, condition_text(report), new_x="LMARGIN", new_y="NEXT")
    if report.level_year:
        doc.multi_cell(
            0,
            6,
            _("星级依据：%(year)s年度定星及其后调整的当前星级。", year=report.level_year),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    doc.ln(2)
    doc.set_font(pdf.FONT_FAMILY, size=12)
    doc.cell(0, 8, _("党支部（%(n)d 个）", n=len(report.branch_lines)), new_x="LMARGIN", new_y="NEXT")
    doc.set_font(pdf.FONT_FAMILY, size=9)
    if report.branch_lines:
        with doc.table(col_widths=(60, 60, 25, 30), headings_style=HEAD, line_height=6) as table:
            _row(table, [_("党支部"), _("上级组织"), _("当前星级"), _("是否符合")])
            for line in report.branch_lines:
                _row(table, [line.name, line.parent_name, line.level_label, _("符合") if line.met else _("不符合")])
    else:
        doc.cell(0, 6, _("没有符合条件的党支部。"), new_x="LMARGIN", new_y="NEXT")
    doc.ln(4)
    doc.set_font(pdf.FONT_FAMILY, size=12)
    doc.cell(0, 8, _("机关党委、党总支（%(n)d 个）", n=len(report.org_lines)), new_x="LMARGIN", new_y="NEXT")
    doc.set_font(pdf.FONT_FAMILY, size=9)
    if report.org_lines:
        with doc.table(col_widths=(50, 18, 18, 18, 22, 22, 18, 20), headings_style=HEAD, line_height=6) as table:
            _row(
                table,
                [
                    _("组织"),
                    _("计入支部"),
                    _("达到星级"),
                    _("未定级"),
                    _("占比"),
                    _("要求"),
                    _("至少需"),
                    _("是否符合"),
                ],
            )
            for org in report.org_lines:
                _row(
                    table,
                    [
                        org.name,
                        str(org.branches),
                        str(org.at_level),
                        str(org.unrated),
                        org.share_text,
                        org.threshold_text,
                        str(org.needed),
                        _("符合") if org.met else _("不符合"),
                    ],
                )
    else:
        doc.cell(0, 6, _("本单位没有机关党委或党总支。"), new_x="LMARGIN", new_y="NEXT")
    return pdf.finish(doc)


__all__ = ["advanced_pdf", "condition_text"]
