"""Checking the rows of a workbook against each other and against what the tenant already has.

Pure Python, no database: the service passes the tenant's existing organisations and members in as
plain tuples, so every rule here is unit-tested without a session. Every problem is reported with
its sheet, Excel row and column header; checks go on after a problem so one upload lists them all.

Field values go through the shared parsers of `fivestar.people.fields`, so the importer accepts
exactly what the web forms accept.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fivestar.enums import Gender, MemberStatus, OrgKind, Position, Standing
from fivestar.i18n import _
from fivestar.imports.columns import MEMBER_SHEET, ORG_SHEET, ROOT_CODE, header_of
from fivestar.imports.reader import RawSheet
from fivestar.imports.report import IssueCollector
from fivestar.labels import label
from fivestar.orgs.structure import placement_problem
from fivestar.people import fields
from fivestar.people.fields import FieldError

ORG_NAME_MAX = 120
NOTE_MAX = 500

# Fields of a member that an import sets; `status` and `note` only when their column is present.
MEMBER_FIELDS = ("name", "gender", "phone", "joined_on", "standing", "position", "branch_code", "status", "note")
ORG_FIELDS = ("name", "kind", "parent_code", "sort_order")


@dataclass(frozen=True, slots=True)
class ExistingOrg:
    id: int
    code: str
    name: str
    kind: OrgKind
    parent_id: int | None
    sort_order: int
    active: bool
    path: str


@dataclass(frozen=True, slots=True)
class ExistingMember:
    id: int
    member_no: str
    branch_id: int
    name: str
    gender: Gender
    phone: str | None
    joined_on: dt.date | None
    standing: Standing
    position: Position
    status: MemberStatus
    note: str | None


@dataclass(slots=True)
class OrgRecord:
    """One row of the 组织 sheet. A field that failed to parse is None and `ok` is False."""

    row: int
    code: str | None = None
    name: str | None = None
    kind: OrgKind | None = None
    parent_code: str | None = None  # final parent code (the root's code for "blank" or ROOT)
    sort_order: int | None = None  # None: column absent, keep the stored order
    ok: bool = True


@dataclass(slots=True)
class MemberRecord:
    row: int
    member_no: str | None = None
    name: str | None = None
    gender: Gender | None = None
    phone: str | None = None
    joined_on: dt.date | None = None
    standing: Standing | None = None
    position: Position | None = None
    branch_code: str | None = None
    status: MemberStatus | None = None  # None: column absent, keep the stored status
    note: str | None = None
    ok: bool = True

    def values(self, has_status: bool, has_note: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "gender": self.gender,
            "phone": self.phone,
            "joined_on": self.joined_on,
            "standing": self.standing,
            "position": self.position,
            "branch_code": self.branch_code,
        }
        if has_status:
            data["status"] = self.status
        if has_note:
            data["note"] = self.note
        return data


@dataclass(slots=True)
class Plan:
    """What the import will write, computed entirely before the first write."""

    org_creates: list[OrgRecord] = field(default_factory=list)
    org_updates: list[tuple[ExistingOrg, OrgRecord, dict[str, tuple[Any, Any]]]] = field(default_factory=list)
    org_unchanged: int = 0
    member_creates: list[MemberRecord] = field(default_factory=list)
    member_updates: list[tuple[ExistingMember, MemberRecord, dict[str, tuple[Any, Any]]]] = field(default_factory=list)
    member_unchanged: int = 0
    has_status: bool = False
    has_note: bool = False
    parents: dict[str, str | None] = field(default_factory=dict)  # every code -> its final parent code
    existing_orgs: list[ExistingOrg] = field(default_factory=list)

    @property
    def member_moves(self) -> int:
        return sum(1 for _existing, _record, changes in self.member_updates if "branch_code" in changes)


# --- field parsing -------------------------------------------------------------------------------


def _excel_date(value: Any) -> Any:
    """Excel hands back a serial number when the cell was typed as a plain number; accept it."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value < 2_958_466:
        from openpyxl.utils.datetime import from_excel

        converted = from_excel(value)
        if isinstance(converted, dt.datetime):
            return converted.date()
        if isinstance(converted, dt.date):
            return converted
    return value


