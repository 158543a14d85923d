"""Organisation services against a real database: create, edit, move (set-based), deactivate."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.enums import MemberStatus, OrgKind
from fivestar.errors import ServiceError
from fivestar.orgs import services
from fivestar.orgs.models import Organisation
from fivestar.tenancy import cross_tenant, tenant_context


def _events(session: Session, tenant: Any, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
    )


def _root(session: Session) -> Organisation:
    root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
    assert root is not None
    return root


def test_create_generates_codes_and_paths(session: Session, create_tenant: Any) -> None:
    tenant = create_tenant()
    with tenant_context(tenant.id):
        root = _root(session)
        party = services.create_org(session, kind=OrgKind.PARTY_COMMITTEE, parent=root, name="  教育局  机关党委 ")
        first = services.create_org(session, kind=OrgKind.BRANCH, parent=party, name="第一党支部")
        second = services.create_org(session, kind=OrgKind.BRANCH, parent=party, name="第二党支部", code="")
        retirees = services.create_org(session, kind=OrgKind.RETIREE_BRANCH, parent=party, name="离退休党支部")
        assert party.name == "教育局 机关党委"
        assert (party.code, first.code, second.code, retirees.code) == ("P001", "B001", "B002", "R001")
        assert party.path == f"{root.path}{party.id}/"
        assert first.path == f"{root.path}{party.id}/{first.id}/"
        events = _events(session, tenant, "org.create")
        assert [event.object_id for event in events][-4:] == [str(o.id) for o in (party, first, second, retirees)]
        assert events[-1].after is not None and events[-1].after["kind"] == "retiree_branch"


def test_create_refuses_bad_placement_duplicates_and_blank_names(session: Session, create_tenant: Any) -> None:
    tenant = create_tenant()
    with tenant_context(tenant.id):
        root = _root(session)
        branch = services.create_org(session, kind=OrgKind.BRANCH, parent=root, name="直属党支部", code="X-1")
        with pytest.raises(ServiceError) as refused:
            services.create_org(session, kind=OrgKind.BRANCH, parent=branch, name="支部下的支部")
        assert refused.value.field == "parent_id" and "不能设在" in refused.value.message
        with pytest.raises(ServiceError) as refused:
            services.create_org(session, kind=OrgKind.COMMITTEE, parent=root, name="第二个工委")
        assert "根" in refused.value.message
        with pytest.raises(ServiceError) as refused:
            services.create_org(session, kind=OrgKind.BRANCH, parent=root, name="另一支部", code="X-1")
        assert refused.value.field == "code" and "X-1" in refused.value.message
        with pytest.raises(ServiceError) as refused:
            services.create_org(session, kind=OrgKind.BRANCH, parent=root, name="直属党支部")
        assert refused.value.field == "name"
        with pytest.raises(ServiceError) as refused:
            services.create_org(session, kind=OrgKind.BRANCH, parent=root, name="   ")
        assert refused.value.field == "name"
        with pytest.raises(ServiceError) as refused:
            services.create_org(session, kind=OrgKind.BRANCH, parent=root, name="代码有空格", code="A B")
        assert refused.value.field == "code"


def test_codes_are_unique_per_tenant_not_globally(session: Session, two_tenants: dict[str, Any]) -> None:
    # Both districts already use P001/B001/B002: a new branch gets B003 in each, independently.
    for key in ("a", "b"):
        world = two_tenants[key]
        with tenant_context(world["tenant"].id):
            org = services.create_org(session, kind=OrgKind.BRANCH, parent=world["party"], name="新支部")
            assert org.code == "B003"


def test_update_renames_recodes_and_switches_branch_kind(session: Session, two_tenants: dict[str, Any]) -> None:
    world = two_tenants["a"]
    with tenant_context(world["tenant"].id):
        branch = world["branch"]
        services.update_org(session, branch, name="第一党支部（机关）", code="B101", sort_order=3)
        assert (branch.name, branch.code, branch.sort_order) == ("第一党支部（机关）", "B101", 3)
        event = _events(session, world["tenant"], "org.update")[-1]
        assert event.before is not None and event.before["code"] == "B001"
        assert event.after is not None and event.after["code"] == "B101"
        # a branch may become a retirees' branch (both hold members) but not a party committee
        services.update_org(session, branch, name=branch.name, kind=OrgKind.RETIREE_BRANCH)
        assert branch.kind is OrgKind.RETIREE_BRANCH
        with pytest.raises(ServiceError) as refused:
            services.update_org(session, branch, name=branch.name, kind=OrgKind.GENERAL_BRANCH)
        assert refused.value.field == "kind"
        with pytest.raises(ServiceError) as refused:
            services.update_org(session, branch, name=branch.name, code="B002")
        assert refused.value.field == "code"
        with pytest.raises(ServiceError):
            services.update_org(session, branch, name=branch.name)  # nothing changed


def test_root_can_be_renamed_but_not_moved_or_deactivated(session: Session, two_tenants: dict[str, Any]) -> None:
    world = two_tenants["a"]
    with tenant_context(world["tenant"].id):
        root = _root(session)
        services.update_org(session, root, name="区直机关工委（新）")
        assert root.name == "区直机关工委（新）"
        with pytest.raises(ServiceError):
            services.move_org(session, root, world["party"])
        with pytest.raises(ServiceError):
            services.deactivate_org(session, root)
        with pytest.raises(ServiceError):
            services.update_org(session, root, name=root.name, kind=OrgKind.PARTY_COMMITTEE)


def test_move_rewrites_the_whole_subtree_in_this_tenant_only(
    session: Session, two_tenants: dict[str, Any], create_org: Any
) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    tenant = a["tenant"]
    general = create_org(tenant, OrgKind.GENERAL_BRANCH, parent=a["party"], name="总支", code="G001")
    inner = create_org(tenant, OrgKind.BRANCH, parent=general, name="总支第一支部", code="G001-1")
    other_party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="卫健委机关党委", code="P002")
    b_paths_before = _paths(session, b["tenant"])
    with tenant_context(tenant.id):
        rewritten = services.move_org(session, general, other_party, reason="机构改革")
        assert rewritten == 2
        assert general.parent_id == other_party.id
        assert general.path == f"{other_party.path}{general.id}/"
        session.expire_all()
        inner = session.scalar(select(Organisation).where(Organisation.id == inner.id))
        assert inner is not None and inner.path == f"{other_party.path}{general.id}/{inner.id}/"
        event = _events(session, tenant, "org.move")[-1]
        assert event.reason == "机构改革"
        assert event.before is not None and event.before["parent_id"] == a["party"].id
        assert event.after is not None and event.after["parent_id"] == other_party.id
        assert event.after["subtree_paths_rewritten"] == 2
    assert _paths(session, b["tenant"]) == b_paths_before


def _paths(session: Session, tenant: Any) -> dict[int, str]:
    with cross_tenant("test compares another tenant's rows"):
        rows = session.execute(select(Organisation.id, Organisation.path).where(Organisation.tenant_id == tenant.id))
        return {row.id: row.path for row in rows}


def test_move_refuses_cycles_bad_kinds_same_parent_and_inactive_targets(
    session: Session, two_tenants: dict[str, Any], create_org: Any
) -> None:
    a = two_tenants["a"]
    tenant = a["tenant"]
    general = create_org(tenant, OrgKind.GENERAL_BRANCH, parent=a["party"], name="总支", code="G001")
    with tenant_context(tenant.id):
        with pytest.raises(ServiceError) as refused:
            services.move_org(session, a["party"], general)  # under its own descendant
        assert "下级" in refused.value.message
        with pytest.raises(ServiceError):
            services.move_org(session, general, general)
        with pytest.raises(ServiceError) as refused:
            services.move_org(session, general, a["branch"])
        assert "不能设在" in refused.value.message
        with pytest.raises(ServiceError) as refused:
            services.move_org(session, a["branch"], a["party"])
        assert refused.value.field == "parent_id"
        empty = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="撤销的党委", code="P009")
        services.deactivate_org(session, empty, reason="撤销")
        with pytest.raises(ServiceError) as refused:
            services.move_org(session, a["branch"], empty)
        assert "停用" in refused.value.message


def test_deactivate_refuses_with_active_members_or_children_then_reactivates(
    session: Session, two_tenants: dict[str, Any], create_org: Any
) -> None:
    a = two_tenants["a"]
    with tenant_context(a["tenant"].id):
        with pytest.raises(ServiceError) as refused:
            services.deactivate_org(session, a["branch"])
        assert "3 名在册党员" in refused.value.message
        with pytest.raises(ServiceError) as refused:
            services.deactivate_org(session, a["party"])
        assert "下级组织" in refused.value.message
        for member in a["members"]:
            member.status = MemberStatus.TRANSFERRED_OUT
        session.flush()
        services.deactivate_org(session, a["branch"], reason="合并")
        assert a["branch"].active is False
        event = _events(session, a["tenant"], "org.deactivate")[-1]
        assert event.reason == "合并" and event.before is not None and event.before["active"] is True
        with pytest.raises(ServiceError):
            services.deactivate_org(session, a["branch"])
        services.deactivate_org(session, a["retirees"])
        services.deactivate_org(session, a["party"])
        with pytest.raises(ServiceError) as refused:
            services.reactivate_org(session, a["branch"])
        assert "上级组织已停用" in refused.value.message
        services.reactivate_org(session, a["party"])
        services.reactivate_org(session, a["branch"], reason="恢复")
        assert a["branch"].active is True
        assert _events(session, a["tenant"], "org.reactivate")[-1].reason == "恢复"
        with pytest.raises(ServiceError):
            services.reactivate_org(session, a["branch"])
