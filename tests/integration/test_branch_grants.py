"""A member who changes branch keeps no role of the branch they left — on the member page and by an import —
while a role that still covers the new branch stays; each revocation is audited and ends their logins."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts.models import Account, AuthSession
from fivestar.accounts.sessions import start_session
from fivestar.audit.models import AuditEvent
from fivestar.enums import OrgKind, Role
from fivestar.imports.services import import_workbook
from fivestar.people import services as people
from fivestar.tenancy import tenant_context
from tests.integration.test_import_service import filled_template, member


@pytest.fixture
def world(two_tenants: dict[str, Any], create_org: Any, create_account: Any) -> dict[str, Any]:
    a = dict(two_tenants["a"])
    a["health"] = create_org(a["tenant"], OrgKind.PARTY_COMMITTEE, name="卫健委机关党委", code="P002")
    a["health_branch"] = create_org(a["tenant"], OrgKind.BRANCH, parent=a["health"], name="卫健委第一支部", code="B101")
    a["organiser"] = create_account(
        a["tenant"],
        roles=[(Role.ORG_STAFF, a["party"]), (Role.BRANCH_COMMITTEE, a["branch"])],
        member=a["members"][1],
        username="organiser",
    )
    # ids read once: the tests expire the session to see what the services wrote
    a["ids"] = {key: a[key].id for key in ("party", "branch", "retirees", "health_branch", "secretary")}
    return a


def _roles(session: Session, world: dict[str, Any], username: str) -> set[tuple[Role, int | None]]:
    with tenant_context(world["tenant"].id):
        session.expire_all()
        account = session.scalar(select(Account).where(Account.username == username))
        assert account is not None
        return {(grant.role, grant.organisation_id) for grant in account.grants}


def _revocations(session: Session, world: dict[str, Any]) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.tenant_id == world["tenant"].id, AuditEvent.action == "account.role_revoke")
            .order_by(AuditEvent.id)
        )
    )


def test_the_secretary_moved_away_loses_the_old_branch_and_their_logins(
    session: Session, world: dict[str, Any]
) -> None:
    secretary, mover = world["secretary"], world["members"][0]
    token = start_session(session, account=secretary, hours=8)
    with tenant_context(world["tenant"].id):
        people.move_member(session, mover, world["retirees"], reason="工作调动")
    ids = world["ids"]
    assert _roles(session, world, "secretary") == set()
    (event,) = _revocations(session, world)
    assert event.object_id == str(ids["secretary"]) and event.reason == "工作调动"
    assert event.before == {
        "grant_id": event.before["grant_id"],
        "role": "branch_secretary",
        "organisation_id": ids["branch"],
    }
    assert event.after["moved_from"] == ids["branch"] and event.after["moved_to"] == ids["retirees"]
    assert event.after["sessions_ended"] == 1
    ended = session.scalar(select(AuthSession.revoked_at).where(AuthSession.account_id == ids["secretary"]))
    assert ended is not None and token


def test_a_role_that_still_covers_the_new_branch_stays(session: Session, world: dict[str, Any]) -> None:
    mover, ids = world["members"][1], world["ids"]
    with tenant_context(world["tenant"].id):
        people.move_member(session, mover, world["retirees"], reason="调整")  # still under the same 机关党委
    assert _roles(session, world, "organiser") == {(Role.ORG_STAFF, ids["party"])}
    with tenant_context(world["tenant"].id):
        people.move_member(session, mover, world["health_branch"], reason="调往卫健委")
    assert _roles(session, world, "organiser") == set()
    assert [e.before["role"] for e in _revocations(session, world)] == ["branch_committee", "org_staff"]
    assert _roles(session, world, "secretary") == {(Role.BRANCH_SECRETARY, ids["branch"])}  # not moved


def test_a_move_by_import_revokes_the_same_way(session: Session, world: dict[str, Any]) -> None:
    ids = world["ids"]
    workbook = filled_template(members=[member("NO001", "B002", name="张1"), member("NO002", "B001", name="张2")])
    report = import_workbook(session, world["tenant"], workbook, file_name="名单.xlsx")
    assert report.ok, report
    assert _roles(session, world, "secretary") == set()  # 张1 left 第一党支部
    assert _roles(session, world, "organiser") == {  # 张2 stayed: nothing revoked
        (Role.ORG_STAFF, ids["party"]),
        (Role.BRANCH_COMMITTEE, ids["branch"]),
    }
    (event,) = _revocations(session, world)
    assert event.object_id == str(ids["secretary"])
