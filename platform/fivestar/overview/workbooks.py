"""The overview's Excel files: the advanced-organisation report and each dashboard chart's numbers.

Written with the member round's streaming workbook (XlsxWriter in constant-memory mode, cell text
never turned into formulas): rows are written and forgotten. Each file opens with a sheet saying
whose numbers these are and when they were taken.
"""

from __future__ import annotations

from typing import IO, Any

from fivestar.i18n import _
from fivestar.member_rounds.workbooks import streaming_workbook, workbook_formats
from fivestar.overview.advanced import AdvancedReport, percent
from fivestar.overview.dashboard import Chart


def _about(workbook: Any, formats: dict[str, Any], title: str, rows: list[tuple[str, str]]) -> None:
    sheet = workbook.add_worksheet(_("说明"))
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 1, 60)
    sheet.write_string(0, 0, title, formats["title"])
    for index, (name, value) in enumerate(rows, start=2):
        sheet.write_string(index, 0, name, formats["bold"])
        sheet.write_string(index, 1, value)


def _head(sheet: Any, formats: dict[str, Any], headings: list[str]) -> None:
    for col, heading in enumerate(headings):
        sheet.write_string(0, col, heading, formats["head"])


def write_advanced(out: IO[bytes] | str, report: AdvancedReport) -> None:
    """Two sheets after the cover: the branches that may be proposed, and every 机关党委/党总支 with its numbers."""
    with streaming_workbook(out) as workbook:
        formats = workbook_formats(workbook)
        share = workbook.add_format({"num_format": "0.00%"})
        criterion = report.criterion
        _about(
            workbook,
            formats,
            _("先进机关党组织推荐参考"),
            [
                (_("单位"), report.tenant_name),
                (_("规则版本"), _("第 %(n)s 版", n=report.rules_version) if report.rules_version is not None else ""),
                (_("星级依据"), _("%(year)s年度定星及其后调整", year=report.level_year) if report.level_year else ""),
                (
                    _("条件"),
                    _(
                        "%(branch)s党支部；或所属党支部%(level)s及以上占比不低于 %(share)s",
                        branch=report.branch_level_label,
                        level=report.org_level_label,
                        share=percent(criterion.org_min_share),
                    )
                    if criterion
                    else _("评定规则未设定先进机关党组织条件"),
                ),
                (_("生成时间"), report.generated),
            ],
        )
        branches = workbook.add_worksheet(_("党支部"))
        branches.set_column(0, 1, 28)
        branches.set_column(2, 4, 12)
        _head(branches, formats, [_("党支部"), _("上级组织"), _("当前星级"), _("条件"), _("是否符合")])
        for row, line in enumerate(report.branch_lines, start=1):
            branches.write_string(row, 0, line.name)
            branches.write_string(row, 1, line.parent_name)
            branches.write_string(row, 2, line.level_label)
            branches.write_string(row, 3, _("%(level)s及以上", level=line.threshold_label))
            branches.write_string(row, 4, _("符合") if line.met else _("不符合"))
        orgs = workbook.add_worksheet(_("机关党委、党总支"))
        orgs.set_column(0, 1, 28)
        orgs.set_column(2, 9, 12)
        _head(
            orgs,
            formats,
            [
                _("组织"),
                _("类别"),
                _("计入支部数"),
                _("未定级支部数"),
                _("达到星级支部数"),
                _("占比"),
                _("要求占比"),
                _("至少需要"),
                _("是否符合"),
            ],
        )
        for row, org in enumerate(report.org_lines, start=1):
            orgs.write_string(row, 0, org.name)
            orgs.write_string(row, 1, org.kind_label)
            orgs.write_number(row, 2, org.branches)
            orgs.write_number(row, 3, org.unrated)
            orgs.write_number(row, 4, org.at_level)
            orgs.write_number(row, 5, float(org.share), share)
            orgs.write_number(row, 6, float(org.threshold), share)
            orgs.write_number(row, 7, org.needed)
            orgs.write_string(row, 8, _("符合") if org.met else _("不符合"))


def write_chart(out: IO[bytes] | str, tenant_name: str, generated: str, chart: Chart) -> None:
    """A chart's numbers: one row per bar, one column per series, and the row total."""
    with streaming_workbook(out) as workbook:
        formats = workbook_formats(workbook)
        _about(
            workbook,
            formats,
            chart.title,
            [
                (_("单位"), tenant_name),
                (_("说明"), chart.note),
                (_("生成时间"), generated),
            ],
        )
        sheet = workbook.add_worksheet(_("数据"))
        sheet.set_column(0, 0, 30)
        sheet.set_column(1, len(chart.series) + 1, 10)
        _head(sheet, formats, [chart.row_heading, *(s.label for s in chart.series), _("合计")])
        for row, line in enumerate(chart.rows, start=1):
            sheet.write_string(row, 0, line.label)
            for col, value in enumerate(line.values, start=1):
                sheet.write_number(row, col, value)
            sheet.write_number(row, len(line.values) + 1, line.total)


__all__ = ["write_advanced", "write_chart"]
