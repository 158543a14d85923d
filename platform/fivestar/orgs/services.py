"""Changing the organisation tree: create, edit, move, deactivate and reactivate.

Services flush, never commit; they refuse with `ServiceError` (nothing changed) and write one audit
event per change in the caller's transaction. The tree keeps a materialised `path` per node, so a
move rewrites the paths of a whole subtree with one set-based UPDATE.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.enums import OrgKind
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.kernel import events
from fivestar.kernel.versioning import UNCHECKED, Submitted, expect_version, saving
from fivestar.orgs.models import Organisation
from fivestar.orgs.structure import kind_label, placement_problem
from fivestar.tenancy import require_tenant_id

ORG_FIELDS = ("kind", "name", "code", "parent_id", "path", "sort_order", "active")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
NAME_MAX = 120
# Prefixes of generated codes, one letter per kind, so generated codes read like the office's own.
CODE_PREFIX: dict[OrgKind, str] = {
    OrgKind.COMMITTEE: "ROOT",
    OrgKind.PARTY_COMMITTEE: "P",
    OrgKind.GENERAL_BRANCH: "G",
    OrgKind.BRANCH: "B",
    OrgKind.RETIREE_BRANCH: "R",
}


def _snapshot(org: Organisation) -> dict[str, Any]:
    return audit.snapshot(org, ORG_FIELDS)


def clean_name(name: str | None) -> str:
    text = re.sub(r"\s+", " ", (name or "").strip())
    if not text:
        raise ServiceError(_("请填写组织名称"), field="name")
    if len(text) > NAME_MAX:
        raise ServiceError(_("组织名称最长 %(n)d 个字", n=NAME_MAX), field="name")
    return text


def clean_code(code: str | None) -> str | None:
    """The code as typed (trimmed), None when blank (a code is then generated)."""
    text = (code or "").strip()
    if not text:
        return None
    if not CODE_PATTERN.match(text):
        raise ServiceError(_("组织代码只能包含字母、数字、下划线和连字符，最长 40 位"), field="code")
    return text


def _code_taken(session: Session, code: str, *, except_id: int | None = None) -> bool:
    statement = select(Organisation.id).where(Organisation.code == code)
    if except_id is not None:
        statement = statement.where(Organisation.id != except_id)
    return session.scalar(statement.limit(1)) is not None


def next_code(session: Session, kind: OrgKind) -> str:
    """The next free generated code for `kind` (`B001`, `B002`, …) in the current tenant."""
    prefix = CODE_PREFIX[kind]
    codes = session.scalars(select(Organisation.code).where(Organisation.code.startswith(prefix, autoescape=True)))
    numbers = [int(code[len(prefix) :]) for code in codes if code[len(prefix) :].isdigit()]
    return f"{prefix}{(max(numbers) if numbers else 0) + 1:03d}"


def _sibling_named(session: Session, parent_id: int | None, name: str, *, except_id: int | None = None) -> bool:
    statement = select(Organisation.id).where(Organisation.parent_id == parent_id, Organisation.name == name)
    if except_id is not None:
        statement = statement.where(Organisation.id != except_id)
    return session.scalar(statement.limit(1)) is not None


@contextmanager
def _writing(session: Session, code: str) -> Iterator[None]:
    """Make the block's changes in a savepoint, so a code taken by a concurrent request, or a concurrent
    save of the same organisation (its version moved on), is a message rather than a 500 and the
    session stays usable."""
    try:
        with saving(session):
            yield
    except IntegrityError:
        raise ServiceError(_("组织代码 %(code)s 已被使用", code=code), field="code") from None


def create_org(
    session: Session,
    *,
    kind: OrgKind,
    parent: Organisation,
    name: str,
    code: str | None = None,
    sort_order: int = 0,
) -> Organisation:
    """Add an organisation under `parent`. A blank code is generated; codes are unique per tenant."""
    require_tenant_id()
    kind = OrgKind(kind)
    problem = placement_problem(kind, parent.kind)
    if problem:
        raise ServiceError(problem, field="kind" if kind is OrgKind.COMMITTEE else "parent_id")
    if not parent.active:
        raise ServiceError(_("上级组织已停用，不能在其下新建组织"), field="parent_id")
    name = clean_name(name)
    wanted = clean_code(code)
    if wanted is not None and _code_taken(session, wanted):
        raise ServiceError(_("组织代码 %(code)s 已被使用", code=wanted), field="code")
    if _sibling_named(session, parent.id, name):
        raise ServiceError(_("同一上级组织下已有名为“%(name)s”的组织", name=name), field="name")
    final_code = wanted or next_code(session, kind)
    org = Organisation(
        parent_id=parent.id, kind=kind, name=name, code=final_code, sort_order=sort_order, path="", active=True
    )
    with _writing(session, final_code):
        session.add(org)
    org.path = f"{parent.path}{org.id}/"
    session.flush()
    audit.record(session, "org.create", org, after=_snapshot(org))
    return org


def _active_member_count(session: Session, org: Organisation) -> int:
    # Members stand on organisations, not the other way round: ask the people package (kernel.events).
    return events.answers_total(events.count_members_in_org.send(org, session=session, active_only=True))


def _active_child_count(session: Session, org: Organisation) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Organisation).where(
                Organisation.parent_id == org.id, Organisation.active.is_(True)
            )
        )
        or 0
    )


def _parent_of(session: Session, org: Organisation) -> Organisation | None:
    if org.parent_id is None:
        return None
    return session.scalar(select(Organisation).where(Organisation.id == org.parent_id))


def _child_kinds(session: Session, org: Organisation) -> set[OrgKind]:
    return set(session.scalars(select(Organisation.kind).where(Organisation.parent_id == org.id).distinct()))


def update_org(
    session: Session,
    org: Organisation,
    *,
    name: str,
    code: str | None = None,
    sort_order: int | None = None,
    kind: OrgKind | None = None,
    version: Submitted = UNCHECKED,
) -> Organisation:
    """Rename or re-code an organisation (the root committee too), or change its kind.

    A kind may change only where the tree stays valid: the node must still fit under its parent,
    its children under it, and members stay only in branches. The code stays when left blank.
    `version` is what the edit form sent: a page opened before someone else's save is refused.
    """
    require_tenant_id()
    expect_version(org, version)
    before = _snapshot(org)
    name = clean_name(name)
    wanted = clean_code(code)
    new_kind = OrgKind(kind) if kind is not None else org.kind
    if new_kind is not org.kind:
        if org.kind is OrgKind.COMMITTEE or new_kind is OrgKind.COMMITTEE:
            raise ServiceError(_("工委是组织树的根，不能更改类型"), field="kind")
        parent = _parent_of(session, org)
        problem = placement_problem(new_kind, parent.kind if parent is not None else None)
        if problem:
            raise ServiceError(problem, field="kind")
        for child_kind in _child_kinds(session, org):
            if placement_problem(child_kind, new_kind):
                raise ServiceError(
                    _("该组织下有%(child)s，不能改为%(kind)s", child=kind_label(child_kind), kind=kind_label(new_kind)),
                    field="kind",
                )
        if org.kind.holds_members and not new_kind.holds_members:
            member_records = events.count_members_in_org.send(org, session=session, active_only=False)
            if events.answers_total(member_records):
                raise ServiceError(
                    _("该组织下有党员记录，不能改为%(kind)s", kind=kind_label(new_kind)), field="kind"
                )
    if wanted is not None and wanted != org.code and _code_taken(session, wanted, except_id=org.id):
        raise ServiceError(_("组织代码 %(code)s 已被使用", code=wanted), field="code")
    if name != org.name and _sibling_named(session, org.parent_id, name, except_id=org.id):
        raise ServiceError(_("同一上级组织下已有名为“%(name)s”的组织", name=name), field="name")
    changes: dict[str, Any] = {"name": name, "kind": new_kind}
    if wanted is not None:
        changes["code"] = wanted
    if sort_order is not None:
        changes["sort_order"] = sort_order
    changes = {key: value for key, value in changes.items() if getattr(org, key) != value}
    if not changes:
        raise ServiceError(_("没有需要保存的修改"))
    with _writing(session, wanted or org.code):
        for key, value in changes.items():
            setattr(org, key, value)
    after = _snapshot(org)
    audit.record(session, "org.update", org, before=before, after=after)
    return org


def move_org(
    session: Session,
    org: Organisation,
    new_parent: Organisation,
    *,
    reason: str | None = None,
    version: Submitted = UNCHECKED,
) -> int:
    """Put `org` and its whole subtree under `new_parent`; returns how many paths were rewritten.

    The paths of the node and every descendant change with one UPDATE. A bulk UPDATE is not
    covered by the tenant hook's row filtering, so it names `tenant_id` itself. The descendants'
    versions do not move: their own fields are unchanged, only where the tree stores them.
    """
    tenant_id = require_tenant_id()
    expect_version(org, version)
    if org.kind is OrgKind.COMMITTEE or org.parent_id is None:
        raise ServiceError(_("工委是组织树的根，不能新建或移动"))
    if new_parent.tenant_id != org.tenant_id:
        raise ServiceError(_("请选择上级组织"), field="parent_id")
    if new_parent.id == org.parent_id:
        raise ServiceError(_("该组织已在所选上级组织之下"), field="parent_id")
    if new_parent.path.startswith(org.path):
        raise ServiceError(_("不能把组织移到它自己或它的下级组织之下"), field="parent_id")
    problem = placement_problem(org.kind, new_parent.kind)
    if problem:
        raise ServiceError(problem, field="parent_id")
    if not new_parent.active:
        raise ServiceError(_("目标上级组织已停用"), field="parent_id")
    before = _snapshot(org)
    old_prefix = org.path
    new_prefix = f"{new_parent.path}{org.id}/"
    with saving(session):
        org.parent_id = new_parent.id
    result = session.execute(
        update(Organisation)
        .where(Organisation.tenant_id == tenant_id, Organisation.path.startswith(old_prefix, autoescape=True))
        .values(path=literal(new_prefix) + func.substr(Organisation.path, len(old_prefix) + 1))
        .execution_options(synchronize_session="fetch")
    )
    rewritten = int(result.rowcount)  # type: ignore[attr-defined]
    session.refresh(org, ["path"])
    audit.record(
        session,
        "org.move",
        org,
        before=before,
        after={**_snapshot(org), "subtree_paths_rewritten": rewritten},
        reason=(reason or "").strip() or None,
    )
    return rewritten


def deactivate_org(
    session: Session, org: Organisation, *, reason: str | None = None, version: Submitted = UNCHECKED
) -> Organisation:
    """Stop using an organisation. Refused while it still has active members or active children."""
    require_tenant_id()
    expect_version(org, version)
    if org.kind is OrgKind.COMMITTEE:
        raise ServiceError(_("工委是组织树的根，不能停用"))
    if not org.active:
        raise ServiceError(_("该组织已停用"))
    members = _active_member_count(session, org)
    if members:
        raise ServiceError(_("该组织还有 %(n)d 名在册党员，请先将其转出或调到其他支部后再停用", n=members))
    children = _active_child_count(session, org)
    if children:
        raise ServiceError(_("该组织还有 %(n)d 个下级组织在用，请先停用或移走下级组织", n=children))
    before = _snapshot(org)
    with saving(session):
        org.active = False
    audit.record(
        session, "org.deactivate", org, before=before, after=_snapshot(org), reason=(reason or "").strip() or None
    )
    return org


def reactivate_org(
    session: Session, org: Organisation, *, reason: str | None = None, version: Submitted = UNCHECKED
) -> Organisation:
    """Use an organisation again; its parent must be active (an active node never hangs under a
    stopped one, so the tree pages never hide an active branch)."""
    require_tenant_id()
    expect_version(org, version)
    if org.active:
        raise ServiceError(_("该组织正在使用中"))
    parent = _parent_of(session, org)
    if parent is not None and not parent.active:
        raise ServiceError(_("上级组织已停用，请先启用上级组织"))
    before = _snapshot(org)
    with saving(session):
        org.active = True
    audit.record(
        session, "org.reactivate", org, before=before, after=_snapshot(org), reason=(reason or "").strip() or None
    )
    return org
