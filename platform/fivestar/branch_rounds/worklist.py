"""What the year's branch rating asks of a person now, for their home page (`fivestar.kernel.worklist`).

* a branch's secretary and committee members (`role_scope` of their branch grants): 荐星 to fill in
  (again, when the organisation above returned it), the 议星 meeting to hold, its voting to close, the
  branch's opinion to form and send up;
* a 机关党委/党总支's staff (`role_scope` of their ORG_STAFF grants): the branches waiting for them to
  forward or return, summed per round;
* the committee (who may decide levels): the branches waiting for 定星, branches that have not
  reported as the deadline comes near or has passed, a round ready to be finalised and published.

At most three statements whatever the number of branches; counts are summed by the database.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.accounts.policy import Action, authorize, org_scope, role_scope
from fivestar.accounts.principal import Principal
from fivestar.branch_rounds.models import (
    BallotMeeting,
    BranchRating,
    BranchRound,
    BranchRoundState,
    MeetingState,
    RatingStep,
)
from fivestar.enums import Role
from fivestar.i18n import _
from fivestar.kernel.worklist import WorkItem, is_near
from fivestar.orgs.models import Organisation

BRANCH_ROLES = (Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE)
# Steps at which a branch has not yet reported its self-rating to the committee.
_NOT_REPORTED = (RatingStep.RECOMMEND, RatingStep.DELIBERATE, RatingStep.ORG_REVIEW)


def pending(session: Session, principal: Principal, now: dt.datetime) -> list[WorkItem]:
    """The branch rating's work waiting for `principal` (unordered; the home orders it)."""
    if principal.is_operator or principal.tenant_id is None:
        return []
    items = _branch_steps(session, principal)
    items += _to_forward(session, principal)
    if authorize(principal, Action.BRANCH_DECIDE):
        items += _committee(session, principal, now)
    return items


def _where(year: int, branch: str | None = None) -> str:
    text = _("%(year)d 年度党支部星级评定", year=year)
    return f"{text} · {branch}" if branch else text


def _branch_steps(session: Session, principal: Principal) -> list[WorkItem]:
    """荐星 and 议星 of the branches the person runs (one statement, the meeting joined)."""
    if not any(grant.role in BRANCH_ROLES for grant in principal.grants):
        return []
    rows = session.execute(
        select(
            BranchRating.id,
            BranchRating.step,
            BranchRating.returned_at,
            BranchRating.return_reason,
            Organisation.name,
            BranchRound.year,
            BranchRound.self_report_due_at,
            BallotMeeting.state,
        )
        .join(BranchRound, BranchRating.round_id == BranchRound.id)
        .join(Organisation, BranchRating.branch_id == Organisation.id)
        .outerjoin(BallotMeeting, BallotMeeting.rating_id == BranchRating.id)
        .where(
            BranchRound.state == BranchRoundState.OPEN,
            BranchRating.step.in_((RatingStep.RECOMMEND, RatingStep.DELIBERATE)),
            role_scope(principal, Action.BRANCH_RATE, *BRANCH_ROLES),
        )
    )
    items = []
    for rating_id, step, returned_at, reason, branch, year, due, meeting in rows:
        where = _where(year, branch)
        if step is RatingStep.RECOMMEND:
            if returned_at is not None and reason:
                where = where + " · " + _("上级退回：%(reason)s", reason=reason)
            items.append(
                WorkItem(
                    "branch_rating.recommend",
                    _("荐星：逐项自评打分，填写自我荐星说明"),
                    "tenant.branch_rating_branch.recommend",
                    {"rating_id": rating_id},
                    detail=where,
                    due=due,
                )
            )
            continue
        meeting_page = ("tenant.branch_rating_deliberation.meeting", {"rating_id": rating_id})
        if meeting is None or meeting is MeetingState.SETUP:
            title = _("召开议星会议：安排会议并发放测评票")
        elif meeting is MeetingState.VOTING:
            title = _("议星测评进行中：投票结束后请结束测评")
        else:
            title = _("形成支部评星定级意见并上报")
        items.append(WorkItem("branch_rating.deliberate", title, *meeting_page, detail=where, due=due))
    return items


def _to_forward(session: Session, principal: Principal) -> list[WorkItem]:
    """Branches waiting for the person's 机关党委/党总支 to forward or return them, per round."""
    if not any(grant.role is Role.ORG_STAFF for grant in principal.grants):
        return []
    rows = session.execute(
        select(BranchRound.year, BranchRound.self_report_due_at, func.count())
        .join(BranchRating, BranchRating.round_id == BranchRound.id)
        .join(Organisation, BranchRating.branch_id == Organisation.id)
        .where(
            BranchRound.state == BranchRoundState.OPEN,
            BranchRating.step == RatingStep.ORG_REVIEW,
            role_scope(principal, Action.BRANCH_FORWARD, Role.ORG_STAFF),
        )
        .group_by(BranchRound.id, BranchRound.year, BranchRound.self_report_due_at)
    )
    return [
        WorkItem(
            "branch_rating.forward",
            _("审核所属党支部的星级评定并转报工委"),
            "tenant.branch_rating_org_review.index",
            {},
            detail=_where(year),
            due=due,
            count=int(n),
        )
        for year, due, n in rows
    ]


def _committee(session: Session, principal: Principal, now: dt.datetime) -> list[WorkItem]:
    """Per open round: branches to decide, branches not reported yet, or a round ready to finalise."""
    rows = session.execute(
        select(
            BranchRound.id,
            BranchRound.year,
            BranchRound.self_report_due_at,
            BranchRound.committee_due_at,
            BranchRating.step,
            func.count(),
        )
        .join(BranchRating, BranchRating.round_id == BranchRound.id)
        .join(Organisation, BranchRating.branch_id == Organisation.id)
        .where(BranchRound.state == BranchRoundState.OPEN, org_scope(principal, Action.BRANCH_DECIDE))
        .group_by(
            BranchRound.id,
            BranchRound.year,
            BranchRound.self_report_due_at,
            BranchRound.committee_due_at,
            BranchRating.step,
        )
    ).all()
    by_round: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_round[row[0]].append(row)
    items: list[WorkItem] = []
    for round_id, steps in by_round.items():
        first = steps[0]
        where = _where(first.year)
        target = ("tenant.branch_rating_committee.detail", {"branch_round_id": round_id})
        counts = {row.step: int(row[5]) for row in steps}
        if counts.get(RatingStep.COMMITTEE):
            items.append(
                WorkItem(
                    "branch_rating.decide",
                    _("定星：审定各党支部的星级"),
                    *target,
                    detail=where,
                    due=first.committee_due_at,
                    count=counts[RatingStep.COMMITTEE],
                )
            )
        behind = sum(counts.get(step, 0) for step in _NOT_REPORTED)
        if behind and is_near(first.self_report_due_at, now):  # only as the deadline comes (or passed)
            items.append(
                WorkItem(
                    "branch_rating.not_reported",
                    _("督促尚未报送自评的党支部"),
                    *target,
                    detail=where,
                    due=first.self_report_due_at,
                    count=behind,
                )
            )
        if set(counts) == {RatingStep.DECIDED}:
            items.append(
                WorkItem(
                    "branch_rating.finalise",
                    _("全部党支部已定星，可召开会议确定并公布"),
                    *target,
                    detail=where,
                    due=first.committee_due_at,
                )
            )
    return items
