"""What the member round asks of a person now, for their home page (`fivestar.kernel.worklist`).

Three kinds of people have work here:

* a member whose self-assessment is still to be written (or was returned) while their branch is at
  个人自评;
* a branch's secretary and committee members (`role_scope` of their branch grants): the branch's next
  step of each open round — members still to assess themselves, the 党群联评 grid, the 支部审评, the
  上报 after the notice — and the objections still to answer;
* the committee (who may manage or return rounds, tenant-wide): each open round's branches that have
  not reported yet, once the deadline of the earliest step any of them is still at is near or past,
  how many of them the committee returned, and a round ready to be closed.

At most five statements whatever the number of rounds, branches and members: the counts behind an
item ("12 名党员未提交自评") are summed by the database, grouped per branch or per round.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from fivestar.accounts.policy import Action, authorize, org_scope, role_scope
from fivestar.accounts.principal import Principal
from fivestar.enums import Role
from fivestar.i18n import _
from fivestar.kernel.worklist import WorkItem, is_near
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationScore,
    EvaluationStatus,
    MemberRound,
    Objection,
    ObjectionState,
    RoundBranch,
    RoundState,
    ScoreStage,
    SelfState,
)
from fivestar.member_rounds.workflow import EDITABLE_SELF
from fivestar.orgs.models import Organisation

BRANCH_ROLES = (Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE)


def pending(session: Session, principal: Principal, now: dt.datetime) -> list[WorkItem]:
    """The member round's work waiting for `principal` at `now` (unordered; the home orders it)."""
    if principal.is_operator or principal.tenant_id is None:
        return []
    items = _self_assessment(session, principal, now)
    items += _branch_steps(session, principal, now)
    if authorize(principal, Action.ROUND_MANAGE) or authorize(principal, Action.ROUND_RETURN):
        items += _committee(session, principal, now)
    return items


# --- a member's own self-assessment ------------------------------------------------------------------


def _self_assessment(session: Session, principal: Principal, now: dt.datetime) -> list[WorkItem]:
    """The member's open self-assessments (one statement). Only while the branch is at 个人自评: after
    that the member can do nothing more, and the branch's own item says what is left. Past the deadline
    the member cannot submit either (the branch may still enter it for them), and the item says so."""
    if principal.member_id is None:
        return []
    rows = session.execute(
        select(
            Evaluation.id,
            Evaluation.self_state,
            Evaluation.return_reason,
            MemberRound.period_key,
            MemberRound.self_due_at,
        )
        .join(MemberRound, Evaluation.round_id == MemberRound.id)
        .join(RoundBranch, Evaluation.round_branch_id == RoundBranch.id)
        .where(
            Evaluation.member_id == principal.member_id,
            Evaluation.status == EvaluationStatus.ACTIVE,
            Evaluation.self_state.in_(EDITABLE_SELF),
            MemberRound.state == RoundState.OPEN,
            RoundBranch.step == BranchStep.SELF,
        )
    )
    items = []
    for evaluation_id, state, reason, period, due in rows:
        returned = state is SelfState.RETURNED
        if due < now:
            title = _("个人自评已截止，请联系支部代录")
        else:
            title = _("修改并重新提交个人自评") if returned else _("填写并提交个人自评")
        items.append(
            WorkItem(
                kind="member_round.self_assessment",
                title=title,
                endpoint="tenant.member_round_self_assessment.edit",
                params={"evaluation_id": evaluation_id},
                detail=_("%(period)s 党员星级评定", period=period)
                + (" · " + _("支部退回：%(reason)s", reason=reason) if returned and reason else ""),
                due=due,
            )
        )
    return items


# --- a branch's steps ------------------------------------------------------------------------------


