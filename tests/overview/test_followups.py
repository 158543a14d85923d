"""The member follow-up overview: overdue first, what is missing, scoping (the committee sees the
district, a secretary their own branch; another branch or district answers 404), and that it only reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.accounts.principal import Grant, Principal
from fivestar.audit.models import AuditEvent
from fivestar.enums import Role
from fivestar.member_rounds.models import Mentorship, Rectification, TalkRecord
from fivestar.overview.followups import Status, follow_up_overview
from fivestar.tenancy import cross_tenant, tenant_context


def _principal(world: dict[str, Any], who: str) -> Principal:
    """The principal of one of the world's accounts, with its grants as the login would load them."""
    grants = {
        "committee": (Grant(Role.COMMITTEE_MEMBER),),
        "secretary": (Grant(Role.BRANCH_SECRETARY, world["j"][0].id, world["j"][0].path), Grant(Role.MEMBER)),
        "staff": (Grant(Role.ORG_STAFF, world["yi"].id, world["yi"].path),),
    }[who]
    return Principal(
        session_token="t", display_name=who, tenant_id=world["tenant"].id, account_id=world[who].id, grants=grants
    )


def _overview(session: Session, world: dict[str, Any], who: str, **kw: Any) -> Any:
    with tenant_context(world["tenant"].id):
        return follow_up_overview(session, _principal(world, who), dt.date(2026, 4, 20), **kw)


def test_overdue_first_then_missing(session: Session, world: dict[str, Any]) -> None:
    overview = _overview(session, world, "committee")
    assert overview.chosen is not None and overview.chosen.period_key == "2026Q1"
    names = [(line.name, line.status) for line in overview.lines]
    assert names == [
        ("甲一老党员", Status.OVERDUE),  # 2025Q4's deadline 2026-01-15, still without a result
        ("甲二党员", Status.OVERDUE),  # due 2026-02-01
        ("甲一党员4", Status.OVERDUE),  # due 2026-03-01
        ("甲一党员3", Status.TODO),  # one star, nothing recorded
        ("甲一党员5", Status.WAITING),  # due 2026-06-30
        ("甲一党员6", Status.DONE),  # result recorded
        ("甲一党员2", Status.DONE),  # mentor and talk recorded
    ]
    lines = {line.name: line for line in overview.lines}
    assert lines["甲二党员"].days_overdue == 78 and lines["甲一党员4"].days_overdue == 50
    assert lines["甲一党员3"].missing == ["未安排帮扶指导员", "未谈话"]
    assert lines["甲一党员2"].mentors == ["甲一党员1"] and lines["甲一党员2"].talks == 1
    assert lines["甲一党员6"].outcome == "已整改"
    assert lines["甲一老党员"].earlier_period == "2025年第四季度" and lines["甲二党员"].earlier_period is None
    assert overview.overdue == 3 and overview.todo == 1
    summary = {b.branch_name: b for b in overview.branches}
    assert set(summary) == {"甲1支部", "甲2支部"}  # 甲3 has no settled results
    one = summary["甲1支部"]
    assert (one.members, one.mentors_needed, one.mentors_assigned, one.talks_needed, one.talks_held) == (6, 2, 1, 2, 1)
    assert (one.rectifications_needed, one.rectifications_set, one.rectifications_done, one.overdue) == (4, 4, 1, 2)
    assert summary["甲1支部"].org_name == "甲机关党委"


def test_an_older_round_can_be_chosen(session: Session, world: dict[str, Any]) -> None:
    old = _overview(session, world, "committee", round_id=None)
    assert [r.period_key for r in old.rounds] == ["2026Q1", "2025Q4"]
    earlier = _overview(session, world, "committee", round_id=old.rounds[1].round_id)
    assert earlier.chosen is not None and earlier.chosen.period_key == "2025Q4"
    assert [line.name for line in earlier.lines] == ["甲一老党员"]


def test_scope(session: Session, world: dict[str, Any]) -> None:
    mine = _overview(session, world, "secretary")
    assert {line.branch_name for line in mine.lines} == {"甲1支部"}
    assert len(mine.lines) == 6
    assert _overview(session, world, "staff").lines == []  # 乙's staff: nothing of 甲


def _written(session: Session) -> tuple[int, ...]:
    """The follow-up rows and their audit events: reading the overview changes none of them."""
    with cross_tenant("test: every tenant's rows"):
        counts = [session.scalar(select(func.count()).select_from(m)) for m in (Mentorship, TalkRecord, Rectification)]
        counts.append(session.scalar(select(func.count()).where(AuditEvent.action.like("evaluation.%"))))
    return tuple(int(c or 0) for c in counts)


def test_pages_and_refusals(
    client: FlaskClient,
    login: Any,
    world: dict[str, Any],
    session: Session,
    create_tenant: Any,
    create_account: Any,
) -> None:
    j = world["j"]
    before = _written(session)
    login(world["tenant"], world["committee"])
    html = client.get("/t/overview/overview/followups").get_data(as_text=True)
    assert html.index("甲一老党员") < html.index("甲二党员") < html.index("甲一党员4") < html.index("甲一党员3")
    assert "/followups#e" not in html and "由支部记录" in html  # the committee reads; the branch records
    assert client.get(f"/t/overview/overview/followups/branches/{j[0].id}").status_code == 200
    assert client.get("/t/overview/overview/followups?round=999999").status_code == 404
    client.post("/t/overview/logout")

    login(world["tenant"], world["secretary"])
    own = client.get("/t/overview/overview/followups").get_data(as_text=True)
    assert "甲一党员4" in own and "甲二党员" not in own
    assert f"/t/overview/rounds/branch/{world['rb1'].id}/followups#e{world['evaluations'][3].id}" in own
    branch = client.get(f"/t/overview/overview/followups/branches/{j[0].id}")
    assert branch.status_code == 200 and "甲一党员3" in branch.get_data(as_text=True)
    assert client.get(f"/t/overview/overview/followups/branches/{j[1].id}").status_code == 404  # another branch
    assert client.get(f"/t/overview/overview/followups/branches/{world['jia'].id}").status_code == 404  # not a branch
    client.post("/t/overview/logout")

    login(world["tenant"], world["member"])
    assert client.get("/t/overview/overview/followups").status_code == 403
    assert client.get(f"/t/overview/overview/followups/branches/{j[0].id}").status_code == 403  # sees, may not
    client.post("/t/overview/logout")

    other = create_tenant(slug="elsewhere")
    admin = create_account(other, roles=[(Role.TENANT_ADMIN, None)], username="other-admin")
    login(other, admin)
    assert client.get(f"/t/elsewhere/overview/followups/branches/{j[0].id}").status_code == 404  # another district
    assert "甲一党员4" not in client.get("/t/elsewhere/overview/followups").get_data(as_text=True)
    # Nothing was written by reading.
    assert _written(session) == before
