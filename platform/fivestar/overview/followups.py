"""The member follow-up overview: across branches, what the rules ask after a member round's results
and what has been recorded — mentors (帮扶指导员), talks (谈话教育), rectification deadlines for
members not rated (限期整改) and their results — what is overdue first.

It reads what the branches recorded on their round's follow-up page (member_rounds/followups.py) and
links back there; it records nothing and never acts on a member (the notice: people decide). The
scope is the principal's (`org_scope(principal, FOLLOWUP_VIEW)`): the committee sees the district, a
机关党委/党总支 its subtree, a branch's secretary and committee their own branch.

A fixed number of statements whatever the number of branches or members: the rounds, the round's
rules, the evaluations that need a follow-up (with member and branch), their mentors, their talks,
their rectifications, and the committee's flagged list (four low periods in a row).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import and_, exists, false, func, or_, select
from sqlalchemy.orm import Session, aliased

from fivestar.accounts.policy import Action, org_scope
from fivestar.accounts.principal import Principal
from fivestar.i18n import _
from fivestar.member_rounds.committee import FLAG_RUN, flag_threshold, flagged_members
from fivestar.member_rounds.core import round_rules
from fivestar.member_rounds.followups import needs_mentors, needs_rectification, needs_talk
from fivestar.member_rounds.honour import period_label
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationStatus,
    MemberRound,
    Mentorship,
    Rectification,
    RoundBranch,
    TalkRecord,
)
from fivestar.member_rounds.notice import member_level_text
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member

RESULT_STEPS = (BranchStep.NOTICE, BranchStep.FINALISED)  # results settled: follow-ups may be recorded


class Status(enum.IntEnum):
    """Where a member's follow-up stands; the value is the sort order (overdue first)."""

    OVERDUE = 0  # a rectification deadline passed without a recorded result
    TODO = 1  # something the rules ask is not recorded yet (mentors, a talk, a deadline)
    WAITING = 2  # a rectification deadline still ahead
    DONE = 3  # everything asked is recorded

    @property
    def label(self) -> str:
        return {
            Status.OVERDUE: _("已逾期"),
            Status.TODO: _("待落实"),
            Status.WAITING: _("整改中"),
            Status.DONE: _("已落实"),
        }[self]


@dataclass(frozen=True)
class RoundChoice:
    round_id: int
    period_key: str
    label: str


@dataclass
class FollowUpLine:
    """One member who needs a follow-up in the chosen round."""

    evaluation_id: int
    round_branch_id: int
    member_id: int
    member_no: str
    name: str
    branch_id: int
    branch: Organisation  # for asking the policy whether the person records this branch's follow-ups
    branch_name: str
    org_name: str  # the 机关党委/党总支 above the branch ("" for a branch directly under the committee)
    sort_key: tuple[str, str]
    result: str
    needs_mentors: bool
    needs_talk: bool
    needs_rectification: bool
    mentors: list[str] = field(default_factory=list)
    talks: int = 0
    last_talk: dt.date | None = None
    due_on: dt.date | None = None
    completed_on: dt.date | None = None
    outcome: str | None = None
    flagged: bool = False  # on the committee's list: four low periods in a row
    status: Status = Status.DONE
    missing: list[str] = field(default_factory=list)
    days_overdue: int | None = None
    earlier_period: str | None = None  # set when the line is an earlier period's rectification still open


@dataclass
class BranchSummary:
    """The counts of one branch, for the committee's grouped table."""

    branch_id: int
    branch_name: str
    org_name: str
    round_branch_id: int
    sort_key: str  # the branch's path: 机关党委 by 机关党委, in tree order
    members: int = 0  # members needing a follow-up
    mentors_needed: int = 0
    mentors_assigned: int = 0
    talks_needed: int = 0
    talks_held: int = 0
    rectifications_needed: int = 0
    rectifications_set: int = 0
    rectifications_done: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class FollowUpOverview:
    rounds: tuple[RoundChoice, ...]
    chosen: RoundChoice | None
    lines: list[FollowUpLine]
    branches: list[BranchSummary]
    today: dt.date
    flag_run: int

    @property
    def overdue(self) -> int:
        return sum(1 for line in self.lines if line.status is Status.OVERDUE)

    @property
    def todo(self) -> int:
        return sum(1 for line in self.lines if line.status is Status.TODO)


