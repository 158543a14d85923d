"""Importing workbooks into a real database: round trip, all-or-nothing, re-import, isolation."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.enums import Gender, MemberStatus, OrgKind, Position, Standing, TenantStatus
from fivestar.errors import ServiceError
from fivestar.imports.columns import MEMBER_COLUMNS, MEMBER_SHEET, ORG_SHEET
from fivestar.imports.report import ImportReport
from fivestar.imports.services import import_workbook
from fivestar.imports.template import build_template
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.tenancy import tenant_context

ORGS = [
    ["B1", "第一党支部", "党支部", "G1", 2],  # parent written after the child
    ["G1", "机关党总支", "党总支", "P1", 1],
    ["P1", "财政局机关党委", "机关党委", "", 1],
    ["R1", "离退休党支部", "离退休支部", "P1", 9],
    ["B2", "第二党支部", "党支部", "ROOT", 3],
]


def member(no: str, branch: str = "B1", **overrides: Any) -> list[Any]:
    values = {
        "member_no": no,
        "name": f"党员{no}",
        "gender": "女",
        "phone": "13800000000",
        "joined_on": dt.datetime(2012, 7, 1),
        "standing": "正式",
        "branch_code": branch,
        "position": "党员",
        "status": "在册",
        "note": None,
    }
    values.update(overrides)
    return [values[column.key] for column in MEMBER_COLUMNS]


def filled_template(orgs: list[list[Any]] | None = None, members: list[list[Any]] | None = None) -> bytes:
    """The real template, filled in with openpyxl as an office would in Excel."""
    book = openpyxl.load_workbook(io.BytesIO(build_template()))
    for row in orgs or []:
        book[ORG_SHEET].append(row)
    for row in members or []:
        book[MEMBER_SHEET].append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def run(session: Session, tenant: Any, data: bytes, **kwargs: Any) -> ImportReport:
    kwargs.setdefault("file_name", "名单.xlsx")
    return import_workbook(session, tenant, data, **kwargs)


def counts(session: Session, tenant: Any) -> tuple[int, int, int]:
    """Organisations, members and audit events of `tenant`."""
    with tenant_context(tenant.id):
        orgs = session.scalar(select(func.count()).select_from(Organisation)) or 0
        members = session.scalar(select(func.count()).select_from(Member)) or 0
    events = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.tenant_id == tenant.id))
    return orgs, members, events or 0


def orgs_by_code(session: Session, tenant: Any) -> dict[str, Organisation]:
    with tenant_context(tenant.id):
        return {
            org.code: org for org in session.scalars(select(Organisation).execution_options(populate_existing=True))
        }


def members_by_no(session: Session, tenant: Any) -> dict[str, Member]:
    with tenant_context(tenant.id):
        return {m.member_no: m for m in session.scalars(select(Member).execution_options(populate_existing=True))}


def events(session: Session, tenant: Any, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
    )


def test_template_round_trip_creates_the_tree_and_members(session: Session, create_tenant: Any) -> None:
    tenant = create_tenant()
    data = filled_template(ORGS, [member("D1"), member("D2", "R1", gender="男", position="书记"), member("D3", "B2")])
    report = run(session, tenant, data)
    assert report.ok, report.issues
    assert (report.orgs.created, report.orgs.updated, report.orgs.unchanged) == (5, 0, 0)
    assert (report.members.created, report.members.updated, report.members.unchanged) == (3, 0, 0)

    orgs = orgs_by_code(session, tenant)
    root = orgs["ROOT"]
    assert orgs["P1"].parent_id == root.id and orgs["P1"].path == f"{root.path}{orgs['P1'].id}/"
    assert orgs["G1"].path == f"{orgs['P1'].path}{orgs['G1'].id}/"
    assert orgs["B1"].path == f"{orgs['G1'].path}{orgs['B1'].id}/" and orgs["B1"].kind is OrgKind.BRANCH
    assert orgs["B2"].parent_id == root.id and orgs["B1"].sort_order == 2
    assert orgs["R1"].kind is OrgKind.RETIREE_BRANCH

    members = members_by_no(session, tenant)
    assert members["D1"].branch_id == orgs["B1"].id and members["D1"].joined_on == dt.date(2012, 7, 1)
    assert members["D2"].gender is Gender.MALE and members["D2"].position is Position.SECRETARY
    assert members["D2"].standing is Standing.FULL and members["D2"].status is MemberStatus.ACTIVE
    assert members["D1"].version == 1

    assert len(events(session, tenant, "org.create")) == 1 + 5  # the root, made with the tenant, and ours
    created = events(session, tenant, "member.create")
    assert len(created) == 3 and created[0].after is not None and created[0].after["branch_code"] in {"B1", "R1", "B2"}
    assert created[0].reason == "导入 名单.xlsx"
    summary = events(session, tenant, "import.run")
    assert len(summary) == 1 and summary[0].id == report.event_id
    assert summary[0].object_id == report.sha256 and len(report.sha256) == 64
    assert summary[0].after is not None and summary[0].after["members"]["created"] == 3
    assert summary[0].after["file_name"] == "名单.xlsx"


def test_reimport_updates_by_member_no_never_duplicates_and_records_moves(session: Session, create_tenant: Any) -> None:
    tenant = create_tenant()
    first = filled_template(ORGS, [member("D1"), member("D2"), member("D3")])
    assert run(session, tenant, first).ok
    before = counts(session, tenant)

    again = run(session, tenant, first)
    assert again.ok
    assert (again.orgs.unchanged, again.members.unchanged, again.members.updated) == (5, 3, 0)
    orgs_after, members_after, events_after = counts(session, tenant)
    assert (orgs_after, members_after) == before[:2]
    assert events_after == before[2] + 1  # only the import.run summary

    changed = filled_template(
        [*ORGS[:4], ["B2", "第二党支部（改名）", "党支部", "ROOT", 3]],
        [member("D1", name="新名字"), member("D2", "B2"), member("D3"), member("D4", "R1")],
    )
    report = run(session, tenant, changed)
    assert report.ok
    assert (report.orgs.updated, report.orgs.unchanged) == (1, 4)
    assert (report.members.created, report.members.updated, report.members.moved, report.members.unchanged) == (
        1,
        2,
        1,
        1,
    )
    members = members_by_no(session, tenant)
    orgs = orgs_by_code(session, tenant)
    assert len(members) == 4
    assert members["D1"].name == "新名字" and members["D1"].version == 2
    assert members["D2"].branch_id == orgs["B2"].id
    assert members["D3"].version == 1  # unchanged rows are not touched
    assert orgs["B2"].name == "第二党支部（改名）"

    moves = events(session, tenant, "member.move")
    assert len(moves) == 1 and moves[0].object_id == str(members["D2"].id)
    assert moves[0].before == {"member_no": "D2", "branch_code": "B1", "branch_id": orgs["B1"].id}
    assert moves[0].after == {"member_no": "D2", "branch_code": "B2", "branch_id": orgs["B2"].id}
    updates = events(session, tenant, "member.update")
    assert [(e.before, e.after) for e in updates] == [
        ({"member_no": "D1", "name": "党员D1"}, {"member_no": "D1", "name": "新名字"})
    ]
    org_updates = events(session, tenant, "org.update")
    assert len(org_updates) == 1 and org_updates[0].after == {"code": "B2", "name": "第二党支部（改名）"}


def test_members_absent_from_the_file_are_kept_as_they_are(session: Session, two_tenants: dict[str, Any]) -> None:
    a = two_tenants["a"]
    tenant = a["tenant"]
    report = run(session, tenant, filled_template(members=[member("NEW1", "B001")]))
    assert report.ok and report.members.created == 1
    members = members_by_no(session, tenant)
    assert {"NO001", "NO002", "NO003", "NEW1"} == set(members)
    assert all(m.status is MemberStatus.ACTIVE for m in members.values())


def test_optional_columns_absent_keep_stored_values(session: Session, two_tenants: dict[str, Any]) -> None:
    a = two_tenants["a"]
    tenant = a["tenant"]
    with tenant_context(tenant.id):
        a["members"][0].status = MemberStatus.TRANSFERRED_OUT
        a["members"][0].note = "已转至市局"
        session.flush()
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = MEMBER_SHEET
    sheet.append([column.header for column in MEMBER_COLUMNS if column.key not in ("status", "note")])
    sheet.append(["NO001", "张1", "男", None, None, None, "B001", "书记"])
    buffer = io.BytesIO()
    book.save(buffer)
    report = run(session, tenant, buffer.getvalue())
    assert report.ok and report.members.updated == 1
    stored = members_by_no(session, tenant)["NO001"]
    assert stored.status is MemberStatus.TRANSFERRED_OUT and stored.note == "已转至市局"
    assert stored.position is Position.SECRETARY and stored.phone is None


def test_moving_an_existing_org_rewrites_the_subtree_paths(session: Session, two_tenants: dict[str, Any]) -> None:
    a = two_tenants["a"]
    tenant = a["tenant"]
    data = filled_template(
        [["P2", "新机关党委", "机关党委", "ROOT", None], ["B001", "第一党支部", "党支部", "P2", None]]
    )
    report = run(session, tenant, data)
    assert report.ok and (report.orgs.created, report.orgs.updated) == (1, 1)
    orgs = orgs_by_code(session, tenant)
    assert orgs["B001"].parent_id == orgs["P2"].id
    assert orgs["B001"].path == f"{orgs['P2'].path}{orgs['B001'].id}/"
    assert orgs["B002"].path == f"{orgs['P001'].path}{orgs['B002'].id}/"  # the sibling stays
    change = events(session, tenant, "org.update")[-1]
    assert change.before == {"code": "B001", "parent_code": "P001"} and change.after == {
        "code": "B001",
        "parent_code": "P2",
    }


@pytest.mark.parametrize(
    ("orgs", "members", "expected"),
    [
        (None, [member("D1", "B001"), member("D1", "B002")], [(MEMBER_SHEET, 4, "党员编号")]),
        (None, [member("D1", "NOPE")], [(MEMBER_SHEET, 3, "所在支部编码")]),
        (None, [member("D1", "P001")], [(MEMBER_SHEET, 3, "所在支部编码")]),
        (
            [["X1", "甲", "党总支", "X2", None], ["X2", "乙", "党总支", "X1", None]],
            None,
            [(ORG_SHEET, 2, "上级组织编码"), (ORG_SHEET, 3, "上级组织编码")],
        ),
        ([["B9", "九支部", "党支部", "B001", None]], None, [(ORG_SHEET, 2, "上级组织编码")]),
        # P001 has two branches under it: each is reported.
        ([["P001", "财政局机关党委", "党支部", "ROOT", None]], None, [(ORG_SHEET, 2, "组织类型")] * 2),
        # B001 keeps three members, and the file places one more in it.
        (
            [["B001", "第一党支部", "党总支", "P001", None]],
            None,
            [(ORG_SHEET, 2, "组织类型"), (MEMBER_SHEET, 2, "所在支部编码")],
        ),
        ([["B7", "离退休党支部", "党支部", "P001", None]], None, [(ORG_SHEET, 2, "组织名称")]),
    ],
    ids=[
        "duplicate-no",
        "unknown-branch",
        "non-branch",
        "cycle",
        "under-branch",
        "kind-with-children",
        "kind-with-members",
        "sibling-name",
    ],
)
def test_each_error_is_placed_and_nothing_is_stored(
    session: Session, two_tenants: dict[str, Any], orgs: Any, members: Any, expected: list[Any]
) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    good = [member("OK1", "B001")]
    before = counts(session, a["tenant"]), counts(session, b["tenant"])
    report = run(session, a["tenant"], filled_template(orgs, [*good, *(members or [])]))
    assert not report.ok and not report.file_problem
    assert [(i.sheet, i.row, i.column) for i in report.issues] == expected
    assert all(i.message for i in report.issues)
    assert (counts(session, a["tenant"]), counts(session, b["tenant"])) == before
    assert "OK1" not in members_by_no(session, a["tenant"])


@pytest.mark.parametrize(
    ("data", "file_problem", "fragment"),
    [
        (b"not a workbook at all", True, "不是 Excel"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, True, ".xls"),
        (b"PK\x03\x04broken", True, "损坏"),
        (None, False, "没有可导入的数据"),
    ],
    ids=["text", "xls", "corrupt", "empty-workbook"],
)
def test_unusable_files_are_refused_without_writing(
    session: Session, create_tenant: Any, data: bytes | None, file_problem: bool, fragment: str
) -> None:
    tenant = create_tenant()
    before = counts(session, tenant)
    report = run(session, tenant, data if data is not None else build_template())
    assert not report.ok and report.file_problem is file_problem
    assert len(report.issues) == 1 and fragment in report.issues[0].message
    assert counts(session, tenant) == before


def test_missing_column_and_too_many_rows(session: Session, create_tenant: Any) -> None:
    tenant = create_tenant()
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = MEMBER_SHEET
    sheet.append(["党员编号", "姓名", "性别", "手机号码", "入党日期", "党员类别", "职务"])
    sheet.append(["D1", "张三", "男", None, None, None, None])
    buffer = io.BytesIO()
    book.save(buffer)
    report = run(session, tenant, buffer.getvalue())
    assert [(i.sheet, i.row, i.column, i.message) for i in report.issues] == [
        (MEMBER_SHEET, 1, "所在支部编码", "缺少必填列“所在支部编码”。")
    ]
    many = run(session, tenant, filled_template(ORGS, [member(f"D{i}") for i in range(7)]), max_rows=6)
    assert [(i.sheet, i.row, i.column) for i in many.issues] == [(MEMBER_SHEET, 8, None)]
    assert counts(session, tenant)[1] == 0


def test_all_errors_are_reported_not_just_the_first(session: Session, create_tenant: Any) -> None:
    tenant = create_tenant()
    rows = [member(f"D{i}", gender="?") for i in range(1, 601)]
    report = run(session, tenant, filled_template(ORGS, rows))
    assert report.issue_count == 600 and len(report.issues) == 600
    assert report.issues[0].row == 2 and report.issues[-1].row == 601


def test_dry_run_counts_but_writes_nothing(session: Session, create_tenant: Any) -> None:
    tenant = create_tenant()
    before = counts(session, tenant)
    report = run(session, tenant, filled_template(ORGS, [member("D1")]), dry_run=True)
    assert report.ok and report.dry_run and report.members.created == 1 and report.event_id is None
    assert counts(session, tenant) == before


def test_suspended_tenant_is_refused(session: Session, create_tenant: Any) -> None:
    tenant = create_tenant()
    tenant.status = TenantStatus.SUSPENDED
    session.flush()
    with pytest.raises(ServiceError):
        run(session, tenant, filled_template(ORGS))


def test_file_over_the_byte_limit(session: Session, create_tenant: Any) -> None:
    tenant = create_tenant()
    report = run(session, tenant, filled_template(ORGS), max_bytes=1024)
    assert not report.ok and report.file_problem and "MB" in report.issues[0].message


def test_importing_into_a_never_touches_b(session: Session, two_tenants: dict[str, Any]) -> None:
    a, b = two_tenants["a"], two_tenants["b"]

    def state(tenant: Any) -> Any:
        orgs = {code: (o.id, o.name, o.kind, o.parent_id, o.path) for code, o in orgs_by_code(session, tenant).items()}
        members = {no: (m.id, m.name, m.branch_id, m.version) for no, m in members_by_no(session, tenant).items()}
        return orgs, members, counts(session, tenant)

    b_before = state(b["tenant"])
    data = filled_template(
        [["P001", "财政局机关党委（新）", "机关党委", "ROOT", None], ["B003", "第三党支部", "党支部", "P001", None]],
        [member("NO001", "B003", name="改名"), member("NO002", "B002"), member("NO999", "B001")],
    )
    report = run(session, a["tenant"], data)
    assert report.ok, report.issues
    assert (report.members.created, report.members.moved) == (1, 2)
    assert state(b["tenant"]) == b_before
    a_members = members_by_no(session, a["tenant"])
    a_orgs = orgs_by_code(session, a["tenant"])
    assert a_members["NO001"].branch_id == a_orgs["B003"].id and a_members["NO001"].name == "改名"
    assert all(org.tenant_id == a["tenant"].id for org in a_orgs.values())
    # And the audit trail of the import belongs to A only.
    assert not [e for e in events(session, b["tenant"], "import.run")]


def test_existing_orm_objects_are_refreshed_after_the_import(session: Session, two_tenants: dict[str, Any]) -> None:
    a = two_tenants["a"]
    loaded = a["members"][1]  # NO002, loaded in this session by the factory
    assert run(session, a["tenant"], filled_template(members=[member("NO002", "B002", name="新")])).ok
    with tenant_context(a["tenant"].id):
        assert loaded.name == "新" and loaded.branch_id == a["retirees"].id and loaded.version == 2