def _parse_org_name(value: Any) -> str:
    text = " ".join(str(value or "").split())
    if not text:
        raise FieldError(_("组织名称不能为空"))
    if len(text) > ORG_NAME_MAX:
        raise FieldError(_("组织名称最长 %(n)d 个字", n=ORG_NAME_MAX))
    return text


def _parse_branch_code(value: Any) -> str:
    if value is None or not str(value).strip():
        raise FieldError(_("所在支部编码不能为空"))
    return fields.parse_org_code(value)


def _parse_note(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    if len(text) > NOTE_MAX:
        raise FieldError(_("备注最长 %(n)d 个字", n=NOTE_MAX))
    return text or None


def _is_root(code: str | None, root_code: str) -> bool:
    return code is None or code.upper() == ROOT_CODE or code == root_code


_CACHE_LIMIT = 10_000


class _RowParser:
    """Parses one row cell by cell, recording a problem per bad cell and going on."""

    def __init__(self, sheet: RawSheet, issues: IssueCollector, row: int, values: tuple[Any, ...]) -> None:
        self.sheet = sheet
        self.issues = issues
        self.row = row
        self.values = values
        self.ok = True

    def cell(self, key: str) -> Any:
        return self.values[self.sheet.index(key)]

    def parse(self, key: str, parser: Callable[[Any], Any], cache: dict[Any, tuple[bool, Any]] | None = None) -> Any:
        """Parse one cell. With `cache`, each distinct raw value is parsed once per import: columns
        such as 性别 or 所在支部编码 repeat a handful of values over thousands of rows."""
        raw = self.cell(key)
        if cache is not None:
            try:
                hit = cache.get(raw)
            except TypeError:  # an unhashable value: parse it directly
                hit = None
            if hit is not None:
                ok, value = hit
                if ok:
                    return value
                self.issue(key, value)
                return None
        try:
            value = parser(raw)
        except FieldError as error:
            if cache is not None and len(cache) < _CACHE_LIMIT:
                cache[raw] = (False, error.message)
            self.issue(key, error.message)
            return None
        if cache is not None and len(cache) < _CACHE_LIMIT:
            cache[raw] = (True, value)
        return value

    def issue(self, key: str, message: str) -> None:
        self.ok = False
        self.issues.add(self.sheet.name, self.row, header_of(self.sheet.name, key), message)


def parse_orgs(sheet: RawSheet, issues: IssueCollector, root_code: str = ROOT_CODE) -> list[OrgRecord]:
    """Parse every row of the 组织 sheet; duplicates of a code are reported on the later rows."""
    records: list[OrgRecord] = []
    first_row: dict[str, int] = {}
    for row, values in sheet.rows:
        cells = _RowParser(sheet, issues, row, values)
        record = OrgRecord(row=row)
        record.code = cells.parse("code", fields.parse_org_code)
        if record.code is not None:
            if _is_root(record.code, root_code):
                cells.issue("code", _("%(code)s 是工委本身的编码，不能在组织表中使用", code=record.code))
            elif record.code in first_row:
                message = _("组织编码“%(code)s”与第 %(row)d 行重复", code=record.code, row=first_row[record.code])
                cells.issue("code", message)
            else:
                first_row[record.code] = row
        record.name = cells.parse("name", _parse_org_name)
        record.kind = cells.parse("kind", fields.parse_org_kind)
        if record.kind is OrgKind.COMMITTEE:
            cells.issue("kind", placement_problem(OrgKind.COMMITTEE, None) or "")
            record.kind = None
        if sheet.has("parent_code"):
            parent = cells.parse("parent_code", lambda value: fields.parse_org_code(value, allow_empty=True))
            record.parent_code = root_code if parent is not None and _is_root(parent or None, root_code) else parent
        else:
            record.parent_code = root_code
        if sheet.has("sort_order"):
            record.sort_order = cells.parse("sort_order", fields.parse_sort_order)
        record.ok = cells.ok
        records.append(record)
    return records


def parse_members(sheet: RawSheet, issues: IssueCollector) -> list[MemberRecord]:
    """Parse every row of the 党员 sheet; a member number used twice is reported on the later rows."""
    records: list[MemberRecord] = []
    first_row: dict[str, int] = {}
    has_status, has_note = sheet.has("status"), sheet.has("note")
    caches: dict[str, dict[Any, tuple[bool, Any]]] = {
        key: {} for key in ("gender", "joined_on", "standing", "branch_code", "position", "status")
    }
    for row, values in sheet.rows:
        cells = _RowParser(sheet, issues, row, values)
        record = MemberRecord(row=row)
        record.member_no = cells.parse("member_no", fields.parse_member_no)
        if record.member_no is not None:
            if record.member_no in first_row:
                cells.issue(
                    "member_no",
                    _("党员编号“%(no)s”与第 %(row)d 行重复", no=record.member_no, row=first_row[record.member_no]),
                )
            else:
                first_row[record.member_no] = row
        record.name = cells.parse("name", fields.parse_name)
        record.gender = cells.parse("gender", fields.parse_gender, caches["gender"])
        record.phone = cells.parse("phone", fields.parse_phone)
        record.joined_on = cells.parse(
            "joined_on", lambda value: fields.parse_date(_excel_date(value)), caches["joined_on"]
        )
        record.standing = cells.parse("standing", fields.parse_standing, caches["standing"])
        record.branch_code = cells.parse("branch_code", _parse_branch_code, caches["branch_code"])
        record.position = cells.parse("position", fields.parse_position, caches["position"])
        if has_status:
            record.status = cells.parse("status", fields.parse_status, caches["status"])
        if has_note:
            record.note = cells.parse("note", _parse_note)
        record.ok = cells.ok
        records.append(record)
    return records


# --- cross-checks and the plan -------------------------------------------------------------------


class _Tree:
    """The organisation tree as it will be after the import: existing nodes overlaid by the sheet."""

    def __init__(self, existing: list[ExistingOrg], records: list[OrgRecord]) -> None:
        self.existing = {org.code: org for org in existing}
        self.by_id = {org.id: org for org in existing}
        roots = [org for org in existing if org.kind is OrgKind.COMMITTEE and org.parent_id is None]
        if len(roots) != 1:
            raise ValueError("the tenant has no single root committee")
        self.root = roots[0]
        self.sheet: dict[str, OrgRecord] = {}
        for record in records:
            if record.code is not None and record.code not in self.sheet and not _is_root(record.code, self.root.code):
                self.sheet[record.code] = record

    def known(self, code: str) -> bool:
        return code in self.sheet or code in self.existing or _is_root(code, self.root.code)

    def kind(self, code: str) -> OrgKind | None:
        if _is_root(code, self.root.code):
            return OrgKind.COMMITTEE
        if code in self.sheet:
            return self.sheet[code].kind
        org = self.existing.get(code)
        return org.kind if org else None

    def parent(self, code: str) -> str | None:
        if _is_root(code, self.root.code):
            return None
        if code in self.sheet:
            parent = self.sheet[code].parent_code
            return self.root.code if parent is None or _is_root(parent, self.root.code) else parent
        org = self.existing.get(code)
        if org is None or org.parent_id is None:
            return None
        parent_org = self.by_id.get(org.parent_id)
        return parent_org.code if parent_org else None

    def cycle_through(self, code: str) -> list[str] | None:
        """The chain of codes if `code` is its own ancestor, else None."""
        chain = [code]
        seen = {code}
        current = self.parent(code)
        while current is not None:
            if current == code:
                return [*chain, code]
            if current in seen or not self.known(current):
                return None
            seen.add(current)
            chain.append(current)
            current = self.parent(current)
        return None


def check_orgs(tree: _Tree, records: list[OrgRecord], issues: IssueCollector) -> None:
    """Parents exist, placements are allowed, no cycles; kind changes keep children and members valid."""
    root_code = tree.root.code
    for record in records:
        if record.code is None or tree.sheet.get(record.code) is not record:
            continue
        header = header_of(ORG_SHEET, "parent_code")
        parent = record.parent_code
        if parent is None:
            continue
        if parent == record.code:
            issues.add(ORG_SHEET, record.row, header, _("上级组织不能是它自己"))
            record.ok = False
            continue
        if not tree.known(parent):
            message = _("上级组织编码“%(code)s”不存在：既不在组织表中，也不是已有组织", code=parent)
            issues.add(ORG_SHEET, record.row, header, message)
            record.ok = False
            continue
        existing_parent = tree.existing.get(parent)
        inactive = existing_parent is not None and not existing_parent.active
        if inactive and parent not in tree.sheet and parent != root_code:
            issues.add(ORG_SHEET, record.row, header, _("上级组织“%(code)s”已停用", code=parent))
            record.ok = False
            continue
        chain = tree.cycle_through(record.code)
        if chain:
            issues.add(ORG_SHEET, record.row, header, _("上级关系形成循环：%(chain)s", chain=" → ".join(chain)))
            record.ok = False
            continue
        parent_kind = tree.kind(parent)
        if record.kind is not None and parent_kind is not None:
            problem = placement_problem(record.kind, parent_kind)
            if problem:
                issues.add(ORG_SHEET, record.row, header, problem)
                record.ok = False


def check_sibling_names(tree: _Tree, records: list[OrgRecord], issues: IssueCollector) -> None:
    """Two organisations under one parent may not share a name (the web forms refuse it too)."""
    taken: dict[tuple[str | None, str], str] = {}
    for org in tree.existing.values():
        if org.code not in tree.sheet:
            taken[(tree.parent(org.code), org.name)] = org.code
    header = header_of(ORG_SHEET, "name")
    for record in records:
        if record.code is None or record.name is None or tree.sheet.get(record.code) is not record:
            continue
        key = (tree.parent(record.code), record.name)
        other = taken.get(key)
        if other is not None and other != record.code:
            message = _("同一上级组织下已有名为“%(name)s”的组织（%(code)s）", name=record.name, code=other)
            issues.add(ORG_SHEET, record.row, header, message)
            record.ok = False
            continue
        taken[key] = record.code


def check_kind_changes(
    tree: _Tree,
    records: list[OrgRecord],
    members_by_branch: Counter[int],
    issues: IssueCollector,
) -> None:
    """An existing organisation that changes type must still fit its children and its members.

    Children and members listed in the file are checked on their own rows; this covers the ones
    that stay as they are in the database.
    """
    children: dict[int, list[ExistingOrg]] = {}
    for org in tree.existing.values():
        if org.parent_id is not None:
            children.setdefault(org.parent_id, []).append(org)
    header = header_of(ORG_SHEET, "kind")
    for record in records:
        if record.code is None or record.kind is None or tree.sheet.get(record.code) is not record:
            continue
        existing = tree.existing.get(record.code)
        if existing is None or existing.kind is record.kind:
            continue
        for child in children.get(existing.id, []):
            if child.code in tree.sheet:
                continue
            problem = placement_problem(child.kind, record.kind)
            if problem:
                issues.add(
                    ORG_SHEET,
                    record.row,
                    header,
                    _("下级组织“%(name)s”（%(code)s）：%(problem)s", name=child.name, code=child.code, problem=problem),
                )
                record.ok = False
        staying = members_by_branch.get(existing.id, 0)
        if staying and not record.kind.holds_members:
            issues.add(
                ORG_SHEET,
                record.row,
                header,
                _(
                    "该组织下有 %(n)d 名党员，不能改为%(kind)s；请先调整这些党员的所在支部",
                    n=staying,
                    kind=label(record.kind),
                ),
            )
            record.ok = False


def check_members(tree: _Tree, records: list[MemberRecord], issues: IssueCollector) -> None:
    """Every member's branch exists (in the file or already) and is a branch that holds members."""
    header = header_of(MEMBER_SHEET, "branch_code")
    for record in records:
        code = record.branch_code
        if code is None:
            continue
        if not tree.known(code):
            message = _("所在支部编码“%(code)s”不存在：既不在组织表中，也不是已有组织", code=code)
            issues.add(MEMBER_SHEET, record.row, header, message)
            record.ok = False
            continue
        existing = tree.existing.get(code)
        if code not in tree.sheet and existing is not None and not existing.active:
            issues.add(MEMBER_SHEET, record.row, header, _("所在支部“%(code)s”已停用", code=code))
            record.ok = False
            continue
        kind = tree.kind(code)
        if kind is not None and not kind.holds_members:
            issues.add(
                MEMBER_SHEET,
                record.row,
                header,
                _("“%(code)s”是%(kind)s，党员只能编入党支部或离退休支部", code=code, kind=label(kind)),
            )
            record.ok = False


def _org_changes(existing: ExistingOrg, record: OrgRecord, tree: _Tree) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    if record.name != existing.name:
        changes["name"] = (existing.name, record.name)
    if record.kind is not existing.kind:
        changes["kind"] = (existing.kind, record.kind)
    old_parent = tree.by_id[existing.parent_id].code if existing.parent_id in tree.by_id else None
    new_parent = tree.parent(existing.code)
    if new_parent != old_parent:
        changes["parent_code"] = (old_parent, new_parent)
    if record.sort_order is not None and record.sort_order != existing.sort_order:
        changes["sort_order"] = (existing.sort_order, record.sort_order)
    return changes


def _member_changes(
    existing: ExistingMember, record: MemberRecord, branch_code: str, plan: Plan
) -> dict[str, tuple[Any, Any]]:
    old: dict[str, Any] = {
        "name": existing.name,
        "gender": existing.gender,
        "phone": existing.phone,
        "joined_on": existing.joined_on,
        "standing": existing.standing,
        "position": existing.position,
        "branch_code": branch_code,
        "status": existing.status,
        "note": existing.note,
    }
    new = record.values(plan.has_status, plan.has_note)
    return {key: (old[key], value) for key, value in new.items() if old[key] != value}


def build_plan(
    *,
    orgs: RawSheet | None,
    members: RawSheet | None,
    existing_orgs: list[ExistingOrg],
    existing_members: list[ExistingMember],
    issues: IssueCollector,
) -> Plan:
    """Parse and check both sheets; return what to write. Meaningful only when `issues` stays empty."""
    tree_probe = _Tree(existing_orgs, [])
    root_code = tree_probe.root.code
    org_records = parse_orgs(orgs, issues, root_code) if orgs is not None else []
    member_records = parse_members(members, issues) if members is not None else []
    tree = _Tree(existing_orgs, org_records)
    check_orgs(tree, org_records, issues)
    check_sibling_names(tree, org_records, issues)
    in_file = {record.member_no for record in member_records if record.member_no is not None}
    staying = Counter(member.branch_id for member in existing_members if member.member_no not in in_file)
    check_kind_changes(tree, org_records, staying, issues)
    check_members(tree, member_records, issues)

    plan = Plan(
        has_status=members is not None and members.has("status"),
        has_note=members is not None and members.has("note"),
    )
    if issues:
        return plan
    plan.parents = {code: tree.parent(code) for code in {*tree.existing, *tree.sheet}}
    plan.existing_orgs = list(existing_orgs)
    for record in org_records:
        assert record.code is not None
        existing = tree.existing.get(record.code)
        if existing is None:
            plan.org_creates.append(record)
            continue
        changes = _org_changes(existing, record, tree)
        if changes:
            plan.org_updates.append((existing, record, changes))
        else:
            plan.org_unchanged += 1
    by_no = {member.member_no: member for member in existing_members}
    for member_record in member_records:
        assert member_record.member_no is not None
        existing_member = by_no.get(member_record.member_no)
        if existing_member is None:
            plan.member_creates.append(member_record)
            continue
        branch = tree.by_id.get(existing_member.branch_id)
        member_changes = _member_changes(existing_member, member_record, branch.code if branch else "", plan)
        if member_changes:
            plan.member_updates.append((existing_member, member_record, member_changes))
        else:
            plan.member_unchanged += 1
    return plan
