"""A district for the inspectors' tests: three branches of three members, every reading role, a
member round opened on a fixed day, and helpers that put scores, events and objections in place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.enums import OrgKind, Position, Role
from fivestar.timekeeping import clock

OPENING_DAY = dt.datetime(2026, 4, 7, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture
def frozen_now() -> Iterator[None]:
    with clock.frozen(OPENING_DAY):
        yield


@pytest.fixture
def world(
    session: Session, create_tenant: Any, create_org: Any, create_member: Any, create_account: Any
) -> dict[str, Any]:
    tenant = create_tenant(slug="inspect-district", name="督查测试工委")
    party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="区财政局机关党委", code="P01")
    other_party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="区教育局机关党委", code="P02")
    one = create_org(tenant, OrgKind.BRANCH, parent=party, name="第一党支部", code="B01")
    two = create_org(tenant, OrgKind.BRANCH, parent=party, name="第二党支部", code="B02")
    three = create_org(tenant, OrgKind.BRANCH, parent=other_party, name="第三党支部", code="B03")
    members = {
        key: [
            create_member(
                tenant, branch, name=f"{key}{i}", member_no=f"{key.upper()}{i:03d}",
                position=Position.SECRETARY if i == 1 else Position.MEMBER,
            )
            for i in range(1, 4)
        ]
        for key, branch in (("one", one), ("two", two), ("three", three))
    }
    return {
        "tenant": tenant,
        "party": party,
        "other_party": other_party,
        "one": one,
        "two": two,
        "three": three,
        "members": members,
        "admin": create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="admin"),
        "committee": create_account(tenant, roles=[(Role.COMMITTEE_MEMBER, None)], username="committee"),
        "inspector": create_account(tenant, roles=[(Role.INSPECTOR, None)], username="inspector"),
        "secretary": create_account(
            tenant, roles=[(Role.BRANCH_SECRETARY, one), (Role.MEMBER, None)], member=members["one"][0],
            username="secretary",
        ),
        "member": create_account(tenant, roles=[(Role.MEMBER, None)], member=members["one"][2], username="member"),
    }


@pytest.fixture
def member_round(session: Session, world: dict[str, Any], frozen_now: None) -> Any:
    """The 2026Q1 member round, its due times moved far ahead (so nothing counts as late unless a
    test says so)."""
    from fivestar.member_rounds.opening import open_round
    from fivestar.tenancy import tenant_context

    with tenant_context(world["tenant"].id):
        opened = open_round(session, world["tenant"])
        member_round = opened.round
        far = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
        member_round.self_due_at = member_round.joint_due_at = member_round.review_due_at = far
        member_round.report_due_at = far
        session.flush()
    return member_round


@pytest.fixture
def branch_round(session: Session, world: dict[str, Any], frozen_now: None) -> Any:
    from fivestar.branch_rounds.opening import open_branch_round
    from fivestar.tenancy import tenant_context

    with tenant_context(world["tenant"].id):
        opened = open_branch_round(
            session, world["tenant"], self_report_due=dt.date(2026, 5, 29), committee_due=dt.date(2026, 6, 30)
        )
        branch_round = opened.round
        far = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
        branch_round.self_report_due_at = branch_round.committee_due_at = far
        session.flush()
    return branch_round


def evaluation_of(session: Session, world: dict[str, Any], member_round: Any, member: Any) -> Any:
    from fivestar.member_rounds.models import Evaluation
    from fivestar.tenancy import tenant_context

    with tenant_context(world["tenant"].id):
        return session.scalar(
            select(Evaluation).where(Evaluation.round_id == member_round.id, Evaluation.member_id == member.id)
        )


def score_values(rules: Any, total: Decimal | int) -> dict[Any, Decimal]:
    """Score rows whose scheme total is `total`: every field at its maximum, then points taken off."""
    from fivestar.member_rounds import core

    fields = core.score_fields(rules)
    values = {f.key: f.max for f in fields}
    missing = sum(values.values(), Decimal(0)) - Decimal(total)
    assert missing >= 0
    for f in fields:
        cut = min(missing, values[f.key])
        values[f.key] -= cut
        missing -= cut
    return values


def set_scores(
    session: Session, world: dict[str, Any], member_round: Any, scores: dict[Any, tuple[int, int]]
) -> None:
    """`scores`: member → (joint total, final total); then the round is scored as closing does."""
    from fivestar.member_rounds import core, scoring
    from fivestar.member_rounds.models import ScoreStage
    from fivestar.tenancy import tenant_context

    with tenant_context(world["tenant"].id):
        rules = core.round_rules(session, member_round)
        ids = {member.id: evaluation_of(session, world, member_round, member).id for member in scores}
        joint = {ids[m.id]: score_values(rules, j) for m, (j, _f) in scores.items()}
        final = {ids[m.id]: score_values(rules, f) for m, (_j, f) in scores.items()}
        core.write_scores(session, list(joint), ScoreStage.JOINT, joint)
        core.write_scores(session, list(final), ScoreStage.FINAL, final)
        scoring.score_round(session, member_round)
        session.flush()


def add_event(
    session: Session,
    tenant: Any,
    action: str,
    object_type: str,
    object_id: Any,
    *,
    at: dt.datetime | None = None,
    actor: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> Any:
    """An audit event written by `audit.record` as the services write it, at a chosen time."""
    from unittest import mock

    from fivestar import audit

    who = audit.Actor("account", actor.id, actor.display_name) if actor is not None else audit.Actor(
        "system", None, "system"
    )
    when = at or dt.datetime.now(dt.UTC)
    with audit.acting_as(who), mock.patch("fivestar.audit.recording.utcnow", return_value=when):
        event = audit.record(
            session, action, object_type=object_type, object_id=object_id, before=before, after=after,
            reason=reason, tenant_id=tenant.id,
        )
        session.flush()
    return event


def url(world: dict[str, Any], path: str) -> str:
    return f"/t/{world['tenant'].slug}{path}"


def count_queries(engine: Any, client: Any, path: str) -> int:
    """How many statements one page runs (it must answer 200)."""
    from sqlalchemy import event as sa_event

    statements: list[str] = []

    def listen(*args: Any) -> None:
        statements.append(args[2])

    sa_event.listen(engine, "before_cursor_execute", listen)
    try:
        response = client.get(path)
        assert response.status_code == 200, path
    finally:
        sa_event.remove(engine, "before_cursor_execute", listen)
    return len(statements)
