"""Who still owes a step: one set-based query per step, whatever the size of the district.

Each function returns `Owing` rows — an account to remind and the organisation the duty is about
(for the group robots configured on that organisation) — for the current tenant.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, aliased

from fivestar.accounts.models import Account, RoleGrant
from fivestar.branch_rounds.models import BranchRating, RatingStep
from fivestar.enums import Role
from fivestar.improvement.models import ImprovementPlan, ItemStatus, PlanItem, PlanState
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationStatus,
    Rectification,
    RoundBranch,
    SelfState,
)
from fivestar.orgs.models import Organisation


@dataclass(frozen=True)
class Owing:
    account_id: int
    display_name: str
    email: str | None
    organisation_id: int | None  # the branch (or 机关党委) the duty is about; None: the committee's own


#: Member-round steps and the branch steps that still owe them.
MEMBER_STEPS_OWING: dict[str, frozenset[BranchStep]] = {
    "joint": frozenset({BranchStep.SELF, BranchStep.JOINT}),
    "review": frozenset({BranchStep.SELF, BranchStep.JOINT, BranchStep.REVIEW}),
    "report": frozenset({BranchStep.SELF, BranchStep.JOINT, BranchStep.REVIEW, BranchStep.NOTICE}),
}


def members_without_self_assessment(session: Session, round_id: int) -> list[Owing]:
    """Members (with an account) whose self-assessment is not submitted."""
    rows = session.execute(
        select(Account.id, Account.display_name, Account.email, Evaluation.branch_id)
        .join(Account, (Account.member_id == Evaluation.member_id) & (Account.tenant_id == Evaluation.tenant_id))
        .where(
            Evaluation.round_id == round_id,
            Evaluation.status == EvaluationStatus.ACTIVE,
            Evaluation.self_state != SelfState.SUBMITTED,
            Account.active.is_(True),
        )
        .order_by(Account.id)
    )
    return [Owing(*row) for row in rows]


def secretaries_of_branches_at(session: Session, round_id: int, steps: frozenset[BranchStep]) -> list[Owing]:
    """Secretaries of the branches of a member round that are still at one of `steps`."""
    return _secretaries_of_round_branches(session, round_id, RoundBranch.step.in_(steps))


def secretaries_of_ended_notices(session: Session, round_id: int, after: dt.datetime,
                                 until: dt.datetime) -> list[Owing]:
    """Secretaries of the branches of a member round still in public notice (公示) whose notice ended
    in (after, until]: they may now report their list."""
    return _secretaries_of_round_branches(
        session, round_id, RoundBranch.step == BranchStep.NOTICE, RoundBranch.notice_ends_at > after,
        RoundBranch.notice_ends_at <= until,
    )


def _secretaries_of_round_branches(session: Session, round_id: int, *conditions: ColumnElement[bool]) -> list[Owing]:
    rows = session.execute(
        select(Account.id, Account.display_name, Account.email, RoundBranch.branch_id)
        .join(RoleGrant, (RoleGrant.organisation_id == RoundBranch.branch_id)
              & (RoleGrant.tenant_id == RoundBranch.tenant_id))
        .join(Account, (Account.id == RoleGrant.account_id) & (Account.tenant_id == RoleGrant.tenant_id))
        .where(
            RoundBranch.round_id == round_id,
            *conditions,
            RoleGrant.role == Role.BRANCH_SECRETARY,
            Account.active.is_(True),
        )
        .order_by(Account.id, RoundBranch.branch_id)
    )
    return [Owing(*row) for row in rows]


def secretaries_of_rectifications(
    session: Session, round_id: int, due_on: dt.date
) -> tuple[list[Owing], dict[int, int]]:
    """Secretaries of the branches whose members of a member round have a rectification (限期整改) due
    on `due_on` that is not recorded as completed; and how many such members each branch has."""
    due = (
        select(Evaluation.branch_id, func.count().label("members"))
        .join(Rectification, (Rectification.evaluation_id == Evaluation.id)
              & (Rectification.tenant_id == Evaluation.tenant_id))
        .where(Evaluation.round_id == round_id, Rectification.due_on == due_on, Rectification.completed_on.is_(None))
        .group_by(Evaluation.branch_id)
        .subquery()
    )
    rows = session.execute(
        select(Account.id, Account.display_name, Account.email, due.c.branch_id, due.c.members)
        .join(RoleGrant, RoleGrant.organisation_id == due.c.branch_id)
        .join(Account, (Account.id == RoleGrant.account_id) & (Account.tenant_id == RoleGrant.tenant_id))
        .where(RoleGrant.role == Role.BRANCH_SECRETARY, Account.active.is_(True))
        .order_by(Account.id, due.c.branch_id)
    )
    owing: list[Owing] = []
    members: dict[int, int] = {}
    for row in rows:
        owing.append(Owing(row.id, row.display_name, row.email, int(row.branch_id)))
        members[int(row.branch_id)] = int(row.members)
    return owing, members


def branch_self_report_owing(session: Session, round_id: int) -> list[Owing]:
    """Before the self-report deadline: secretaries of branches still at 荐星/议星, and the staff of
    each 机关党委/党总支 that has not forwarded a branch waiting for it."""
    secretaries = select(Account.id, Account.display_name, Account.email, BranchRating.branch_id).join(
        RoleGrant,
        (RoleGrant.organisation_id == BranchRating.branch_id) & (RoleGrant.tenant_id == BranchRating.tenant_id),
    ).join(
        Account, (Account.id == RoleGrant.account_id) & (Account.tenant_id == RoleGrant.tenant_id)
    ).where(
        BranchRating.round_id == round_id,
        BranchRating.step.in_((RatingStep.RECOMMEND, RatingStep.DELIBERATE)),
        RoleGrant.role == Role.BRANCH_SECRETARY,
        Account.active.is_(True),
    )
    branch = aliased(Organisation)
    staff = select(Account.id, Account.display_name, Account.email, branch.parent_id).join(
        branch, (branch.id == BranchRating.branch_id) & (branch.tenant_id == BranchRating.tenant_id)
    ).join(
        RoleGrant, (RoleGrant.organisation_id == branch.parent_id) & (RoleGrant.tenant_id == branch.tenant_id)
    ).join(
        Account, (Account.id == RoleGrant.account_id) & (Account.tenant_id == RoleGrant.tenant_id)
    ).where(
        BranchRating.round_id == round_id,
        BranchRating.step == RatingStep.ORG_REVIEW,
        RoleGrant.role == Role.ORG_STAFF,
        Account.active.is_(True),
    ).distinct()
    rows = session.execute(secretaries.union_all(staff))
    return sorted({Owing(*row) for row in rows}, key=lambda o: (o.account_id, o.organisation_id or 0))


def committee_if_undecided(session: Session, round_id: int) -> tuple[list[Owing], int]:
    """The committee's staff and members, when any branch of the round is not decided yet; and how
    many branches are undecided."""
    undecided = int(session.scalar(
        select(func.count()).select_from(BranchRating)
        .where(BranchRating.round_id == round_id, BranchRating.step != RatingStep.DECIDED)
    ) or 0)
    if not undecided:
        return [], 0
    rows = session.execute(
        select(Account.id, Account.display_name, Account.email)
        .join(RoleGrant, (RoleGrant.account_id == Account.id) & (RoleGrant.tenant_id == Account.tenant_id))
        .where(RoleGrant.role.in_((Role.TENANT_ADMIN, Role.COMMITTEE_MEMBER)), Account.active.is_(True))
        .distinct()
        .order_by(Account.id)
    )
    return [Owing(row.id, row.display_name, row.email, None) for row in rows], undecided


def secretaries_of_plan_items(session: Session, round_id: int, due_on: dt.date) -> tuple[list[Owing], dict[int, int]]:
    """Secretaries of the branches whose published rectification plan (following branch round
    `round_id`) has items due on `due_on` not done; and how many such items each branch has."""
    due = (
        select(ImprovementPlan.branch_id, func.count().label("due_items"))
        .join(PlanItem, (PlanItem.plan_id == ImprovementPlan.id) & (PlanItem.tenant_id == ImprovementPlan.tenant_id))
        .where(ImprovementPlan.round_id == round_id, ImprovementPlan.state == PlanState.PUBLISHED,
               PlanItem.deadline == due_on, PlanItem.status != ItemStatus.DONE)
        .group_by(ImprovementPlan.branch_id)
        .subquery()
    )
    rows = session.execute(
        select(Account.id, Account.display_name, Account.email, due.c.branch_id, due.c.due_items)
        .join(RoleGrant, RoleGrant.organisation_id == due.c.branch_id)
        .join(Account, (Account.id == RoleGrant.account_id) & (Account.tenant_id == RoleGrant.tenant_id))
        .where(RoleGrant.role == Role.BRANCH_SECRETARY, Account.active.is_(True))
        .order_by(Account.id, due.c.branch_id)
    )
    owing: list[Owing] = []
    items: dict[int, int] = {}
    for row in rows:
        owing.append(Owing(row.id, row.display_name, row.email, int(row.branch_id)))
        items[int(row.branch_id)] = int(row.due_items)
    return owing, items
