"""What the committee's overview shows in the demo beyond the other scenes: the member period before
the running one, closed, with its results (in the level history, as closing writes them) and
follow-ups — mentors, talks and rectification deadlines, one of them overdue — so the follow-up
overview has something on every line. The finalised year's levels and plans come from the standing
and improvement scenes.

Demo only; called by `seed` for the district with a running round, inside its tenant. Writes rows as
data (the rounds kernel's `seeding()`), each scene with its audit event, and nothing twice.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import closing
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    MemberRound,
    Mentorship,
    Rectification,
    RoundBranch,
    RoundState,
    SelfState,
    TalkRecord,
)
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.rules import member_period
from fivestar.tenants.models import Tenant
from fivestar.tenants.services import current_rules, version_rules
from fivestar.timekeeping import clock

BRANCHES_RATED = 6  # the demo secretary's branch and five more
TOTALS = {5: Decimal(95), 4: Decimal(86), 3: Decimal(76), 2: Decimal(66), 1: Decimal(56)}


def seed_overview(session: Session, tenant: Tenant, branches: list[Organisation], rng: random.Random) -> None:
    _closed_period_with_follow_ups(session, tenant, branches[:BRANCHES_RATED], rng)


def _closed_period_with_follow_ups(
    session: Session, tenant: Tenant, branches: list[Organisation], rng: random.Random
) -> None:
    running = session.scalar(select(MemberRound).where(MemberRound.state == RoundState.OPEN))
    version = current_rules(session, tenant)
    if running is None or version is None or not branches:
        return
    rules = version_rules(version)
    period = member_period(rules, running.period_start - dt.timedelta(days=1))
    if session.scalar(select(MemberRound.id).where(MemberRound.period_key == period.key)) is not None:
        return
    today = clock.today_in(tenant.timezone)
    opened = dt.datetime.combine(period.end + dt.timedelta(days=3), dt.time(1), tzinfo=dt.UTC)
    finalised = opened + dt.timedelta(days=20)
    member_round = MemberRound(
        tenant_id=tenant.id,
        period_key=period.key,
        period_start=period.start,
        period_end=period.end,
        rules_version_id=version.id,
        opened_at=opened,
        opened_by="fivestar demo",
        self_due_at=opened + dt.timedelta(days=7),
        joint_due_at=opened + dt.timedelta(days=12),
        review_due_at=opened + dt.timedelta(days=16),
        report_due_at=finalised,
        closed_at=finalised,
    )
    with seeding():  # a finished period as data, not a walk through the steps
        member_round.state = RoundState.CLOSED
    session.add(member_round)
    session.flush()
    members = list(
        session.scalars(
            select(Member)
            .where(Member.branch_id.in_([b.id for b in branches]))
            .order_by(Member.branch_id, Member.member_no)
        )
    )
    by_branch: dict[int, list[Member]] = {}
    for member in members:
        by_branch.setdefault(member.branch_id, []).append(member)
    follow = rules.member.follow_up
    counts = {"mentors": 0, "talks": 0, "rectifications": 0}
    for index, branch in enumerate(branches):
        round_branch = RoundBranch(
            tenant_id=tenant.id, round_id=member_round.id, branch_id=branch.id, finalised_at=finalised
        )
        with seeding():
            round_branch.step = BranchStep.FINALISED
        session.add(round_branch)
        session.flush()
        people = by_branch.get(branch.id, [])
        evaluations: list[Evaluation] = []
        for position, member in enumerate(people):
            # Mostly four and five stars; the last three of each branch low or not rated.
            tail = len(people) - position
            level: int | None = rng.choice((5, 5, 4, 4, 4, 3)) if tail > 3 else (2, 1, None)[3 - tail]
            rated = level is not None
            evaluations.append(
                Evaluation(
                    tenant_id=tenant.id,
                    round_id=member_round.id,
                    round_branch_id=round_branch.id,
                    member_id=member.id,
                    branch_id=branch.id,
                    level=level,
                    rated=rated,
                    self_state=SelfState.SUBMITTED,
                    total=TOTALS[level] if level is not None else None,
                    scored_at=finalised,
                    disqualifier=None if rated else "under_investigation",
                    disqualifier_note=None if rated else "（演示数据）正在接受组织审查",
                )
            )
        session.add_all(evaluations)
        session.flush()
        stars = [e for e in evaluations if e.level == 5]
        for evaluation in evaluations:
            if (
                evaluation.level is not None
                and follow.mentor_at_or_below is not None
                and follow.mentors
                and evaluation.level <= follow.mentor_at_or_below
                and stars
                and index % 3 != 2
            ):
                session.add(
                    Mentorship(
                        tenant_id=tenant.id,
                        evaluation_id=evaluation.id,
                        mentor_member_id=stars[0].member_id,
                        assigned_at=finalised,
                        assigned_by="fivestar demo",
                    )
                )
                counts["mentors"] += 1
            if (
                evaluation.level is not None
                and follow.talk_at_or_below is not None
                and evaluation.level <= follow.talk_at_or_below
                and evaluation.level == 2
            ):
                session.add(
                    TalkRecord(
                        tenant_id=tenant.id,
                        evaluation_id=evaluation.id,
                        talk_date=(finalised + dt.timedelta(days=5)).date(),
                        talked_by="支部书记",
                        summary="（演示数据）指出不足，商定改进措施。",
                        recorded_at=finalised,
                        recorded_by="fivestar demo",
                    )
                )
                counts["talks"] += 1
            if evaluation.rated is False:
                # One overdue, one ahead, one with its result, in turn.
                due = (today - dt.timedelta(days=12), today + dt.timedelta(days=40), today - dt.timedelta(days=30))[
                    index % 3
                ]
                done = due - dt.timedelta(days=2) if index % 3 == 2 else None
                session.add(
                    Rectification(
                        tenant_id=tenant.id,
                        evaluation_id=evaluation.id,
                        due_on=due,
                        requirement="（演示数据）按期整改，提交书面说明。",
                        set_at=finalised,
                        set_by="fivestar demo",
                        completed_on=done,
                        outcome="（演示数据）已按要求整改。" if done else None,
                    )
                )
                counts["rectifications"] += 1
    session.flush()
    closing.record_final_levels(session, member_round)
    audit.record(
        session,
        "demo.closed_member_round",
        member_round,
        after={"period": member_round.period_key, "branches": len(branches), **counts},
    )


__all__ = ["seed_overview"]