def _branch_steps(session: Session, principal: Principal, now: dt.datetime) -> list[WorkItem]:
    """The next step of each open round of the branches the person runs (three statements)."""
    if not any(grant.role in BRANCH_ROLES for grant in principal.grants):
        return []
    branches = session.execute(
        select(
            RoundBranch.id,
            RoundBranch.step,
            RoundBranch.notice_ends_at,
            RoundBranch.returned_at,
            RoundBranch.return_reason,
            Organisation.name,
            MemberRound.period_key,
            MemberRound.self_due_at,
            MemberRound.joint_due_at,
            MemberRound.review_due_at,
            MemberRound.report_due_at,
        )
        .join(MemberRound, RoundBranch.round_id == MemberRound.id)
        .join(Organisation, RoundBranch.branch_id == Organisation.id)
        .where(
            MemberRound.state == RoundState.OPEN,
            RoundBranch.step != BranchStep.FINALISED,
            role_scope(principal, Action.ROUND_EVALUATE, *BRANCH_ROLES),
        )
    ).all()
    if not branches:
        return []
    ids = [row.id for row in branches]
    counts = _member_counts(session, ids)
    objections = dict(
        session.execute(
            select(Objection.round_branch_id, func.count())
            .where(Objection.round_branch_id.in_(ids), Objection.state == ObjectionState.OPEN)
            .group_by(Objection.round_branch_id)
        ).all()
    )
    items: list[WorkItem] = []
    for row in branches:
        self_pending, joint_missing, unscored = counts.get(row.id, (0, 0, 0))
        where = _("%(period)s 党员星级评定 · %(branch)s", period=row.period_key, branch=row.name)
        items.append(_next_step(row, where, now, self_pending, joint_missing, unscored))
        if objections.get(row.id):
            items.append(
                WorkItem(
                    kind="member_round.objections",
                    title=_("答复公示期间收到的异议"),
                    endpoint="tenant.member_round_committee.objections",
                    params={"round_branch_id": row.id},
                    detail=where,
                    due=row.report_due_at,
                    count=int(objections[row.id]),
                )
            )
    return items


