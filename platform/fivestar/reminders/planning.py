"""Reminder rows for every open round: one per step deadline and lead time (rules.schedule.reminders).

The key names the round, the step, the deadline's date and the lead time (`m12:self:20261014:3`), so
a reminder is planned once; when a deadline is extended the old rows find their date changed and
finish without sending, and the new date gets rows of its own.

Two member-round dates are not the round's own deadlines but each branch's or member's, so their
rows group everyone whose date falls on the same day:

- `notice` — a branch's public notice (公示) ends: one row per round and end date, sent on the first
  working day after it (lead 0), telling the secretaries of branches still in notice that they may
  report their list (`m12:notice:20261020:0`);
- `rectify` — a member's rectification deadline (限期整改): one row per round, deadline and lead time,
  to the secretaries of the members' branches, whatever the round's state — rectifications come
  after the results (`m12:rectify:20261201:3`). Their lead times and hour are the tenant's current
  rules', the round's pinned version having been written before anyone was given a deadline.

Items of the rectification plans (整改提升计划) that follow a finalised branch round have deadlines of
their own: one row per round, deadline and lead time (`p7:item:20260630:7`, p and the branch
round's id), for published plans' items not done, to the secretaries of the branches concerned, at
the lead days of the tenant's current rules (`[improvement] lead_days`) and its reminder hour.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRound, BranchRoundState
from fivestar.improvement.models import ImprovementPlan, ItemStatus, PlanItem, PlanState
from fivestar.member_rounds.models import BranchStep, Evaluation, MemberRound, Rectification, RoundBranch, RoundState
from fivestar.rules import RuleSet
from fivestar.tenants.models import RuleSetVersion
from fivestar.timekeeping import clock
from fivestar.timekeeping.local_times import local_to_utc

#: A reminder the platform missed (it was down) still goes out this late, not later.
GRACE = dt.timedelta(hours=12)
_A_WEEK = dt.timedelta(days=7)  # a notice that ended longer ago than this (and its holidays) is not looked at

MEMBER_STEPS: dict[str, str] = {
    "self": "self_due_at",
    "joint": "joint_due_at",
    "review": "review_due_at",
    "report": "report_due_at",
}
#: Member-round steps whose dates are each branch's (公示期满) or each member's (限期整改).
NOTICE_STEP = "notice"
RECTIFY_STEP = "rectify"
MEMBER_DATED_STEPS = frozenset({NOTICE_STEP, RECTIFY_STEP})
BRANCH_STEPS: dict[str, str] = {
    "self_report": "self_report_due_at",
    "committee": "committee_due_at",
}
#: An item of a published rectification plan (the key's round is the branch round the plans follow).
PLAN_ITEM_STEP = "item"


@dataclass(frozen=True)
class ReminderKey:
    """`m12:self:20261014:3` — round kind (m/b, p: a branch round's plans) and id, step, deadline date
    (local), lead days."""

    round_kind: str
    round_id: int
    step: str
    deadline: dt.date
    lead: int

    def __str__(self) -> str:
        return f"{self.round_kind}{self.round_id}:{self.step}:{self.deadline:%Y%m%d}:{self.lead}"

    @classmethod
    def parse(cls, text: str) -> ReminderKey:
        head, step, day, lead = text.split(":")
        allowed = {"m": MEMBER_STEPS.keys() | MEMBER_DATED_STEPS, "b": BRANCH_STEPS.keys(), "p": {PLAN_ITEM_STEP}}
        if step not in allowed.get(head[:1], set()):
            raise ValueError(text)
        return cls(head[:1], int(head[1:]), step, dt.datetime.strptime(day, "%Y%m%d").date(), int(lead))


def local_day(instant: dt.datetime, timezone: str) -> dt.date:
    return instant.astimezone(ZoneInfo(timezone)).date()


def reminder_items(session: Session, timezone: str, now: dt.datetime, rules_of: dict[int, RuleSet],
                   current: RuleSet | None = None) -> list[tuple[ReminderKey, dt.datetime]]:
    """(key, due instant) for every reminder of the tenant's open rounds still worth sending, and for
    every rectification deadline. `rules_of` maps rule-set version ids to rule sets (the rounds'
    pinned versions); `current` is the tenant's latest rule set (for rectifications)."""
    wanted: list[tuple[ReminderKey, dt.datetime]] = []
    rounds: list[tuple[str, int, int, dt.datetime, dict[str, dt.datetime | None]]] = []
    for member_round in session.scalars(select(MemberRound).where(MemberRound.state == RoundState.OPEN)):
        rounds.append(("m", member_round.id, member_round.rules_version_id, member_round.opened_at,
                       {step: getattr(member_round, column) for step, column in MEMBER_STEPS.items()}))
    for branch_round in session.scalars(select(BranchRound).where(BranchRound.state == BranchRoundState.OPEN)):
        rounds.append(("b", branch_round.id, branch_round.rules_version_id, branch_round.opened_at,
                       {step: getattr(branch_round, column) for step, column in BRANCH_STEPS.items()}))
    for kind, round_id, version_id, opened_at, deadlines in rounds:
        rules = rules_of.get(version_id)
        if rules is None:
            continue
        reminders = rules.schedule.reminders
        for step, due_at in deadlines.items():
            if due_at is None or due_at <= now:
                continue
            deadline = local_day(due_at, timezone)
            for lead in reminders.lead_days:
                at = local_to_utc(deadline - dt.timedelta(days=lead), reminders.send_time, timezone)
                if at < opened_at or at < now - GRACE or at > due_at:
                    continue
                wanted.append((ReminderKey(kind, round_id, step, deadline, lead), at))
    wanted.extend(_notice_end_items(session, timezone, now, rules_of))
    if current is not None:
        wanted.extend(_rectification_items(session, timezone, now, current))
        wanted.extend(_plan_item_items(session, timezone, now, current))
    return wanted


def _plan_item_items(session: Session, timezone: str, now: dt.datetime,
                     current: RuleSet) -> list[tuple[ReminderKey, dt.datetime]]:
    """One row per branch round, plan-item deadline and lead time, for items of published plans that
    are not done and whose deadline has not passed (one query)."""
    leads = current.improvement.lead_days
    if not leads:
        return []
    send_time = current.schedule.reminders.send_time
    today = now.astimezone(ZoneInfo(timezone)).date()
    rows = session.execute(
        select(ImprovementPlan.round_id, PlanItem.deadline, func.min(ImprovementPlan.published_at))
        .join(ImprovementPlan, (ImprovementPlan.id == PlanItem.plan_id)
              & (ImprovementPlan.tenant_id == PlanItem.tenant_id))
        .where(ImprovementPlan.state == PlanState.PUBLISHED, PlanItem.status != ItemStatus.DONE,
               PlanItem.deadline.is_not(None), PlanItem.deadline >= today - dt.timedelta(days=1))
        .group_by(ImprovementPlan.round_id, PlanItem.deadline)
    )
    wanted: list[tuple[ReminderKey, dt.datetime]] = []
    for round_id, due_on, first_published in rows:
        if due_on is None:  # pragma: no cover - the query asks for items with a deadline
            continue
        for lead in leads:
            at = local_to_utc(due_on - dt.timedelta(days=lead), send_time, timezone)
            if (first_published is not None and at < first_published) or at < now - GRACE:
                continue
            wanted.append((ReminderKey("p", round_id, PLAN_ITEM_STEP, due_on, lead), at))
    return wanted


def _notice_end_items(session: Session, timezone: str, now: dt.datetime,
                      rules_of: dict[int, RuleSet]) -> list[tuple[ReminderKey, dt.datetime]]:
    """One row per open round and day on which branches' public notices end, at the reminder hour of
    the first working day after that day."""
    rows = session.execute(
        select(RoundBranch.round_id, MemberRound.rules_version_id, RoundBranch.notice_ends_at)
        .join(MemberRound, (MemberRound.id == RoundBranch.round_id) & (MemberRound.tenant_id == RoundBranch.tenant_id))
        .where(MemberRound.state == RoundState.OPEN, RoundBranch.step == BranchStep.NOTICE,
               RoundBranch.notice_ends_at.is_not(None), RoundBranch.notice_ends_at > now - GRACE - _A_WEEK)
        .distinct()
    )
    wanted: dict[ReminderKey, dt.datetime] = {}
    for round_id, version_id, ends_at in rows:
        rules = rules_of.get(version_id)
        if rules is None or ends_at is None:
            continue
        ended_on = local_day(ends_at, timezone)
        day = ended_on + dt.timedelta(days=1)
        while not clock.is_working_day(day):
            day += dt.timedelta(days=1)
        at = local_to_utc(day, rules.schedule.reminders.send_time, timezone)
        if at < now - GRACE:
            continue
        wanted[ReminderKey("m", round_id, NOTICE_STEP, ended_on, 0)] = at
    return list(wanted.items())


def _rectification_items(session: Session, timezone: str, now: dt.datetime,
                         current: RuleSet) -> list[tuple[ReminderKey, dt.datetime]]:
    """One row per round, rectification deadline and lead time, for deadlines not yet past."""
    reminders = current.schedule.reminders
    if not reminders.lead_days:
        return []
    today = now.astimezone(ZoneInfo(timezone)).date()
    rows = session.execute(
        select(Evaluation.round_id, Rectification.due_on, func.min(Rectification.set_at))
        .join(Evaluation, (Evaluation.id == Rectification.evaluation_id)
              & (Evaluation.tenant_id == Rectification.tenant_id))
        .where(Rectification.completed_on.is_(None), Rectification.due_on >= today - dt.timedelta(days=1))
        .group_by(Evaluation.round_id, Rectification.due_on)
    )
    wanted: list[tuple[ReminderKey, dt.datetime]] = []
    for round_id, due_on, first_set in rows:
        for lead in reminders.lead_days:
            at = local_to_utc(due_on - dt.timedelta(days=lead), reminders.send_time, timezone)
            if at < first_set or at < now - GRACE:
                continue
            wanted.append((ReminderKey("m", round_id, RECTIFY_STEP, due_on, lead), at))
    return wanted


def pinned_versions(session: Session) -> set[int]:
    """Rule-set versions the tenant's open rounds are pinned to."""
    member = select(MemberRound.rules_version_id).where(MemberRound.state == RoundState.OPEN)
    branch = select(BranchRound.rules_version_id).where(BranchRound.state == BranchRoundState.OPEN)
    return set(session.scalars(member.union(branch)))


def versions(session: Session, ids: set[int]) -> list[RuleSetVersion]:
    if not ids:
        return []
    return list(session.scalars(select(RuleSetVersion).where(RuleSetVersion.id.in_(ids))))
