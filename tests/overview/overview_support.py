"""Seeding for the overview tests: finalised branch years, member rounds with results and follow-ups,
written as data (the rounds kernel's `seeding()`), so each test states exactly the numbers it checks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.core import round_rules
from fivestar.branch_rounds.models import (
    AnswerKind,
    BranchRating,
    BranchRound,
    BranchRoundState,
    CriterionScore,
    RatingAnswer,
    RatingStep,
)
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    MemberRound,
    Mentorship,
    Rectification,
    RoundBranch,
    RoundState,
    TalkRecord,
)
from fivestar.standing.models import SourceKind
from fivestar.standing.services import RoundLevels, record_round_levels
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import current_rules

UTC = dt.UTC


def branch_year(
    session: Session,
    tenant: Any,
    year: int,
    levels: dict[Any, int | None],
    *,
    finalised: bool = True,
    full_scores: tuple[Any, ...] = (),
) -> BranchRound:
    """A branch round of `year`: each branch in `levels` decided at its level (None: rated but not
    decided). Branches in `full_scores` get every criterion's full points (a gold medal each)."""
    with tenant_context(tenant.id):
        version = current_rules(session, tenant)
        assert version is not None
        at = dt.datetime(year + 1, 1, 10, tzinfo=UTC)
        branch_round = BranchRound(
            tenant_id=tenant.id,
            year=year,
            rules_version_id=version.id,
            opened_at=at,
            opened_by="test",
            self_report_due_at=at + dt.timedelta(days=20),
            committee_due_at=at + dt.timedelta(days=40),
        )
        with seeding():
            branch_round.state = BranchRoundState.FINALISED if finalised else BranchRoundState.OPEN
        session.add(branch_round)
        session.flush()
        rules = round_rules(session, branch_round)
        for branch, level in levels.items():
            rating = BranchRating(
                tenant_id=tenant.id,
                round_id=branch_round.id,
                branch_id=branch.id,
                decided_level=level,
                public_rate=Decimal(95),
            )
            with seeding():
                rating.step = RatingStep.DECIDED if level is not None else RatingStep.RECOMMEND
            session.add(rating)
            session.flush()
            if branch in full_scores:
                session.execute(
                    insert(CriterionScore),
                    [
                        {
                            "tenant_id": tenant.id,
                            "rating_id": rating.id,
                            "indicator_key": i.key,
                            "criterion_key": c.key,
                            "score": c.points,
                            "note": None,
                        }
                        for i in rules.branch.indicators
                        for c in i.criteria
                    ],
                )
                answers = [(AnswerKind.VETO, v.key) for v in rules.branch.vetoes]
                answers += [(AnswerKind.FACT, f.key) for f in rules.branch.facts]
                if answers:
                    session.execute(
                        insert(RatingAnswer),
                        [
                            {
                                "tenant_id": tenant.id,
                                "rating_id": rating.id,
                                "kind": kind,
                                "key": key,
                                "value": False,
                                "explanation": None,
                            }
                            for kind, key in answers
                        ],
                    )
        session.flush()
        if finalised:  # the decided levels enter the level history, as finalising does (branch_rounds.decision)
            record_round_levels(
                session,
                RoundLevels(SourceKind.BRANCH_ROUND, tenant.id, branch_round.id, str(year), at),
                select(BranchRating.branch_id.label("subject_id"), BranchRating.decided_level.label("level")).where(
                    BranchRating.tenant_id == tenant.id, BranchRating.round_id == branch_round.id
                ),
            )
            session.flush()
    return branch_round


def member_round(
    session: Session, tenant: Any, period_key: str, start: dt.date, end: dt.date, *, closed: bool = False
) -> MemberRound:
    with tenant_context(tenant.id):
        version = current_rules(session, tenant)
        assert version is not None
        at = dt.datetime.combine(end, dt.time(9), tzinfo=UTC) + dt.timedelta(days=5)
        member_round = MemberRound(
            tenant_id=tenant.id,
            period_key=period_key,
            period_start=start,
            period_end=end,
            rules_version_id=version.id,
            opened_at=at,
            opened_by="test",
            self_due_at=at + dt.timedelta(days=7),
            joint_due_at=at + dt.timedelta(days=14),
            review_due_at=at + dt.timedelta(days=21),
            report_due_at=at + dt.timedelta(days=28),
        )
        with seeding():
            member_round.state = RoundState.CLOSED if closed else RoundState.OPEN
        session.add(member_round)
        session.flush()
    return member_round


def round_branch(
    session: Session, tenant: Any, member_round: MemberRound, branch: Any, step: BranchStep = BranchStep.NOTICE
) -> RoundBranch:
    with tenant_context(tenant.id):
        row = RoundBranch(tenant_id=tenant.id, round_id=member_round.id, branch_id=branch.id)
        with seeding():
            row.step = step
        session.add(row)
        session.flush()
    return row


def evaluation(
    session: Session, tenant: Any, rb: RoundBranch, member: Any, level: int | None, *, rated: bool = True
) -> Evaluation:
    with tenant_context(tenant.id):
        row = Evaluation(
            tenant_id=tenant.id,
            round_id=rb.round_id,
            round_branch_id=rb.id,
            member_id=member.id,
            branch_id=rb.branch_id,
            level=level if rated else None,
            rated=rated,
            disqualifier=None if rated else "under_investigation",
            total=Decimal(60) if rated else None,
        )
        session.add(row)
        session.flush()
    return row


def mentor(session: Session, tenant: Any, ev: Evaluation, who: Any) -> None:
    with tenant_context(tenant.id):
        session.add(Mentorship(tenant_id=tenant.id, evaluation_id=ev.id, mentor_member_id=who.id, assigned_by="t"))
        session.flush()


def talk(session: Session, tenant: Any, ev: Evaluation, day: dt.date) -> None:
    with tenant_context(tenant.id):
        session.add(
            TalkRecord(
                tenant_id=tenant.id,
                evaluation_id=ev.id,
                talk_date=day,
                talked_by="赵书记",
                summary="谈心谈话",
                recorded_by="t",
            )
        )
        session.flush()


def rectification(session: Session, tenant: Any, ev: Evaluation, due: dt.date, done: dt.date | None = None) -> None:
    with tenant_context(tenant.id):
        session.add(
            Rectification(
                tenant_id=tenant.id,
                evaluation_id=ev.id,
                due_on=due,
                requirement="按期整改",
                set_by="t",
                completed_on=done,
                outcome="已整改" if done else None,
            )
        )
        session.flush()
