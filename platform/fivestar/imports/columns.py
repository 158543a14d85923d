"""The workbook's format: sheet names and column headers, shared by the template and the reader.

Headers are the file format, not interface text: they stay Chinese whatever the user's language,
so a workbook filled in by one office imports the same for everyone. The reader matches headers
after removing spaces, asterisks and a trailing bracketed hint, so "党员编号*" or "性别（男/女）"
still match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INSTRUCTIONS_SHEET = "说明"
ORG_SHEET = "组织"
MEMBER_SHEET = "党员"
EXISTING_ORGS_SHEET = "现有组织"

ROOT_CODE = "ROOT"
DEFAULT_MAX_ROWS = 50_000


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a data sheet.

    `required` means the header must be present; `needs_value` that every row must fill it.
    Optional columns that are absent leave the stored value alone on re-import.
    """

    key: str
    header: str
    required: bool
    needs_value: bool
    hint: str
    example: str
    width: int = 14
    choices: tuple[str, ...] = ()
    text: bool = False  # format the column as text so Excel keeps leading zeros
    date: bool = False


ORG_KINDS_IN_FILE = ("机关党委", "党总支", "党支部", "离退休支部")
GENDERS_IN_FILE = ("男", "女")
STANDINGS_IN_FILE = ("正式", "预备")
POSITIONS_IN_FILE = ("书记", "副书记", "支委", "党员")
STATUSES_IN_FILE = ("在册", "已转出")

ORG_COLUMNS: tuple[Column, ...] = (
    Column("code", "组织编码", True, True, "本单位内唯一，重新导入时按此更新；工委本身为 ROOT", "CZJ01", 14, text=True),
    Column("name", "组织名称", True, True, "全称，最长 120 字", "财政局机关党委", 28),
    Column("kind", "组织类型", True, True, "机关党委、党总支、党支部或离退休支部", "机关党委", 14, ORG_KINDS_IN_FILE),
    Column(
        "parent_code", "上级组织编码", False, False, "留空或填 ROOT 表示直属工委；上级可写在后面", "ROOT", 16, text=True
    ),
    Column("sort_order", "排序", False, False, "可选，整数，越小越靠前", "1", 8),
)

MEMBER_COLUMNS: tuple[Column, ...] = (
    Column(
        "member_no", "党员编号", True, True, "本单位内唯一，重新导入时按此更新，不会重复新建", "D0001", 14, text=True
    ),
    Column("name", "姓名", True, True, "最长 60 字", "张三", 12),
    Column("gender", "性别", True, True, "男或女", "男", 8, GENDERS_IN_FILE),
    Column("phone", "手机号码", True, False, "11 位手机号或带区号的固定电话，可留空", "13800000000", 15, text=True),
    Column("joined_on", "入党日期", True, False, "如 2010-07-01，可留空", "2010-07-01", 12, date=True),
    Column("standing", "党员类别", True, False, "正式或预备，留空视为正式", "正式", 10, STANDINGS_IN_FILE),
    Column("branch_code", "所在支部编码", True, True, "党支部或离退休支部的组织编码", "CZJ01-1", 14, text=True),
    Column("position", "职务", True, False, "书记、副书记、支委或党员，留空视为党员", "党员", 10, POSITIONS_IN_FILE),
    Column("status", "状态", False, False, "可选：在册或已转出，留空视为在册", "在册", 10, STATUSES_IN_FILE),
    Column("note", "备注", False, False, "可选，最长 500 字", "", 24),
)

SHEET_COLUMNS: dict[str, tuple[Column, ...]] = {ORG_SHEET: ORG_COLUMNS, MEMBER_SHEET: MEMBER_COLUMNS}
SHEET_ORDER = (ORG_SHEET, MEMBER_SHEET)

_HINT = re.compile(r"[（(][^）)]*[）)]$")


def normalise_header(value: object) -> str:
    """What a header cell says, without decoration: spaces, asterisks, a trailing (hint)."""
    if value is None:
        return ""
    text = re.sub(r"[\s*＊]", "", str(value))
    return _HINT.sub("", text)


def header_of(sheet: str, key: str) -> str:
    for column in SHEET_COLUMNS[sheet]:
        if column.key == key:
            return column.header
    raise KeyError(key)
