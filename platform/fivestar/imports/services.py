"""Importing a workbook into a tenant: all or nothing, set-based, audited.

`import_workbook` reads and checks the whole file first (see `reader` and `validate`); with any
problem it writes nothing and returns every problem. Otherwise it writes in the caller's
transaction — organisations upserted by code, members by member number — and the caller (a view
or the CLI) commits once.

Why Core statements rather than ORM objects: 10,000 members as ORM instances cost a flush per
unit of work and an identity map of 10,000 objects. Here the existing rows are loaded in one query
per table, the differences are computed in Python, and the writes are one multi-row INSERT per
table (RETURNING the new ids) and one executemany UPDATE per table — a fixed number of round
trips. These statements bypass the ORM's tenant hook, so every one names `tenant_id` itself.
Audit events go through `audit.record_many` (one multi-row INSERT per action).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.accounts.branch_grants import withdraw_grants_left_behind
from fivestar.db import utcnow
from fivestar.enums import MemberStatus
from fivestar.errors import ConflictError, ServiceError
from fivestar.i18n import _
from fivestar.imports.columns import DEFAULT_MAX_ROWS, MEMBER_SHEET, ORG_SHEET
from fivestar.imports.reader import read_workbook
from fivestar.imports.report import ImportIssue, ImportReport, IssueCollector
from fivestar.imports.validate import ExistingMember, ExistingOrg, Plan, build_plan
from fivestar.member_rounds import membership
from fivestar.member_rounds.models import MemberRound, RoundState
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.tenancy import TenantScopeError, current_tenant_id, tenant_context
from fivestar.tenants.models import Tenant

Source = bytes | bytearray | str | os.PathLike[str] | IO[bytes]

ORG_TABLE: Table = Organisation.__table__  # type: ignore[assignment]
MEMBER_TABLE: Table = Member.__table__  # type: ignore[assignment]


def _read_source(source: Source, file_name: str | None, max_bytes: int | None) -> tuple[bytes | None, str]:
    """The file's bytes (None when over `max_bytes`) and a display name for it."""
    if isinstance(source, bytes | bytearray):
        name = file_name or "workbook.xlsx"
        limit_ok = max_bytes is None or len(source) <= max_bytes
        return (bytes(source) if limit_ok else None), name
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        name = file_name or path.name
        if max_bytes is not None and path.stat().st_size > max_bytes:
            return None, name
        return path.read_bytes(), name
    given = str(getattr(source, "filename", None) or getattr(source, "name", "") or "")
    name = file_name or os.path.basename(given.replace("\\", "/"))
    data = source.read() if max_bytes is None else source.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        return None, name or "workbook.xlsx"
    return data, name or "workbook.xlsx"


