"""The workbook people download, fill in and upload.

Written with XlsxWriter in memory. The 说明 sheet explains the rules and shows example rows (so the
data sheets start empty and an unchanged template imports nothing); the 组织 and 党员 sheets carry
the exact headers the reader expects (`columns.py`, one source for both), drop-downs for the
fixed choices, text format on codes and phone numbers so Excel keeps leading zeros, and a date
format on dates. From the web page the template also lists the tenant's existing organisations,
whose codes members can be placed in.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import xlsxwriter

from fivestar.imports.columns import (
    DEFAULT_MAX_ROWS,
    EXISTING_ORGS_SHEET,
    INSTRUCTIONS_SHEET,
    MEMBER_COLUMNS,
    MEMBER_SHEET,
    ORG_COLUMNS,
    ORG_SHEET,
    Column,
)

INSTRUCTIONS = (
    "本模板用于导入党组织和党员，也可以用于以后的批量更新。",
    "在“组织”表填写机关党委、党总支、党支部和离退休支部，在“党员”表填写党员；可以只填其中一张表。",
    "每张表的第一行是列名，请不要修改或删除；列名为红色的是必填列。从第二行起每行填写一条记录。",
    "组织编码、党员编号在本单位内唯一。再次导入同一编码或编号时会更新已有记录，不会重复新建；"
    "内容没有变化的记录保持不变。",
    "修改党员的“所在支部编码”即把该党员调到另一个支部，调动会记入操作日志。",
    "文件中没有出现的组织和党员不会被删除，也不会被停用。",
    "整个文件要么全部导入，要么全部不导入：只要有一处错误，系统就列出全部错误（工作表、行号、列名、原因），"
    "不保存任何内容。改正后重新上传即可。",
    "“上级组织编码”留空或填 ROOT 表示直属工委；上级组织可以写在下级组织的后面。",
    "党员只能编入党支部或离退休支部；机关党委可下设党总支和党支部，党总支可下设党支部。",
    "日期请写成 2010-07-01 的形式。党员编号、组织编码和手机号码列已设为文本格式，以免丢失开头的 0。",
    "每张表最多 {max_rows:,} 行数据；更多请分批导入。",
)

ORG_EXAMPLES = (
    ("CZJ01", "财政局机关党委", "机关党委", "ROOT", 1),
    ("CZJ01-1", "财政局第一党支部", "党支部", "CZJ01", 1),
    ("CZJ01-R", "财政局离退休干部党支部", "离退休支部", "CZJ01", 9),
)
MEMBER_EXAMPLES = (
    ("D0001", "张三", "男", "13800000001", "2008-07-01", "正式", "CZJ01-1", "书记", "在册", ""),
    ("D0002", "李四", "女", "13800000002", "2023-06-30", "预备", "CZJ01-1", "党员", "在册", "预备期至 2024-06-30"),
    ("D0003", "王五", "男", "", "1978-10-01", "正式", "CZJ01-R", "党员", "在册", ""),
)


@dataclass(frozen=True, slots=True)
class OrgListing:
    """An existing organisation as listed on the reference sheet."""

    code: str
    name: str
    kind: str  # as shown to people (机关党委, 党支部…)
    parent_code: str


def build_template(existing: Sequence[OrgListing] = (), *, max_rows: int = DEFAULT_MAX_ROWS) -> bytes:
    """The template workbook as bytes. `existing` adds a read-only list of the tenant's organisations."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    styles = _styles(workbook)
    _instructions(workbook, styles, max_rows)
    _data_sheet(workbook, styles, ORG_SHEET, ORG_COLUMNS, max_rows)
    _data_sheet(workbook, styles, MEMBER_SHEET, MEMBER_COLUMNS, max_rows)
    if existing:
        _existing_sheet(workbook, styles, existing)
    workbook.close()
    return buffer.getvalue()


def _styles(workbook: Any) -> dict[str, Any]:
    base = {"font_name": "宋体", "font_size": 11, "valign": "vcenter"}
    header = {**base, "bold": True, "bg_color": "#F2F2F2", "border": 1, "align": "center"}
    return {
        "title": workbook.add_format({**base, "bold": True, "font_size": 16}),
        "heading": workbook.add_format({**base, "bold": True, "font_size": 12, "font_color": "#9E0B23"}),
        "text": workbook.add_format({**base, "text_wrap": True}),
        "cell_text": workbook.add_format({**base, "num_format": "@"}),
        "cell_date": workbook.add_format({**base, "num_format": "yyyy-mm-dd"}),
        "cell": workbook.add_format(base),
        "header": workbook.add_format(header),
        "header_required": workbook.add_format({**header, "font_color": "#C8102E"}),
        "example": workbook.add_format({**base, "font_color": "#5B6470", "italic": True, "border": 1}),
    }


