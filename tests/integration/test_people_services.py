"""Member services against a real database: create, edit with optimistic locking, move, transfer out."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.enums import Gender, MemberStatus, OrgKind, Position, Standing
from fivestar.errors import ConflictError, ServiceError
from fivestar.people import services
from fivestar.people.models import Member
from fivestar.people.services import MemberInput
from fivestar.tenancy import tenant_context


def _last_event(session: Session, tenant: Any, action: str) -> AuditEvent:
    event = session.scalar(
        select(AuditEvent)
        .where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    assert event is not None, action
    return event


def _input(member: Member, **changes: Any) -> MemberInput:
    values = {
        "name": member.name,
        "gender": member.gender.value,
        "member_no": member.member_no,
        "phone": member.phone,
        "joined_on": member.joined_on,
        "standing": member.standing.value,
        "position": member.position.value,
        "note": member.note,
    }
    values.update(changes)
    return MemberInput(**values)


def test_create_parses_clerk_input_and_records_it(session: Session, two_tenants: dict[str, Any]) -> None:
    a = two_tenants["a"]
    with tenant_context(a["tenant"].id):
        member = services.create_member(
            session,
            a["retirees"],
            MemberInput(
                name=" 李  四 ",
                gender="男",
                member_no="R-001",
                phone="+86 139 0000 1111",
                joined_on="1978年7月1日",
                standing="正式",
                position="支部委员",
                note="  ",
            ),
        )
        assert (member.name, member.gender, member.phone) == ("李 四", Gender.MALE, "13900001111")
        assert member.joined_on == dt.date(1978, 7, 1)
        assert (member.standing, member.position, member.status) == (
            Standing.FULL,
            Position.COMMITTEE_MEMBER,
            MemberStatus.ACTIVE,
        )
        assert member.note is None and member.branch_id == a["retirees"].id and member.version == 1
        event = _last_event(session, a["tenant"], "member.create")
        assert event.object_id == str(member.id)
        assert event.after is not None
        assert (event.after["member_no"], event.after["joined_on"]) == ("R-001", "1978-07-01")


def test_create_refuses_non_branches_inactive_branches_and_bad_fields(
    session: Session, two_tenants: dict[str, Any], create_org: Any
) -> None:
    a = two_tenants["a"]
    good = {"name": "王五", "gender": "女", "member_no": "W001"}
    with tenant_context(a["tenant"].id):
        with pytest.raises(ServiceError) as refused:
            services.create_member(session, a["party"], MemberInput(**good))
        assert refused.value.field == "branch_id" and "党支部" in refused.value.message
        closed = create_org(a["tenant"], OrgKind.BRANCH, parent=a["party"], name="撤销支部", code="B9", active=False)
        with pytest.raises(ServiceError) as refused:
            services.create_member(session, closed, MemberInput(**good))
        assert "停用" in refused.value.message
        for field, value in [
            ("name", ""),
            ("gender", "未知"),
            ("member_no", "含 空格"),
            ("phone", "12345"),
            ("joined_on", "2010-13-01"),
            ("standing", "候补"),
            ("position", "主任"),
        ]:
            with pytest.raises(ServiceError) as refused:
                services.create_member(session, a["branch"], MemberInput(**{**good, field: value}))
            assert refused.value.field == field, field
        assert session.scalar(select(Member).where(Member.member_no == "W001")) is None


def test_member_no_is_unique_per_tenant_with_a_clear_message(session: Session, two_tenants: dict[str, Any]) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    with tenant_context(a["tenant"].id):
        with pytest.raises(ServiceError) as refused:
            services.create_member(session, a["branch"], MemberInput(name="重号", gender="男", member_no="NO001"))
        assert refused.value.field == "member_no" and "NO001" in refused.value.message
        with pytest.raises(ServiceError) as refused:
            services.update_member(
                session, a["members"][1], _input(a["members"][1], member_no="NO001"), version=a["members"][1].version
            )
        assert refused.value.field == "member_no"
        fresh = services.create_member(session, a["branch"], MemberInput(name="新党员", gender="男", member_no="NO100"))
    with tenant_context(b["tenant"].id):
        # the same number in another district is fine
        twin = services.create_member(session, b["branch"], MemberInput(name="新党员", gender="男", member_no="NO100"))
    assert fresh.id != twin.id and fresh.tenant_id != twin.tenant_id


def test_update_records_only_changed_fields_and_bumps_the_version(
    session: Session, two_tenants: dict[str, Any]
) -> None:
    a = two_tenants["a"]
    member = a["members"][1]
    with tenant_context(a["tenant"].id):
        services.update_member(
            session, member, _input(member, phone="13912345678", standing="预备党员"), version=member.version
        )
        assert member.version == 2 and member.phone == "13912345678" and member.standing is Standing.PROBATIONARY
        event = _last_event(session, a["tenant"], "member.update")
        assert event.before == {"phone": "13800000002", "standing": "full"}
        assert event.after == {"phone": "13912345678", "standing": "probationary"}
        with pytest.raises(ServiceError) as refused:
            services.update_member(session, member, _input(member), version=member.version)
        assert "没有需要保存的修改" in refused.value.message


def test_a_stale_version_is_a_conflict_and_changes_nothing(session: Session, two_tenants: dict[str, Any]) -> None:
    a = two_tenants["a"]
    member = a["members"][2]
    with tenant_context(a["tenant"].id):
        opened_at = member.version
        services.update_member(session, member, _input(member, name="张三丰"), version=opened_at)
        with pytest.raises(ConflictError) as refused:
            services.update_member(session, member, _input(member, name="张三"), version=opened_at)
        assert refused.value.status == 409 and "已被他人修改" in refused.value.message
        assert member.name == "张三丰"
        for call in (
            lambda: services.move_member(session, member, a["retirees"], reason="调整", version=opened_at),
            lambda: services.transfer_out(session, member, left_on="2024-01-01", reason="调离", version=opened_at),
        ):
            with pytest.raises(ConflictError):
                call()
        assert member.branch_id == a["branch"].id and member.is_active


def test_a_concurrent_save_between_load_and_flush_is_a_conflict(session: Session, two_tenants: dict[str, Any]) -> None:
    """The version column also catches a save that lands after the form was checked (StaleDataError)."""
    a = two_tenants["a"]
    member = a["members"][0]
    with tenant_context(a["tenant"].id):
        version = member.version
        # another request saves the same row behind this session's back
        session.connection().execute(
            update(Member.__table__)
            .where(Member.__table__.c.id == member.id, Member.__table__.c.tenant_id == a["tenant"].id)
            .values(name="别人改的", version=version + 1)
        )
        with pytest.raises(ConflictError):
            services.update_member(session, member, _input(member, name="我改的"), version=version)
        session.rollback()


def test_move_needs_a_reason_and_a_member_branch(session: Session, two_tenants: dict[str, Any]) -> None:
    a = two_tenants["a"]
    member = a["members"][1]
    with tenant_context(a["tenant"].id):
        with pytest.raises(ServiceError) as refused:
            services.move_member(session, member, a["retirees"], reason="  ")
        assert refused.value.field == "reason"
        with pytest.raises(ServiceError):
            services.move_member(session, member, a["party"], reason="调整")
        with pytest.raises(ServiceError):
            services.move_member(session, member, a["branch"], reason="调整")
        services.move_member(session, member, a["retirees"], reason="退休", version=member.version)
        assert member.branch_id == a["retirees"].id
        event = _last_event(session, a["tenant"], "member.move")
        assert event.reason == "退休"
        assert event.before == {"branch_id": a["branch"].id} and event.after == {"branch_id": a["retirees"].id}


def test_transfer_out_and_back(session: Session, two_tenants: dict[str, Any]) -> None:
    a = two_tenants["a"]
    member = a["members"][1]
    with tenant_context(a["tenant"].id):
        with pytest.raises(ServiceError) as refused:
            services.transfer_out(session, member, left_on="", reason="调离")
        assert refused.value.field == "left_on"
        with pytest.raises(ServiceError) as refused:
            services.transfer_out(session, member, left_on="2000-01-01", reason="调离")  # before joining (2010)
        assert refused.value.field == "left_on"
        with pytest.raises(ServiceError) as refused:
            services.transfer_out(session, member, left_on="2024-03-01", reason="")
        assert refused.value.field == "reason"
        services.transfer_out(session, member, left_on="2024-03-01", reason="调往市委办")
        assert member.status is MemberStatus.TRANSFERRED_OUT and member.left_on == dt.date(2024, 3, 1)
        event = _last_event(session, a["tenant"], "member.transfer_out")
        assert event.reason == "调往市委办"
        assert event.before == {"status": "active", "left_on": None}
        assert event.after == {"status": "transferred_out", "left_on": "2024-03-01"}
        with pytest.raises(ServiceError):
            services.transfer_out(session, member, left_on="2024-03-02", reason="again")
        with pytest.raises(ServiceError):
            services.move_member(session, member, a["retirees"], reason="调整")
        # back, into another branch, with a reason
        with pytest.raises(ServiceError):
            services.reactivate_member(session, member, reason="")
        services.reactivate_member(session, member, reason="转回", branch=a["retirees"])
        assert member.is_active and member.left_on is None and member.branch_id == a["retirees"].id
        event = _last_event(session, a["tenant"], "member.reactivate")
        assert event.reason == "转回" and event.after is not None and event.after["branch_id"] == a["retirees"].id
        with pytest.raises(ServiceError):
            services.reactivate_member(session, member, reason="again")


def test_reactivation_refuses_a_stopped_branch(session: Session, two_tenants: dict[str, Any], create_org: Any) -> None:
    a = two_tenants["a"]
    member = a["members"][1]
    closing = create_org(a["tenant"], OrgKind.BRANCH, parent=a["party"], name="将撤销支部", code="B010")
    with tenant_context(a["tenant"].id):
        services.move_member(session, member, closing, reason="调整")
        services.transfer_out(session, member, left_on="2024-01-02", reason="调离")
        closing.active = False
        session.flush()
        with pytest.raises(ServiceError) as refused:
            services.reactivate_member(session, member, reason="转回")
        assert "停用" in refused.value.message
        services.reactivate_member(session, member, reason="转回", branch=a["branch"])
        assert member.branch_id == a["branch"].id
