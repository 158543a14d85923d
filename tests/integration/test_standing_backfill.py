"""Migration 0009 fills the level history from what was already final before it existed: every
finalised branch round's decided levels and every closed member round's levels (不予评星 kept as no
level, never-scored members left out), each row with the subject's previous level — on SQLite and
PostgreSQL. Taken down and up again, it writes the same rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select

from fivestar import dbcli
from fivestar.branch_rounds.models import BranchRoundState
from fivestar.db import make_engine, make_sessionmaker
from fivestar.enums import Gender, OrgKind
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    MemberRound,
    RoundBranch,
    RoundState,
)
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.standing.models import LevelHistory, SourceKind
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import create_tenant, current_rules
from tests.branch.publication_support import Decided, build_round
from tests.conftest import SAMPLE_RULES

UTC = dt.UTC


def _seed(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            tenant = create_tenant(
                session, slug="backfill", name="回填测试工委", rules_toml=SAMPLE_RULES.read_text("utf-8")
            )
            session.flush()
            with tenant_context(tenant.id):
                root = session.scalars(select(Organisation).where(Organisation.parent_id.is_(None))).one()
                one, two = (
                    Organisation(tenant_id=tenant.id, parent_id=root.id, kind=OrgKind.BRANCH, name=name, code=code)
                    for name, code in (("第一党支部", "B1"), ("第二党支部", "B2"))
                )
                session.add_all([one, two])
                session.flush()
                members = [
                    Member(
                        tenant_id=tenant.id,
                        branch_id=one.id,
                        member_no=f"M{i}",
                        name=f"党员{i}",
                        gender=Gender.MALE,
                        joined_on=dt.date(2010, 1, 1),
                    )
                    for i in range(3)
                ]
                session.add_all(members)
                session.flush()
            build_round(session, tenant, year=2023, decisions=[Decided(one, 3), Decided(two, 4)])
            build_round(session, tenant, year=2024, decisions=[Decided(one, 4), Decided(two, 4)])
            build_round(session, tenant, year=2025, decisions=[Decided(one, 5)], state=BranchRoundState.OPEN)
            with tenant_context(tenant.id):
                version = current_rules(session, tenant)
                assert version is not None
                with seeding():
                    member_round = MemberRound(
                        tenant_id=tenant.id,
                        period_key="2024",
                        period_start=dt.date(2024, 1, 1),
                        period_end=dt.date(2024, 12, 31),
                        rules_version_id=version.id,
                        state=RoundState.CLOSED,
                        opened_by="测试",
                        self_due_at=dt.datetime(2025, 1, 10, tzinfo=UTC),
                        joint_due_at=dt.datetime(2025, 1, 20, tzinfo=UTC),
                        review_due_at=dt.datetime(2025, 1, 30, tzinfo=UTC),
                        closed_at=dt.datetime(2025, 2, 1, 8, tzinfo=UTC),
                    )
                    session.add(member_round)
                    session.flush()
                    round_branch = RoundBranch(
                        tenant_id=tenant.id, round_id=member_round.id, branch_id=one.id, step=BranchStep.FINALISED
                    )
                    session.add(round_branch)
                    session.flush()
                for member, level, rated in zip(members, (5, None, None), (True, False, None), strict=True):
                    session.add(
                        Evaluation(
                            tenant_id=tenant.id,
                            round_id=member_round.id,
                            round_branch_id=round_branch.id,
                            member_id=member.id,
                            branch_id=one.id,
                            level=level,
                            rated=rated,
                        )
                    )
                session.flush()
            session.commit()
            return {"tenant": tenant.id, "one": one.id, "two": two.id, **{f"m{i}": m.id for i, m in enumerate(members)}}
    finally:
        engine.dispose()


def _history(url: str, tenant_id: int) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session, tenant_context(tenant_id):
            return [
                (r.branch_id, r.member_id, r.period, r.previous_level, r.level, r.source, r.recorded_by)
                for r in session.scalars(select(LevelHistory).order_by(LevelHistory.effective_at, LevelHistory.id))
            ]
    finally:
        engine.dispose()


def test_the_migration_backfills_the_history(backend: str, fresh_database: Callable[..., str]) -> None:
    url = fresh_database(backend)
    ids = _seed(url)
    dbcli.downgrade(url, "0008")
    dbcli.upgrade(url)
    rows = _history(url, ids["tenant"])
    one, two = ids["one"], ids["two"]
    expected = [
        (one, None, "2023", None, 3, SourceKind.BRANCH_ROUND, "工委"),
        (two, None, "2023", None, 4, SourceKind.BRANCH_ROUND, "工委"),
        (None, ids["m0"], "2024", None, 5, SourceKind.MEMBER_ROUND, "系统"),
        (None, ids["m1"], "2024", None, None, SourceKind.MEMBER_ROUND, "系统"),
        (one, None, "2024", 3, 4, SourceKind.BRANCH_ROUND, "工委"),
        (two, None, "2024", 4, 4, SourceKind.BRANCH_ROUND, "工委"),
    ]
    assert sorted(rows, key=repr) == sorted(expected, key=repr)
    # the 2024 branch rows come after the 2023 ones (finalised 2025-02-10, the member round closed 2025-02-01)
    assert [r[2] for r in rows if r[0] == one] == ["2023", "2024"]
    dbcli.downgrade(url, "0008")
    dbcli.upgrade(url)
    assert sorted(_history(url, ids["tenant"]), key=repr) == sorted(expected, key=repr)