def rounds_with_results(session: Session) -> list[RoundChoice]:
    """Member rounds in which some branch's results are settled (on notice or reported), newest first."""
    settled = exists().where(RoundBranch.round_id == MemberRound.id, RoundBranch.step.in_(RESULT_STEPS))
    rows = session.execute(
        select(MemberRound.id, MemberRound.period_key)
        .where(settled)
        .order_by(MemberRound.period_start.desc(), MemberRound.id.desc())
    )
    return [RoundChoice(rid, key, period_label(key)) for rid, key in rows]


def follow_up_overview(
    session: Session,
    principal: Principal,
    today: dt.date,
    *,
    round_id: int | None = None,
    branch_id: int | None = None,
) -> FollowUpOverview:
    """Every member needing a follow-up in one round (the newest with results unless `round_id`), in the
    principal's scope (and in one branch when `branch_id`), overdue first."""
    rounds = tuple(rounds_with_results(session))
    chosen = next((r for r in rounds if r.round_id == round_id), None) if round_id is not None else None
    if chosen is None:
        chosen = rounds[0] if rounds and round_id is None else None
    if chosen is None:
        return FollowUpOverview(rounds, None, [], [], today, FLAG_RUN)
    member_round = session.scalars(select(MemberRound).where(MemberRound.id == chosen.round_id)).one()
    rules = round_rules(session, member_round)
    follow = rules.member.follow_up
    low = [v for v in (follow.talk_at_or_below, follow.mentor_at_or_below if follow.mentors else None) if v is not None]
    wanted = or_(
        Evaluation.rated.is_(False),
        and_(Evaluation.rated.is_(True), Evaluation.level <= max(low)) if low else false(),
    )
    parent = aliased(Organisation)
    # An earlier period's rectification still without a result stays on the list (marked with its
    # period): a deadline does not stop mattering because a newer round has results.
    still_open = exists().where(Rectification.evaluation_id == Evaluation.id, Rectification.completed_on.is_(None))
    base = (
        select(Evaluation.id)
        .join(RoundBranch, RoundBranch.id == Evaluation.round_branch_id)
        .join(MemberRound, MemberRound.id == Evaluation.round_id)
        .join(Organisation, Organisation.id == Evaluation.branch_id)
        .where(
            or_(
                and_(Evaluation.round_id == member_round.id, wanted),
                and_(MemberRound.period_start < member_round.period_start, still_open),
            ),
            Evaluation.status == EvaluationStatus.ACTIVE,
            RoundBranch.step.in_(RESULT_STEPS),
            org_scope(principal, Action.FOLLOWUP_VIEW),
        )
    )
    if branch_id is not None:
        base = base.where(Evaluation.branch_id == branch_id)
    ids = base.scalar_subquery()
    rows = session.execute(
        select(Evaluation, Member, Organisation, parent, MemberRound.period_key)
        .join(MemberRound, MemberRound.id == Evaluation.round_id)
        .join(Member, Member.id == Evaluation.member_id)
        .join(Organisation, Organisation.id == Evaluation.branch_id)
        .outerjoin(parent, parent.id == Organisation.parent_id)
        .where(Evaluation.id.in_(ids))
    ).all()
    mentors: dict[int, list[str]] = defaultdict(list)
    for evaluation_id, name in session.execute(
        select(Mentorship.evaluation_id, Member.name)
        .join(Member, Member.id == Mentorship.mentor_member_id)
        .where(Mentorship.evaluation_id.in_(ids))
        .order_by(Member.member_no, Member.id)
    ):
        mentors[evaluation_id].append(name)
    talks = {
        evaluation_id: (int(count), last)
        for evaluation_id, count, last in session.execute(
            select(TalkRecord.evaluation_id, func.count(), func.max(TalkRecord.talk_date))
            .where(TalkRecord.evaluation_id.in_(ids))
            .group_by(TalkRecord.evaluation_id)
        )
    }
    rectifications = {
        r.evaluation_id: r for r in session.scalars(select(Rectification).where(Rectification.evaluation_id.in_(ids)))
    }
    flagged = {
        f.member_id for f in flagged_members(session, principal, flag_threshold(rules), rules.member.below_label)
    }
    lines: list[FollowUpLine] = []
    summaries: dict[int, BranchSummary] = {}
    for evaluation, member, branch, above, period_key in rows:
        carried = evaluation.round_id != member_round.id  # an earlier period's open deadline
        org_name = above.name if above is not None and above.parent_id is not None else ""
        line = FollowUpLine(
            evaluation_id=evaluation.id,
            round_branch_id=evaluation.round_branch_id,
            member_id=member.id,
            member_no=member.member_no,
            name=member.name,
            branch_id=branch.id,
            branch=branch,
            branch_name=branch.name,
            org_name=org_name,
            sort_key=(branch.path, member.member_no),
            result=member_level_text(
                evaluation.level, evaluation.rated, evaluation.disqualifier, rules.member.below_label
            ),
            needs_mentors=not carried and needs_mentors(follow, evaluation),
            needs_talk=not carried and needs_talk(follow, evaluation),
            needs_rectification=needs_rectification(evaluation),
            mentors=mentors.get(evaluation.id, []),
            flagged=member.id in flagged,
            earlier_period=period_label(period_key) if carried else None,
        )
        line.talks, line.last_talk = talks.get(evaluation.id, (0, None))
        rectification = rectifications.get(evaluation.id)
        if rectification is not None:
            line.due_on, line.completed_on, line.outcome = (
                rectification.due_on,
                rectification.completed_on,
                rectification.outcome,
            )
        _settle(line, today)
        lines.append(line)
        _count(summaries, line, branch)
    lines.sort(key=lambda line: (line.status.value, line.due_on or dt.date.max, line.sort_key))
    branches = sorted(summaries.values(), key=lambda s: s.sort_key)
    return FollowUpOverview(rounds, chosen, lines, branches, today, FLAG_RUN)