def _member_counts(session: Session, round_branch_ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """Per branch of a round: members whose self-assessment is not submitted, without 党群联评 scores,
    and without final scores or a 不予评星 decision (one grouped statement, as `core.facts_for`)."""
    has_joint = (
        select(EvaluationScore.id)
        .where(EvaluationScore.evaluation_id == Evaluation.id, EvaluationScore.stage == ScoreStage.JOINT)
        .exists()
    )
    rows = session.execute(
        select(
            Evaluation.round_branch_id,
            func.count().filter(Evaluation.self_state != SelfState.SUBMITTED),
            func.count().filter(~has_joint),
            func.count().filter(and_(Evaluation.disqualifier.is_(None), Evaluation.total.is_(None))),
        )
        .where(Evaluation.round_branch_id.in_(round_branch_ids), Evaluation.status == EvaluationStatus.ACTIVE)
        .group_by(Evaluation.round_branch_id)
    )
    return {rb_id: (int(a or 0), int(b or 0), int(c or 0)) for rb_id, a, b, c in rows}


def _next_step(
    row: Any, where: str, now: dt.datetime, self_pending: int, joint_missing: int, unscored: int
) -> WorkItem:
    """The one thing the branch must do next in this round, with the deadline of that step."""
    dashboard = ("tenant.member_round_branch.dashboard", {"round_branch_id": row.id})
    if row.step is BranchStep.SELF:
        if self_pending and now <= row.self_due_at:
            return WorkItem(
                "member_round.branch_self",
                _("督促党员提交个人自评（无账号的可代录）"),
                *dashboard,
                detail=where,
                due=row.self_due_at,
                count=self_pending,
            )
        return WorkItem("member_round.branch_joint", _("开始党群联评"), *dashboard, detail=where, due=row.joint_due_at)
    if row.step is BranchStep.JOINT:
        return WorkItem(
            "member_round.branch_joint",
            _("党群联评：记录会议并录入评分"),
            "tenant.member_round_branch.joint",
            {"round_branch_id": row.id},
            detail=where,
            due=row.joint_due_at,
            count=joint_missing or None,
        )
    if row.step is BranchStep.REVIEW:
        if row.returned_at is not None and row.return_reason:
            where = where + " · " + _("工委退回：%(reason)s", reason=row.return_reason)
        return WorkItem(
            "member_round.branch_review",
            _("支部审评：确定最终得分和星级并提交公示"),
            "tenant.member_round_branch.review",
            {"round_branch_id": row.id},
            detail=where,
            due=row.review_due_at,
            count=unscored or None,
        )
    # NOTICE: after the notice period (and with every objection answered) the list goes up.
    return WorkItem(
        "member_round.branch_report",
        _("公示期满后上报评定结果"),
        *dashboard,
        detail=where,
        due=row.report_due_at or row.notice_ends_at,
    )


# --- the committee ---------------------------------------------------------------------------------

# The deadline a branch still at a step is held to (NOTICE: the report deadline, else the review's).
_STEP_DUE = {
    BranchStep.SELF: "self_due_at",
    BranchStep.JOINT: "joint_due_at",
    BranchStep.REVIEW: "review_due_at",
    BranchStep.NOTICE: "report_due_at",
}


def _committee(session: Session, principal: Principal, now: dt.datetime) -> list[WorkItem]:
    """Each open round: branches not reported yet, those the committee returned, or ready to close
    (one grouped statement)."""
    rows = session.execute(
        select(
            MemberRound.id,
            MemberRound.period_key,
            MemberRound.self_due_at,
            MemberRound.joint_due_at,
            MemberRound.review_due_at,
            MemberRound.report_due_at,
            RoundBranch.step,
            func.count(),
            func.count().filter(RoundBranch.returned_at.is_not(None)),
        )
        .join(RoundBranch, RoundBranch.round_id == MemberRound.id)
        .join(Organisation, RoundBranch.branch_id == Organisation.id)
        .where(MemberRound.state == RoundState.OPEN, _committee_scope(principal))
        .group_by(
            MemberRound.id,
            MemberRound.period_key,
            MemberRound.self_due_at,
            MemberRound.joint_due_at,
            MemberRound.review_due_at,
            MemberRound.report_due_at,
            RoundBranch.step,
        )
    ).all()
    by_round: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_round[row[0]].append(row)
    items: list[WorkItem] = []
    can_manage = authorize(principal, Action.ROUND_MANAGE)
    can_return = authorize(principal, Action.ROUND_RETURN)
    for round_id, steps in by_round.items():
        first = steps[0]
        where = _("%(period)s 党员星级评定", period=first.period_key)
        target = ("tenant.member_round_committee.detail", {"round_id": round_id})
        behind = {row.step: int(row[7]) for row in steps if row.step is not BranchStep.FINALISED}
        returned = sum(int(row[8]) for row in steps if row.step is not BranchStep.FINALISED)
        if behind:
            earliest = min(behind, key=list(BranchStep).index)
            due = getattr(first, _STEP_DUE[earliest]) or first.review_due_at
            if is_near(due, now):  # a step whose deadline is far away needs no one's attention yet
                items.append(
                    WorkItem(
                        "member_round.not_reported",
                        _("督促尚未上报的支部"),
                        *target,
                        detail=where,
                        due=due,
                        count=sum(behind.values()),
                    )
                )
        elif can_manage:
            items.append(WorkItem("member_round.close", _("各支部均已上报，可结束本轮评定"), *target, detail=where))
        if returned and can_return:
            items.append(
                WorkItem(
                    "member_round.returned",
                    _("跟进退回支部的重新上报"),
                    *target,
                    detail=where,
                    due=first.report_due_at,
                    count=returned,
                )
            )
    return items


def _committee_scope(principal: Principal) -> Any:
    """The branches the committee's items count: those whose results the person may manage or return."""
    action = Action.ROUND_MANAGE if authorize(principal, Action.ROUND_MANAGE) else Action.ROUND_RETURN
    return org_scope(principal, action)
