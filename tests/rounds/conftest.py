"""Fixtures for the member round: a district with branches, members and accounts, and a round."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from fivestar.enums import OrgKind, Position, Role
from fivestar.timekeeping import clock

# Inside a quarter well after the previous one ended, on a working day (Asia/Shanghai).
OPENING_DAY = dt.datetime(2026, 4, 7, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture
def frozen_now() -> Any:
    """Freeze the platform clock at the opening day; tests move it with `frozen_now.move(...)`."""

    class Clock:
        def __init__(self) -> None:
            self.at = OPENING_DAY
            self._cm = clock.frozen(self.at)
            self._cm.__enter__()

        def move(self, to: dt.datetime) -> None:
            self._cm.__exit__(None, None, None)
            self.at = to
            self._cm = clock.frozen(to)
            self._cm.__enter__()

        def close(self) -> None:
            self._cm.__exit__(None, None, None)

    c = Clock()
    yield c
    c.close()


@pytest.fixture
def district(
    session: Session, create_tenant: Any, create_org: Any, create_member: Any, create_account: Any
) -> dict[str, Any]:
    """A district on the notice's illustrative rules: two branches of three members, a retirees'
    branch, and an account for every role involved in a member round."""
    tenant = create_tenant(slug="round-district", name="轮次测试工委")
    party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="区财政局机关党委", code="P01")
    one = create_org(tenant, OrgKind.BRANCH, parent=party, name="第一党支部", code="B01")
    two = create_org(tenant, OrgKind.BRANCH, parent=party, name="第二党支部", code="B02")
    retirees = create_org(tenant, OrgKind.RETIREE_BRANCH, parent=party, name="离退休党支部", code="R01")
    ones = [
        create_member(tenant, one, name="赵书记", member_no="A001", position=Position.SECRETARY),
        create_member(tenant, one, name="钱支委", member_no="A002", position=Position.COMMITTEE_MEMBER),
        create_member(tenant, one, name="孙党员", member_no="A003"),
    ]
    twos = [create_member(tenant, two, name=f"李{i}", member_no=f"B00{i}") for i in range(1, 4)]
    retired = [create_member(tenant, retirees, name="周老", member_no="R001")]
    return {
        "tenant": tenant,
        "party": party,
        "one": one,
        "two": two,
        "retirees": retirees,
        "ones": ones,
        "twos": twos,
        "retired": retired,
        "admin": create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="gongwei"),
        "committee": create_account(tenant, roles=[(Role.COMMITTEE_MEMBER, None)], username="weiyuan"),
        "secretary": create_account(
            tenant, roles=[(Role.BRANCH_SECRETARY, one), (Role.MEMBER, None)], member=ones[0], username="shuji"
        ),
        "branch_committee": create_account(
            tenant, roles=[(Role.BRANCH_COMMITTEE, one), (Role.MEMBER, None)], member=ones[1], username="zhiwei"
        ),
        "member": create_account(tenant, roles=[(Role.MEMBER, None)], member=ones[2], username="dangyuan"),
        "other_secretary": create_account(tenant, roles=[(Role.BRANCH_SECRETARY, two)], username="shuji2"),
        "inspector": create_account(tenant, roles=[(Role.INSPECTOR, None)], username="ducha"),
    }


@pytest.fixture
def opened(session: Session, district: dict[str, Any], frozen_now: Any) -> dict[str, Any]:
    """The district with its 2026Q1 member round opened on OPENING_DAY."""
    from fivestar.member_rounds.opening import open_round
    from fivestar.tenancy import tenant_context

    with tenant_context(district["tenant"].id):
        result = open_round(session, district["tenant"])
        session.flush()
    return {**district, "round": result.round, "opened": result}
