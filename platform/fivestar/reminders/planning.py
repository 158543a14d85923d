"""Reminder rows for every open round: one per step deadline and lead time (rules.schedule.reminders).

The key names the round, the step, the deadline's date and the lead time (`m12:self:20261014:3`), so
a reminder is planned once; when a deadline is extended the old rows find their date changed and
finish without sending, and the new date gets rows of its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRound, BranchRoundState
from fivestar.member_rounds.models import MemberRound, RoundState
from fivestar.rules import RuleSet
from fivestar.scheduling.times import local_to_utc
from fivestar.tenants.models import RuleSetVersion

#: A reminder the platform missed (it was down) still goes out this late, not later.
GRACE = dt.timedelta(hours=12)

MEMBER_STEPS: dict[str, str] = {
    "self": "self_due_at",
    "joint": "joint_due_at",
    "review": "review_due_at",
    "report": "report_due_at",
}
BRANCH_STEPS: dict[str, str] = {
    "self_report": "self_report_due_at",
    "committee": "committee_due_at",
}


@dataclass(frozen=True)
class ReminderKey:
    """`m12:self:20261014:3` — round kind (m/b) and id, step, deadline date (local), lead days."""

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
        if head[:1] not in ("m", "b") or (head[:1] == "m" and step not in MEMBER_STEPS) or (
            head[:1] == "b" and step not in BRANCH_STEPS
        ):
            raise ValueError(text)
        return cls(head[:1], int(head[1:]), step, dt.datetime.strptime(day, "%Y%m%d").date(), int(lead))


def local_day(instant: dt.datetime, timezone: str) -> dt.date:
    return instant.astimezone(ZoneInfo(timezone)).date()


def reminder_items(session: Session, timezone: str, now: dt.datetime,
                   rules_of: dict[int, RuleSet]) -> list[tuple[ReminderKey, dt.datetime]]:
    """(key, due instant) for every reminder of the tenant's open rounds still worth sending.
    `rules_of` maps rule-set version ids to rule sets (the rounds' pinned versions)."""
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
