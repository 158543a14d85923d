"""A district for the overview: two 机关党委 (one with a 党总支), a branch directly under the committee,
finalised years with decided levels, and member rounds with follow-ups. Numbers chosen so that every
line of the advanced report can be worked out by hand (see test_advanced.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from fivestar.enums import OrgKind, Role
from fivestar.member_rounds.models import BranchStep
from fivestar.timekeeping import clock
from tests.overview import overview_support as seed

TODAY = dt.datetime(2026, 4, 20, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture
def frozen_today() -> Any:
    with clock.frozen(TODAY):
        yield TODAY


def build_tree(session: Session, create_tenant: Any, create_org: Any, slug: str, extra: int = 0) -> dict[str, Any]:
    """The organisations and three branch years; `extra` more four-star branches under 甲 (for the
    statement counts at two sizes)."""
    tenant = create_tenant(slug=slug, name="概览测试工委")
    jia = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="甲机关党委", code="P01")
    yi = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="乙机关党委", code="P02")
    zong = create_org(tenant, OrgKind.GENERAL_BRANCH, parent=yi, name="乙党总支", code="Z01")
    j = [create_org(tenant, OrgKind.BRANCH, parent=jia, name=f"甲{i}支部", code=f"J{i:02d}") for i in range(1, 7)]
    y = [create_org(tenant, OrgKind.BRANCH, parent=yi, name=f"乙{i}支部", code=f"Y{i:02d}") for i in range(1, 7)]
    g = [create_org(tenant, OrgKind.BRANCH, parent=zong, name=f"总支{i}支部", code=f"G{i:02d}") for i in range(1, 4)]
    more = [create_org(tenant, OrgKind.BRANCH, parent=jia, name=f"甲增{i}", code=f"X{i:03d}") for i in range(extra)]
    direct = create_org(tenant, OrgKind.BRANCH, name="直属支部", code="D01")
    retirees = create_org(tenant, OrgKind.RETIREE_BRANCH, parent=jia, name="离退休支部", code="R01")
    levels: dict[Any, int | None] = dict(zip(j[:5], (5, 4, 4, 4, 3), strict=True))  # j[5] has no level
    levels |= dict(zip(y, (5, 4, 4, 4, 4, 3), strict=True))
    levels |= dict(zip(g, (4, 4, 2), strict=True))
    levels |= {b: 4 for b in more}
    levels[direct] = 5
    seed.branch_year(session, tenant, 2024, {j[0]: 1, direct: 1, y[5]: 5})
    seed.branch_year(session, tenant, 2025, levels, full_scores=(j[0], direct))
    seed.branch_year(session, tenant, 2026, {j[0]: None, j[1]: None}, finalised=False)
    return {
        "tenant": tenant,
        "jia": jia,
        "yi": yi,
        "zong": zong,
        "j": j,
        "y": y,
        "g": g,
        "direct": direct,
        "retirees": retirees,
        "more": more,
    }


def add_follow_ups(session: Session, world: dict[str, Any], create_member: Any, extra: int = 0) -> dict[str, Any]:
    """2025Q4 closed, 2026Q1 with results in 甲1 and 甲2 (on notice) and 甲3 still self-assessing."""
    tenant, j = world["tenant"], world["j"]
    m = [create_member(tenant, j[0], name=f"甲一党员{i}", member_no=f"A{i:03d}") for i in range(1, 7)]
    m7 = create_member(tenant, j[1], name="甲二党员", member_no="B001")
    m8 = create_member(tenant, j[2], name="甲三党员", member_no="C001")
    lots = [create_member(tenant, j[1], name=f"甲二多{i}", member_no=f"B{i + 100:03d}") for i in range(extra)]
    old = seed.member_round(session, tenant, "2025Q4", dt.date(2025, 10, 1), dt.date(2025, 12, 31), closed=True)
    rb_old = seed.round_branch(session, tenant, old, j[0], BranchStep.FINALISED)
    for member, level in zip(m[:3], (5, 4, 3), strict=True):
        seed.evaluation(session, tenant, rb_old, member, level)
    veteran = create_member(tenant, j[0], name="甲一老党员", member_no="A900")
    carried = seed.evaluation(session, tenant, rb_old, veteran, None, rated=False)
    seed.rectification(session, tenant, carried, dt.date(2026, 1, 15))  # still open: carried into 2026Q1
    now = seed.member_round(session, tenant, "2026Q1", dt.date(2026, 1, 1), dt.date(2026, 3, 31))
    rb1 = seed.round_branch(session, tenant, now, j[0])
    rb2 = seed.round_branch(session, tenant, now, j[1])
    rb3 = seed.round_branch(session, tenant, now, j[2], BranchStep.SELF)
    e = [
        seed.evaluation(session, tenant, rb1, m[0], 5),
        seed.evaluation(session, tenant, rb1, m[1], 2),  # mentor and talk recorded: done
        seed.evaluation(session, tenant, rb1, m[2], 1),  # nothing recorded: to do
        seed.evaluation(session, tenant, rb1, m[3], None, rated=False),  # deadline passed 2026-03-01
        seed.evaluation(session, tenant, rb1, m[4], None, rated=False),  # deadline ahead
        seed.evaluation(session, tenant, rb1, m[5], None, rated=False),  # result recorded
    ]
    e7 = seed.evaluation(session, tenant, rb2, m7, None, rated=False)  # deadline passed 2026-02-01
    seed.evaluation(session, tenant, rb3, m8, None, rated=False)  # not settled: not listed
    for member in lots:
        ev = seed.evaluation(session, tenant, rb2, member, 2)
        seed.talk(session, tenant, ev, dt.date(2026, 4, 10))
        seed.mentor(session, tenant, ev, m7)
    seed.mentor(session, tenant, e[1], m[0])
    seed.talk(session, tenant, e[1], dt.date(2026, 4, 12))
    seed.rectification(session, tenant, e[3], dt.date(2026, 3, 1))
    seed.rectification(session, tenant, e[4], dt.date(2026, 6, 30))
    seed.rectification(session, tenant, e[5], dt.date(2026, 3, 15), done=dt.date(2026, 3, 14))
    seed.rectification(session, tenant, e7, dt.date(2026, 2, 1))
    return {**world, "members": m, "m7": m7, "m8": m8, "round": now, "rb1": rb1, "rb2": rb2, "evaluations": e}


def add_accounts(world: dict[str, Any], create_account: Any, create_member: Any) -> dict[str, Any]:
    tenant, j = world["tenant"], world["j"]
    own = world.get("members", [None])[0] or create_member(tenant, j[0], name="书记")
    return {
        **world,
        "admin": create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="gw"),
        "committee": create_account(tenant, roles=[(Role.COMMITTEE_MEMBER, None)], username="wy"),
        "inspector": create_account(tenant, roles=[(Role.INSPECTOR, None)], username="dc"),
        "secretary": create_account(
            tenant, roles=[(Role.BRANCH_SECRETARY, j[0]), (Role.MEMBER, None)], member=own, username="sj"
        ),
        "other_secretary": create_account(tenant, roles=[(Role.BRANCH_SECRETARY, j[1])], username="sj2"),
        "staff": create_account(tenant, roles=[(Role.ORG_STAFF, world["yi"])], username="yi-staff"),
        "member": create_account(
            tenant, roles=[(Role.MEMBER, None)], member=create_member(tenant, j[0], name="普通"), username="dy"
        ),
    }


@pytest.fixture
def world(
    session: Session, create_tenant: Any, create_org: Any, create_member: Any, create_account: Any, frozen_today: Any
) -> dict[str, Any]:
    tree = build_tree(session, create_tenant, create_org, "overview")
    return add_accounts(add_follow_ups(session, tree, create_member), create_account, create_member)
