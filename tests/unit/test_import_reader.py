"""The workbook reader and the row checks, without a database."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from typing import Any

import openpyxl
import pytest

from fivestar.enums import Gender, MemberStatus, OrgKind, Position, Standing
from fivestar.imports.columns import MEMBER_COLUMNS, MEMBER_SHEET, ORG_COLUMNS, ORG_SHEET, normalise_header
from fivestar.imports.reader import read_workbook, sniff
from fivestar.imports.report import IssueCollector
from fivestar.imports.template import OrgListing, build_template
from fivestar.imports.validate import ExistingMember, ExistingOrg, build_plan

ORG_HEADERS = [column.header for column in ORG_COLUMNS]
MEMBER_HEADERS = [column.header for column in MEMBER_COLUMNS]


def workbook(
    orgs: list[list[Any]] | None = None,
    members: list[list[Any]] | None = None,
    *,
    org_headers: list[str] | None = None,
    member_headers: list[str] | None = None,
    extra: dict[str, list[list[Any]]] | None = None,
) -> bytes:
    """An .xlsx with a header row and the given rows (None skips the sheet)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    if orgs is not None:
        sheet = book.create_sheet(ORG_SHEET)
        sheet.append(org_headers or ORG_HEADERS)
        for row in orgs:
            sheet.append(row)
    if members is not None:
        sheet = book.create_sheet(MEMBER_SHEET)
        sheet.append(member_headers or MEMBER_HEADERS)
        for row in members:
            sheet.append(row)
    for name, rows in (extra or {}).items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    if not book.sheetnames:
        book.create_sheet("Sheet1")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def member(no: str = "D1", branch: str = "B1", **overrides: Any) -> list[Any]:
    values = {
        "member_no": no,
        "name": "张三",
        "gender": "男",
        "phone": "13800000000",
        "joined_on": "2010-07-01",
        "standing": "正式",
        "branch_code": branch,
        "position": "党员",
        "status": "在册",
        "note": None,
    }
    values.update(overrides)
    return [values[column.key] for column in MEMBER_COLUMNS]


ROOT = ExistingOrg(1, "ROOT", "工委", OrgKind.COMMITTEE, None, 0, True, "/1/")


def issues_of(
    data: bytes, existing: list[ExistingOrg] | None = None, members: list[ExistingMember] | None = None, **kwargs: Any
) -> list[tuple[str, int | None, str | None, str]]:
    raw = read_workbook(data, **kwargs)
    issues = raw.issues
    if not issues:
        build_plan(
            orgs=raw.sheet(ORG_SHEET),
            members=raw.sheet(MEMBER_SHEET),
            existing_orgs=existing or [ROOT],
            existing_members=members or [],
            issues=issues,
        )
    return [(i.sheet, i.row, i.column, i.message) for i in issues.sorted()]


def places(found: list[tuple[str, int | None, str | None, str]]) -> list[tuple[str, int | None, str | None]]:
    return [(sheet, row, column) for sheet, row, column, _message in found]


# --- the template --------------------------------------------------------------------------------


def test_template_headers_are_what_the_reader_expects() -> None:
    data = build_template([OrgListing("P1", "财政局机关党委", "机关党委", "")])
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["说明", ORG_SHEET, MEMBER_SHEET, "现有组织"]
    assert [cell.value for cell in book[ORG_SHEET][1]] == ORG_HEADERS
    assert [cell.value for cell in book[MEMBER_SHEET][1]] == MEMBER_HEADERS
    assert book["现有组织"]["A2"].value == "P1"
    instructions = " ".join(str(cell.value) for row in book["说明"].iter_rows() for cell in row if cell.value)
    assert "不会被删除" in instructions and "示例" in instructions
    kinds = [dv for dv in book[ORG_SHEET].data_validations.dataValidation if dv.type == "list"]
    assert kinds and "党支部" in kinds[0].formula1
    # The examples sit on the instructions sheet, so an untouched template imports nothing.
    raw = read_workbook(data)
    assert raw.sheet(ORG_SHEET) is not None and raw.sheet(ORG_SHEET).rows == []
    assert [(i.sheet, i.message) for i in raw.issues.kept] == [
        ("", "工作簿中没有可导入的数据：请在“组织”或“党员”工作表中填写后再导入。")
    ]


