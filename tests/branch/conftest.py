"""Fixtures for the branch rating: a district with branches under a 机关党委 and directly under the
committee, a retirees' branch, accounts for every role involved, and an opened round."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from fivestar.enums import OrgKind, Position, Role
from fivestar.kernel.rounds import seeding
from fivestar.timekeeping import clock

# 2026-01-06 09:00 Beijing: early in the year after the rated year 2025, before the rules' deadlines.
OPENING_DAY = dt.datetime(2026, 1, 6, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


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
    """A district on the notice's illustrative rules: branch `one` under a 机关党委 (`party`), branch
    `direct` directly under the committee, and a retirees' branch that is never branch-rated."""
    tenant = create_tenant(slug="branch-district", name="支部评定测试工委")
    party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="区财政局机关党委", code="P01")
    one = create_org(tenant, OrgKind.BRANCH, parent=party, name="预算科党支部", code="B01")
    direct = create_org(tenant, OrgKind.BRANCH, name="区档案馆党支部", code="B02")
    retirees = create_org(tenant, OrgKind.RETIREE_BRANCH, parent=party, name="离退休党支部", code="R01")
    members = [
        create_member(tenant, one, name="赵书记", member_no="A001", position=Position.SECRETARY),
        create_member(tenant, one, name="钱支委", member_no="A002", position=Position.COMMITTEE_MEMBER),
        create_member(tenant, one, name="孙党员", member_no="A003"),
        create_member(tenant, direct, name="李书记", member_no="B001", position=Position.SECRETARY),
    ]
    return {
        "tenant": tenant,
        "party": party,
        "one": one,
        "direct": direct,
        "retirees": retirees,
        "members": members,
        "admin": create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="gongwei"),
        "committee": create_account(tenant, roles=[(Role.COMMITTEE_MEMBER, None)], username="weiyuan"),
        "org_staff": create_account(tenant, roles=[(Role.ORG_STAFF, party)], username="jiguan"),
        "secretary": create_account(
            tenant, roles=[(Role.BRANCH_SECRETARY, one), (Role.MEMBER, None)], member=members[0], username="shuji"
        ),
        "branch_committee": create_account(
            tenant, roles=[(Role.BRANCH_COMMITTEE, one), (Role.MEMBER, None)], member=members[1], username="zhiwei"
        ),
        "member": create_account(tenant, roles=[(Role.MEMBER, None)], member=members[2], username="dangyuan"),
        "direct_secretary": create_account(
            tenant, roles=[(Role.BRANCH_SECRETARY, direct)], member=members[3], username="shuji2"
        ),
        "inspector": create_account(tenant, roles=[(Role.INSPECTOR, None)], username="ducha"),
    }


@pytest.fixture
def opened(session: Session, district: dict[str, Any], frozen_now: Any) -> dict[str, Any]:
    """The district with its 2025 branch rating opened on OPENING_DAY (deadlines from the rules)."""
    from sqlalchemy import select

    from fivestar.branch_rounds.models import BranchRating
    from fivestar.branch_rounds.opening import open_branch_round
    from fivestar.tenancy import tenant_context

    with tenant_context(district["tenant"].id):
        result = open_branch_round(session, district["tenant"])
        session.flush()
        ratings = {
            r.branch_id: r
            for r in session.scalars(select(BranchRating).where(BranchRating.round_id == result.round.id))
        }
    return {
        **district,
        "round": result.round,
        "rating_one": ratings[district["one"].id],
        "rating_direct": ratings[district["direct"].id],
    }


@pytest.fixture
def published(session: Session, district: dict[str, Any]) -> dict[str, Any]:
    """The district with its 2024 branch rating FINALISED (亮星), built straight from the models
    (tests/branch/publication_support.py): `one` decided 四星 and `direct` 五星, with criterion scores
    whose medals are worked out by hand there."""
    from tests.branch.publication_support import DIRECT_TOTALS, ONE_TOTALS, Decided, build_round

    branch_round, ratings = build_round(
        session,
        district["tenant"],
        year=2024,
        decisions=[Decided(district["one"], 4, ONE_TOTALS), Decided(district["direct"], 5, DIRECT_TOTALS)],
    )
    return {
        **district,
        "published_round": branch_round,
        "published_one": ratings[district["one"].id],
        "published_direct": ratings[district["direct"].id],
    }


@pytest.fixture
def opened_with_rules(session: Session, district: dict[str, Any], frozen_now: Any) -> Any:
    """`opened_with_rules(text)`: the district with `text` (a whole rule-set TOML) stored as its next
    rules version and the 2025 round opened on it; returns the world like `opened`."""
    from sqlalchemy import select

    from fivestar.branch_rounds.models import BranchRating
    from fivestar.branch_rounds.opening import open_branch_round
    from fivestar.tenancy import tenant_context
    from fivestar.tenants.services import add_rules_version

    def make(text: str) -> dict[str, Any]:
        tenant = district["tenant"]
        add_rules_version(session, tenant, text, note="test rules")
        session.flush()
        with tenant_context(tenant.id):
            result = open_branch_round(session, tenant)
            session.flush()
            ratings = {
                r.branch_id: r
                for r in session.scalars(select(BranchRating).where(BranchRating.round_id == result.round.id))
            }
        return {
            **district,
            "round": result.round,
            "rating_one": ratings[district["one"].id],
            "rating_direct": ratings[district["direct"].id],
        }

    return make


@pytest.fixture
def deliberating(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    """`opened`, with both branches past 荐星 (step DELIBERATE, proposed 四星): the 议星 tests' start."""
    from fivestar.branch_rounds.models import RatingStep
    from fivestar.tenancy import tenant_context

    with tenant_context(opened["tenant"].id):
        for key in ("rating_one", "rating_direct"):
            with seeding():
                opened[key].step = RatingStep.DELIBERATE
            opened[key].proposed_level = 4
            opened[key].recommended_at = OPENING_DAY
        session.flush()
    return opened