def _instructions(workbook: Any, styles: dict[str, Any], max_rows: int) -> None:
    sheet = workbook.add_worksheet(INSTRUCTIONS_SHEET)
    sheet.set_column(0, 0, 12)
    sheet.set_column(1, 1, 16)
    sheet.set_column(2, 2, 10)
    sheet.set_column(3, 3, 48)
    sheet.set_column(4, 12, 14)
    sheet.write(0, 0, "党组织和党员导入模板", styles["title"])
    row = 2
    sheet.write(row, 0, "填写说明", styles["heading"])
    row += 1
    for number, line in enumerate((text.format(max_rows=max_rows) for text in INSTRUCTIONS), start=1):
        sheet.merge_range(row, 0, row, 8, f"{number}. {line}", styles["text"])
        sheet.set_row(row, 32)
        row += 1
    row += 1
    sheet.write(row, 0, "各列说明", styles["heading"])
    row += 1
    for col, title in enumerate(("工作表", "列名", "是否必填", "填写说明", "示例")):
        sheet.write(row, col, title, styles["header"])
    row += 1
    for sheet_name, columns in ((ORG_SHEET, ORG_COLUMNS), (MEMBER_SHEET, MEMBER_COLUMNS)):
        for column in columns:
            sheet.write(row, 0, sheet_name, styles["cell"])
            sheet.write(row, 1, column.header, styles["header_required" if column.needs_value else "cell"])
            need = "必填" if column.needs_value else ("必须有此列" if column.required else "选填")
            sheet.write(row, 2, need, styles["cell"])
            sheet.write(row, 3, column.hint, styles["text"])
            sheet.write_string(row, 4, column.example, styles["cell"])
            row += 1
    row += 1
    for sheet_name, columns, examples in (
        (ORG_SHEET, ORG_COLUMNS, ORG_EXAMPLES),
        (MEMBER_SHEET, MEMBER_COLUMNS, MEMBER_EXAMPLES),
    ):
        title = f"示例：“{sheet_name}”表（仅供参考，请在“{sheet_name}”表中填写，本页内容不会导入）"
        sheet.write(row, 0, title, styles["heading"])
        row += 1
        for col, column in enumerate(columns):
            sheet.write(row, col, column.header, styles["header"])
        row += 1
        for example in examples:
            for col, value in enumerate(example):
                sheet.write_string(row, col, str(value), styles["example"])
            row += 1
        row += 1
    sheet.activate()


def _data_sheet(workbook: Any, styles: dict[str, Any], name: str, columns: tuple[Column, ...], max_rows: int) -> None:
    sheet = workbook.add_worksheet(name)
    sheet.freeze_panes(1, 0)
    for col, column in enumerate(columns):
        style = styles["cell_text"] if column.text else styles["cell_date"] if column.date else styles["cell"]
        sheet.set_column(col, col, column.width, style)
        sheet.write_string(0, col, column.header, styles["header_required" if column.needs_value else "header"])
        sheet.write_comment(0, col, column.hint, {"x_scale": 2, "y_scale": 0.8})
        if column.choices:
            sheet.data_validation(
                1,
                col,
                max_rows,
                col,
                {
                    "validate": "list",
                    "source": list(column.choices),
                    "ignore_blank": True,
                    "error_title": column.header,
                    "error_message": "请从下拉列表中选择：" + "、".join(column.choices),
                },
            )
        elif column.date:
            sheet.data_validation(
                1,
                col,
                max_rows,
                col,
                {
                    "validate": "date",
                    "criteria": "between",
                    "minimum": dt.date(1921, 7, 1),
                    "maximum": dt.date(2100, 12, 31),
                    "ignore_blank": True,
                    "error_type": "warning",
                    "error_title": column.header,
                    "error_message": "请填写日期，如 2010-07-01",
                },
            )


def _existing_sheet(workbook: Any, styles: dict[str, Any], existing: Sequence[OrgListing]) -> None:
    sheet = workbook.add_worksheet(EXISTING_ORGS_SHEET)
    sheet.set_column(0, 0, 16, styles["cell_text"])
    sheet.set_column(1, 1, 30)
    sheet.set_column(2, 2, 14)
    sheet.set_column(3, 3, 16, styles["cell_text"])
    sheet.freeze_panes(1, 0)
    for col, title in enumerate(("组织编码", "组织名称", "组织类型", "上级组织编码")):
        sheet.write_string(0, col, title, styles["header"])
    for row, org in enumerate(existing, start=1):
        sheet.write_string(row, 0, org.code)
        sheet.write_string(row, 1, org.name)
        sheet.write_string(row, 2, org.kind)
        sheet.write_string(row, 3, org.parent_code)
    sheet.write_string(len(existing) + 2, 0, "本页列出已有组织，仅供查编码，导入时不读取本页。", styles["text"])