def test_filled_template_reads_back() -> None:
    book = openpyxl.load_workbook(io.BytesIO(build_template()))
    book[ORG_SHEET].append(["B1", "第一党支部", "党支部", "ROOT", 1])
    book[MEMBER_SHEET].append(member())
    buffer = io.BytesIO()
    book.save(buffer)
    raw = read_workbook(buffer.getvalue())
    assert not raw.issues
    assert raw.sheets[ORG_SHEET].rows == [(2, ("B1", "第一党支部", "党支部", "ROOT", 1))]
    assert raw.sheets[MEMBER_SHEET].rows[0][0] == 2


# --- the file itself -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "空的"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, ".xls"),
        ("党员编号,姓名\nD1,张三\n".encode(), "不是 Excel 工作簿"),
        (b"%PDF-1.7 not a workbook", "不是 Excel 工作簿"),
        (b"PK\x03\x04 truncated zip", "损坏"),
    ],
)
def test_not_an_xlsx_is_refused_by_content(data: bytes, fragment: str) -> None:
    raw = read_workbook(data)
    assert raw.file_problem
    assert [(i.sheet, i.row, i.column) for i in raw.issues.kept] == [("", None, None)]
    assert fragment in raw.issues.kept[0].message


def test_zip_that_is_not_a_workbook() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<x/>")
    assert ".ods" in (sniff(buffer.getvalue()) or "")
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert "不是 Excel" in (sniff(other.getvalue()) or "")