def import_workbook(
    session: Session,
    tenant: Tenant,
    file: Source,
    *,
    file_name: str | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import organisations and members from an .xlsx workbook into `tenant`.

    Returns a report. When `report.ok` is False nothing was written. With `dry_run` everything is
    checked and counted but nothing is written either. Raises `ServiceError` for a suspended
    tenant and `ConflictError` when a concurrent change makes the write fail (nothing kept).
    """
    if not tenant.is_active:
        raise ServiceError(_("该单位已暂停，不能导入。"))
    acting = current_tenant_id()
    if acting is not None and acting != tenant.id:
        raise TenantScopeError(f"import into tenant {tenant.id} while acting for tenant {acting}")
    data, name = _read_source(file, file_name, max_bytes)
    name = os.path.basename(name.replace("\\", "/"))[-200:] or "workbook.xlsx"
    if data is None:
        report = ImportReport(file_name=name, sha256="", size=0, dry_run=dry_run, file_problem=True)
        mb = max(1, (max_bytes or 0) // (1024 * 1024))
        report.issues = [_issue_too_big(mb)]
        report.issue_count = 1
        return report
    report = ImportReport(file_name=name, sha256=hashlib.sha256(data).hexdigest(), size=len(data), dry_run=dry_run)
    with tenant_context(tenant.id):
        raw = read_workbook(data, max_rows=max_rows)
        issues: IssueCollector = raw.issues
        plan: Plan | None = None
        if not issues:
            session.flush()  # pending ORM changes are part of "what exists"
            plan = build_plan(
                orgs=raw.sheet(ORG_SHEET),
                members=raw.sheet(MEMBER_SHEET),
                existing_orgs=load_orgs(session, tenant.id),
                existing_members=load_members(session, tenant.id),
                issues=issues,
            )
        if issues or plan is None:
            report.issues = issues.sorted()
            report.issue_count = issues.count
            report.file_problem = raw.file_problem
            return report
        report.orgs.created = len(plan.org_creates)
        report.orgs.updated = len(plan.org_updates)
        report.orgs.unchanged = plan.org_unchanged
        report.members.created = len(plan.member_creates)
        report.members.updated = len(plan.member_updates)
        report.members.unchanged = plan.member_unchanged
        report.members.moved = plan.member_moves
        if dry_run:
            return report
        try:
            with session.begin_nested():  # a failed write leaves the caller's session usable
                _write(session, tenant.id, plan, reason=f"导入 {name}")
        except IntegrityError:
            raise ConflictError(_("导入时数据被其他操作同时修改，未保存任何内容，请重试。")) from None
        event = audit.record(
            session,
            "import.run",
            object_type="import",
            object_id=report.sha256,
            after=report.summary(),
            tenant_id=tenant.id,
        )
        session.flush()
        report.event_id = event.id
    return report


def _issue_too_big(mb: int) -> ImportIssue:
    return ImportIssue("", None, None, _("文件超过 %(mb)d MB 的上限，请分批导入。", mb=mb))


# --- loading -------------------------------------------------------------------------------------


def load_orgs(session: Session, tenant_id: int) -> list[ExistingOrg]:
    """Every organisation of the tenant, in one query."""
    rows = session.execute(
        select(
            Organisation.id,
            Organisation.code,
            Organisation.name,
            Organisation.kind,
            Organisation.parent_id,
            Organisation.sort_order,
            Organisation.active,
            Organisation.path,
        ).where(Organisation.tenant_id == tenant_id)
    )
    return [ExistingOrg(*row) for row in rows]


def load_members(session: Session, tenant_id: int) -> list[ExistingMember]:
    """Every member of the tenant, in one query (columns only: no ORM objects)."""
    rows = session.execute(
        select(
            Member.id,
            Member.member_no,
            Member.branch_id,
            Member.name,
            Member.gender,
            Member.phone,
            Member.joined_on,
            Member.standing,
            Member.position,
            Member.status,
            Member.note,
        ).where(Member.tenant_id == tenant_id)
    )
    return [ExistingMember(*row) for row in rows]


# --- writing -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _OrgState:
    name: str
    kind: Any
    sort_order: int


def _paths(ids: dict[str, int], parents: dict[str, str | None]) -> dict[str, str]:
    """Materialised paths ('/1/4/17/') for every code, from the final parent of each."""
    paths: dict[str, str] = {}

    def path_of(code: str) -> str:
        known = paths.get(code)
        if known is not None:
            return known
        chain = [code]
        parent = parents.get(code)
        while parent is not None and parent not in paths:
            chain.append(parent)
            parent = parents.get(parent)
        prefix = paths[parent] if parent is not None else "/"
        for item in reversed(chain):
            prefix = f"{prefix}{ids[item]}/"
            paths[item] = prefix
        return paths[code]

    for code in parents:
        path_of(code)
    return paths


def _write(session: Session, tenant_id: int, plan: Plan, *, reason: str) -> None:
    connection = session.connection()
    now = utcnow()
    existing = {org.code: org for org in plan.existing_orgs}
    ids = {code: org.id for code, org in existing.items()}

    # 1. New organisations, in one multi-row INSERT; parents and paths are set in step 2.
    if plan.org_creates:
        rows = [
            {
                "tenant_id": tenant_id,
                "code": record.code,
                "name": record.name,
                "kind": record.kind,
                "parent_id": None,
                "path": "",
                "sort_order": record.sort_order or 0,
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
            for record in plan.org_creates
        ]
        result = connection.execute(insert(ORG_TABLE).returning(ORG_TABLE.c.code, ORG_TABLE.c.id), rows)
        ids.update({str(row[0]): int(row[1]) for row in result})

    # 2. Parents, paths and changed fields of every organisation that differs, in one executemany.
    paths = _paths(ids, plan.parents)
    state = {code: _OrgState(org.name, org.kind, org.sort_order) for code, org in existing.items()}
    for record in plan.org_creates:
        assert record.code is not None
        state[record.code] = _OrgState(record.name or "", record.kind, record.sort_order or 0)
    for _org, record, _changes in plan.org_updates:
        assert record.code is not None
        old = state[record.code]
        sort_order = record.sort_order if record.sort_order is not None else old.sort_order
        state[record.code] = _OrgState(record.name or "", record.kind, sort_order)
    new_codes = {record.code for record in plan.org_creates}
    updated_codes = {record.code for _org, record, _changes in plan.org_updates}
    org_rows = []
    for code, path in paths.items():
        parent = plan.parents.get(code)
        parent_id = ids[parent] if parent is not None else None
        old_org = existing.get(code)
        untouched = code not in new_codes and code not in updated_codes and old_org is not None
        if untouched and old_org is not None and old_org.path == path and old_org.parent_id == parent_id:
            continue
        current = state[code]
        org_rows.append(
            {
                "b_tenant": tenant_id,
                "b_id": ids[code],
                "b_parent": parent_id,
                "b_path": path,
                "b_name": current.name,
                "b_kind": current.kind,
                "b_sort": current.sort_order,
                "b_now": now,
            }
        )
    if org_rows:
        connection.execute(
            update(ORG_TABLE)
            .where(ORG_TABLE.c.tenant_id == bindparam("b_tenant"), ORG_TABLE.c.id == bindparam("b_id"))
            .values(
                parent_id=bindparam("b_parent"),
                path=bindparam("b_path"),
                name=bindparam("b_name"),
                kind=bindparam("b_kind"),
                sort_order=bindparam("b_sort"),
                updated_at=bindparam("b_now"),
                version=ORG_TABLE.c.version + 1,  # an edit page opened before the import is stale
            ),
            org_rows,
        )

    # 3. Members: one executemany INSERT for the new ones, one executemany UPDATE for the changed ones.
    member_ids: dict[str, int] = {}
    if plan.member_creates:
        member_rows: list[dict[str, Any]] = [
            {
                "tenant_id": tenant_id,
                "branch_id": ids[record.branch_code or ""],
                "member_no": record.member_no,
                "name": record.name,
                "gender": record.gender,
                "phone": record.phone,
                "joined_on": record.joined_on,
                "standing": record.standing,
                "position": record.position,
                "status": record.status or MemberStatus.ACTIVE,
                "left_on": None,
                "note": record.note,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            for record in plan.member_creates
        ]
        # No RETURNING here: on PostgreSQL, psycopg rewrites the placeholders of every 1,000-row
        # VALUES batch that RETURNING needs (~15,000 parameters, too big for its query cache), which
        # made the INSERT 3x slower than a plain executemany plus one SELECT of the new ids.
        connection.execute(insert(MEMBER_TABLE), member_rows)
        created = {record.member_no for record in plan.member_creates}
        stored = connection.execute(
            select(MEMBER_TABLE.c.member_no, MEMBER_TABLE.c.id).where(MEMBER_TABLE.c.tenant_id == tenant_id)
        )
        member_ids = {str(row[0]): int(row[1]) for row in stored if row[0] in created}
    if plan.member_updates:
        connection.execute(
            update(MEMBER_TABLE)
            .where(MEMBER_TABLE.c.tenant_id == bindparam("b_tenant"), MEMBER_TABLE.c.id == bindparam("b_id"))
            .values(
                branch_id=bindparam("b_branch"),
                name=bindparam("b_name"),
                gender=bindparam("b_gender"),
                phone=bindparam("b_phone"),
                joined_on=bindparam("b_joined"),
                standing=bindparam("b_standing"),
                position=bindparam("b_position"),
                status=bindparam("b_status"),
                note=bindparam("b_note"),
                updated_at=bindparam("b_now"),
                version=MEMBER_TABLE.c.version + 1,
            ),
            [
                {
                    "b_tenant": tenant_id,
                    "b_id": old.id,
                    "b_branch": ids[record.branch_code or ""],
                    "b_name": record.name,
                    "b_gender": record.gender,
                    "b_phone": record.phone,
                    "b_joined": record.joined_on,
                    "b_standing": record.standing,
                    "b_position": record.position,
                    "b_status": record.status if plan.has_status and record.status is not None else old.status,
                    "b_note": record.note if plan.has_note else old.note,
                    "b_now": now,
                }
                for old, record, _changes in plan.member_updates
            ],
        )

    # 4. Audit: one event per created or changed organisation and member, before/after.
    _audit(session, tenant_id, plan, ids, paths, member_ids, reason)
    _forget_stale_objects(session)

    # 5. Members who joined, moved or left while a member round is open follow it (one query when
    #    no round is open, which is the usual case when a district is onboarded).
    _sync_open_rounds(session, plan, member_ids, reason=reason)

    # 6. A member who changed branch keeps no role of the branch they left (as on the member page).
    moves = {
        old.id: (old.branch_id, ids[changes["branch_code"][1]])
        for old, _record, changes in plan.member_updates
        if "branch_code" in changes
    }
    withdraw_grants_left_behind(session, moves, reason=reason)


def _sync_open_rounds(session: Session, plan: Plan, member_ids: dict[str, int], *, reason: str) -> None:
    if session.scalar(select(MemberRound.id).where(MemberRound.state == RoundState.OPEN).limit(1)) is None:
        return
    joined = set(member_ids.values())
    moved: dict[int, int] = {}
    left: set[int] = set()
    for old, record, changes in plan.member_updates:
        new_status = record.status if plan.has_status and record.status is not None else old.status
        if new_status != old.status:
            (joined if new_status == MemberStatus.ACTIVE else left).add(old.id)
        elif "branch_code" in changes:
            moved[old.id] = old.branch_id
    wanted = joined | left | set(moved)
    if not wanted:
        return
    for member in session.scalars(select(Member).where(Member.id.in_(wanted))):
        if member.id in left:
            membership.member_left(session, member, reason)
        elif member.id in moved:
            membership.member_moved(session, member, moved[member.id], reason)
        else:
            membership.member_joined(session, member)


_Change = tuple[int, dict[str, Any], dict[str, Any]]


def _audit(
    session: Session,
    tenant_id: int,
    plan: Plan,
    ids: dict[str, int],
    paths: dict[str, str],
    member_ids: dict[str, int],
    reason: str,
) -> None:
    def org_after(record: Any) -> dict[str, Any]:
        return {
            "code": record.code,
            "name": record.name,
            "kind": record.kind,
            "parent_code": plan.parents.get(record.code),
            "sort_order": record.sort_order or 0,
            "path": paths.get(record.code),
        }

    audit.record_many(
        session,
        "org.create",
        "organisations",
        [(ids[record.code], None, org_after(record)) for record in plan.org_creates if record.code],
        reason=reason,
        tenant_id=tenant_id,
    )
    audit.record_many(
        session,
        "org.update",
        "organisations",
        [
            (
                org.id,
                {"code": org.code, **{key: old for key, (old, _new) in changes.items()}},
                {"code": org.code, **{key: new for key, (_old, new) in changes.items()}},
            )
            for org, _record, changes in plan.org_updates
        ],
        reason=reason,
        tenant_id=tenant_id,
    )
    audit.record_many(
        session,
        "member.create",
        "members",
        [
            (
                member_ids[record.member_no],
                None,
                {
                    "member_no": record.member_no,
                    **record.values(True, True),
                    "status": record.status or MemberStatus.ACTIVE,
                    "branch_id": ids[record.branch_code or ""],
                },
            )
            for record in plan.member_creates
            if record.member_no
        ],
        reason=reason,
        tenant_id=tenant_id,
    )

    def member_change(old: ExistingMember, changes: dict[str, tuple[Any, Any]]) -> _Change:
        before = {"member_no": old.member_no, **{key: value for key, (value, _new) in changes.items()}}
        after = {"member_no": old.member_no, **{key: value for key, (_old, value) in changes.items()}}
        if "branch_code" in changes:
            before["branch_id"] = old.branch_id
            after["branch_id"] = ids[changes["branch_code"][1]]
        return old.id, before, after

    # A change of branch is a move (as in fivestar.people.services): recorded as `member.move`.
    for action, moved in (("member.update", False), ("member.move", True)):
        audit.record_many(
            session,
            action,
            "members",
            [
                member_change(old, changes)
                for old, _record, changes in plan.member_updates
                if ("branch_code" in changes) is moved
            ],
            reason=reason,
            tenant_id=tenant_id,
        )


def _forget_stale_objects(session: Session) -> None:
    """Core writes bypass the identity map: expire organisations and members loaded earlier."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Organisation | Member):
            session.expire(obj)