def _settle(line: FollowUpLine, today: dt.date) -> None:
    """The line's status and what is missing, from what is recorded."""
    if line.needs_mentors and not line.mentors:
        line.missing.append(_("未安排帮扶指导员"))
    if line.needs_talk and not line.talks:
        line.missing.append(_("未谈话"))
    if line.needs_rectification and line.due_on is None:
        line.missing.append(_("未设定整改期限"))
    open_deadline = line.needs_rectification and line.due_on is not None and line.completed_on is None
    if open_deadline and line.due_on is not None and line.due_on < today:
        line.status = Status.OVERDUE
        line.days_overdue = (today - line.due_on).days
    elif line.missing:
        line.status = Status.TODO
    elif open_deadline:
        line.status = Status.WAITING
    else:
        line.status = Status.DONE


def _count(summaries: dict[int, BranchSummary], line: FollowUpLine, branch: Organisation) -> None:
    summary = summaries.get(branch.id)
    if summary is None:
        summary = summaries[branch.id] = BranchSummary(
            branch.id, branch.name, line.org_name, line.round_branch_id, branch.path
        )
    summary.members += 1
    summary.mentors_needed += line.needs_mentors
    summary.mentors_assigned += line.needs_mentors and bool(line.mentors)
    summary.talks_needed += line.needs_talk
    summary.talks_held += line.needs_talk and line.talks > 0
    summary.rectifications_needed += line.needs_rectification
    summary.rectifications_set += line.needs_rectification and line.due_on is not None
    summary.rectifications_done += line.needs_rectification and line.completed_on is not None
    summary.overdue += line.status is Status.OVERDUE


__all__ = [
    "BranchSummary",
    "FollowUpLine",
    "FollowUpOverview",
    "RoundChoice",
    "Status",
    "follow_up_overview",
    "rounds_with_results",
]