def test_corrupt_workbook_inside_a_valid_zip_is_a_clear_problem() -> None:
    good = workbook(members=[member()])
    broken = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                content = content[: len(content) // 2]  # cut the sheet XML in half
            target.writestr(item, content)
    raw = read_workbook(broken.getvalue())
    assert raw.file_problem
    assert "损坏" in raw.issues.kept[0].message


def test_workbook_without_our_sheets() -> None:
    found = issues_of(workbook(extra={"Sheet1": [["a", "b"]]}))
    assert found == [("", None, None, "工作簿中没有“组织”或“党员”工作表，请使用导入模板。")]


# --- headers and rows ----------------------------------------------------------------------------


def test_missing_required_column_names_the_header() -> None:
    headers = [h for h in MEMBER_HEADERS if h != "性别"]
    row = [v for column, v in zip(MEMBER_COLUMNS, member(), strict=True) if column.header != "性别"]
    found = issues_of(workbook(members=[row], member_headers=headers))
    assert found == [(MEMBER_SHEET, 1, "性别", "缺少必填列“性别”。")]


def test_optional_columns_may_be_absent_and_headers_may_be_decorated() -> None:
    headers = ["党员编号*", "姓名 ", "性别（男/女）", "手机号码", "入党日期", "党员类别", "所在支部编码", "职务"]
    assert normalise_header("性别（男/女）") == "性别"
    raw = read_workbook(workbook(members=[member()[:8]], member_headers=headers))
    assert not raw.issues
    sheet = raw.sheets[MEMBER_SHEET]
    assert not sheet.has("status") and not sheet.has("note") and sheet.has("gender")


def test_duplicate_header_is_reported() -> None:
    found = issues_of(workbook(members=[member()], member_headers=[*MEMBER_HEADERS, "姓名"]))
    assert found == [(MEMBER_SHEET, 1, "姓名", "列“姓名”出现了不止一次。")]


def test_row_numbers_are_excel_row_numbers_across_blank_rows() -> None:
    rows = [member("D1"), [None] * 10, member("D2", gender="X"), [None] * 10, member("D3")]
    found = issues_of(workbook(orgs=[["B1", "一支部", "党支部", "", None]], members=rows))
    assert places(found) == [(MEMBER_SHEET, 4, "性别")]


def test_too_many_rows() -> None:
    found = issues_of(workbook(members=[member(f"D{i}") for i in range(5)]), max_rows=3)
    assert found == [(MEMBER_SHEET, 5, None, "“党员”工作表超过 3 行数据的上限，请分批导入。")]


# --- row checks ----------------------------------------------------------------------------------


def test_every_bad_cell_is_reported_with_its_place() -> None:
    orgs = [["B1", "一支部", "党支部", None, None]]
    members = [
        member("D1", gender="?", phone="12345", joined_on="2010-13-45"),
        member("D 2", name="", standing="候补", position="主任", status="离开"),
        member("D3", branch=None, note="x" * 501),
        member("D1"),
    ]
    found = issues_of(workbook(orgs=orgs, members=members))
    assert places(found) == [
        (MEMBER_SHEET, 2, "性别"),
        (MEMBER_SHEET, 2, "手机号码"),
        (MEMBER_SHEET, 2, "入党日期"),
        (MEMBER_SHEET, 3, "党员编号"),
        (MEMBER_SHEET, 3, "姓名"),
        (MEMBER_SHEET, 3, "党员类别"),
        (MEMBER_SHEET, 3, "职务"),
        (MEMBER_SHEET, 3, "状态"),
        (MEMBER_SHEET, 4, "所在支部编码"),
        (MEMBER_SHEET, 4, "备注"),
        (MEMBER_SHEET, 5, "党员编号"),
    ]
    assert found[-1][3] == "党员编号“D1”与第 2 行重复"


def test_unknown_branch_and_member_outside_a_branch() -> None:
    orgs = [["P1", "机关党委", "机关党委", "ROOT", None], ["B1", "一支部", "党支部", "P1", None]]
    members = [member("D1", branch="NOPE"), member("D2", branch="P1"), member("D3", branch="ROOT"), member("D4")]
    found = issues_of(workbook(orgs=orgs, members=members))
    assert places(found) == [
        (MEMBER_SHEET, 2, "所在支部编码"),
        (MEMBER_SHEET, 3, "所在支部编码"),
        (MEMBER_SHEET, 4, "所在支部编码"),
    ]
    assert "不存在" in found[0][3]
    assert "党员只能编入党支部或离退休支部" in found[1][3]


def test_org_rules_parent_order_cycles_and_placement() -> None:
    orgs = [
        ["B1", "一支部", "党支部", "G1", None],  # parent written after the child: fine
        ["G1", "总支", "党总支", "P1", 2],
        ["P1", "机关党委", "机关党委", "", 1],
        ["X1", "甲", "党总支", "X2", None],  # X1 -> X2 -> X1
        ["X2", "乙", "党总支", "X1", None],
        ["S1", "自己", "党支部", "S1", None],
        ["B2", "二支部", "党支部", "B1", None],  # a branch under a branch
        ["ROOT", "工委", "机关党委", None, None],
        ["G1", "重复", "党总支", "P1", None],
        ["Q1", "缺上级", "党支部", "NOPE", None],
        ["W1", "工委2", "工委", None, None],
        ["N1", "排序错", "党支部", None, "abc"],
    ]
    found = issues_of(workbook(orgs=orgs))
    assert places(found) == [
        (ORG_SHEET, 5, "上级组织编码"),
        (ORG_SHEET, 6, "上级组织编码"),
        (ORG_SHEET, 7, "上级组织编码"),
        (ORG_SHEET, 8, "上级组织编码"),
        (ORG_SHEET, 9, "组织编码"),
        (ORG_SHEET, 10, "组织编码"),
        (ORG_SHEET, 11, "上级组织编码"),
        (ORG_SHEET, 12, "组织类型"),
        (ORG_SHEET, 13, "排序"),
    ]
    messages = dict(((row, column), message) for _sheet, row, column, message in found)
    assert "循环" in messages[(5, "上级组织编码")]
    assert messages[(7, "上级组织编码")] == "上级组织不能是它自己"
    assert messages[(8, "上级组织编码")] == "党支部不能设在党支部之下"
    assert "与第 3 行重复" in messages[(10, "组织编码")]


def test_kind_change_must_keep_existing_children_and_members_valid() -> None:
    party = ExistingOrg(2, "P1", "机关党委", OrgKind.PARTY_COMMITTEE, 1, 0, True, "/1/2/")
    branch = ExistingOrg(3, "B1", "一支部", OrgKind.BRANCH, 2, 0, True, "/1/2/3/")
    someone = ExistingMember(
        10, "D9", 3, "赵六", Gender.MALE, None, None, Standing.FULL, Position.MEMBER, MemberStatus.ACTIVE, None
    )
    orgs = [["P1", "机关党委", "党支部", "ROOT", None], ["B1", "一支部", "党总支", "P1", None]]
    found = issues_of(workbook(orgs=orgs), existing=[ROOT, party, branch], members=[someone])
    # P1 becomes a branch: its child B1 is in the file and checked on its own row (a general
    # branch under a branch); B1 becomes a general branch while member D9 stays in it.
    assert places(found) == [(ORG_SHEET, 3, "组织类型"), (ORG_SHEET, 3, "上级组织编码")]
    assert "1 名党员" in found[0][3]
    # Moving D9 away in the same file makes B1's change acceptable (only placement stays wrong).
    found = issues_of(
        workbook(
            orgs=[["B1", "一支部", "党总支", "P1", None], ["B2", "二支部", "党支部", "B1", None]],
            members=[member("D9", branch="B2")],
        ),
        existing=[ROOT, party, branch],
        members=[someone],
    )
    assert found == []


def test_plan_counts_and_excel_serial_dates() -> None:
    party = ExistingOrg(2, "P1", "机关党委", OrgKind.PARTY_COMMITTEE, 1, 0, True, "/1/2/")
    branch = ExistingOrg(3, "B1", "一支部", OrgKind.BRANCH, 2, 0, True, "/1/2/3/")
    same = ExistingMember(
        10,
        "D1",
        3,
        "张三",
        Gender.MALE,
        "13800000000",
        dt.date(2010, 7, 1),
        Standing.FULL,
        Position.MEMBER,
        MemberStatus.ACTIVE,
        None,
    )
    raw = read_workbook(
        workbook(
            orgs=[["P1", "机关党委", "机关党委", "ROOT", None], ["B2", "二支部", "党支部", "P1", None]],
            members=[member("D1", joined_on=dt.datetime(2010, 7, 1)), member("D2", branch="B2", joined_on=40360)],
        )
    )
    issues = IssueCollector()
    plan = build_plan(
        orgs=raw.sheet(ORG_SHEET),
        members=raw.sheet(MEMBER_SHEET),
        existing_orgs=[ROOT, party, branch],
        existing_members=[same],
        issues=issues,
    )
    assert not issues
    assert [record.code for record in plan.org_creates] == ["B2"]
    assert plan.org_unchanged == 1 and plan.org_updates == []
    assert plan.member_unchanged == 1
    assert [(r.member_no, r.joined_on) for r in plan.member_creates] == [("D2", dt.date(2010, 7, 1))]
    assert plan.parents["B2"] == "P1" and plan.parents["B1"] == "P1" and plan.parents["ROOT"] is None


def test_issue_collector_counts_everything_but_keeps_a_few() -> None:
    collector = IssueCollector(limit=3)
    for row in range(10):
        collector.add(MEMBER_SHEET, row, "姓名", "x")
    assert collector.count == 10 and len(collector.kept) == 3
