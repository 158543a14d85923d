"""Dates from the rules: round periods, openings, step deadlines, public notice and reminders.

Pure functions: the working-day calendar is passed in (``is_working_day``), so this module does not
depend on a holiday library; callers pass ``chinese_calendar.is_workday`` to count 调休 correctly.
The default counts Monday–Friday.  All dates are in the tenant's time zone (``rules.schedule``).

Counting conventions (also in ``tenants/README.md``):

* a step deadline "N days after opening" is the end of the N-th (working) day *after* the opening
  day — the opening day itself is not counted;
* a public notice of N (working) days *includes* its first day when that day counts.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .model import MonthDay, RuleSet

__all__ = [
    "MemberDeadlines",
    "Period",
    "WorkingDay",
    "add_days",
    "branch_deadlines",
    "member_period",
    "member_round_deadlines",
    "member_round_opening",
    "public_notice_end",
    "reminder_dates",
    "weekday_is_working",
]

WorkingDay = Callable[[date], bool]


def weekday_is_working(day: date) -> bool:
    """Monday–Friday; a stand-in when no holiday calendar is given."""
    return day.weekday() < 5


def add_days(start: date, days: int, *, working_days: bool,
             is_working_day: WorkingDay | None = None) -> date:
    """The ``days``-th calendar or working day after ``start`` (``start`` not counted)."""
    if days < 0:
        raise ValueError("days must be >= 0")
    if not working_days:
        return start + timedelta(days=days)
    check = is_working_day or weekday_is_working
    current, counted = start, 0
    while counted < days:
        current += timedelta(days=1)
        if check(current):
            counted += 1
    return current


@dataclass(frozen=True, slots=True)
class Period:
    """A member rating period: ``key`` such as ``2025Q1``, ``2025H2`` or ``2025``; dates inclusive."""

    key: str
    start: date
    end: date


def member_period(rules: RuleSet, on: date) -> Period:
    """The member rating period (by the rules' cadence) that contains ``on``."""
    cadence = rules.member.cadence
    year = on.year
    if cadence == "quarter":
        q = (on.month - 1) // 3
        start, end_month, key = date(year, 3 * q + 1, 1), 3 * q + 3, f"{year}Q{q + 1}"
    elif cadence == "half_year":
        h = (on.month - 1) // 6
        start, end_month, key = date(year, 6 * h + 1, 1), 6 * h + 6, f"{year}H{h + 1}"
    else:
        start, end_month, key = date(year, 1, 1), 12, str(year)
    end = date(year, end_month, calendar.monthrange(year, end_month)[1])
    return Period(key=key, start=start, end=end)


def member_round_opening(rules: RuleSet, period_end: date,
                         is_working_day: WorkingDay | None = None) -> datetime:
    """When the round for a period ending ``period_end`` opens (aware datetime in tenant time)."""
    sched = rules.schedule.member
    day = period_end + timedelta(days=1)
    if sched.opens == "first_working_day_after_period":
        check = is_working_day or weekday_is_working
        while not check(day):
            day += timedelta(days=1)
    return datetime.combine(day, sched.open_time, tzinfo=ZoneInfo(rules.schedule.timezone))


@dataclass(frozen=True, slots=True)
class MemberDeadlines:
    """Last day of each member-round step (个人自评, 党群联评, 支部审评, 上报名单)."""

    self_assessment: date
    joint: date
    review: date
    report: date | None

    def as_dict(self) -> dict[str, date]:
        items = {"self": self.self_assessment, "joint": self.joint, "review": self.review}
        if self.report is not None:
            items["report"] = self.report
        return items


def member_round_deadlines(rules: RuleSet, opened_on: date,
                           is_working_day: WorkingDay | None = None) -> MemberDeadlines:
    """Step deadlines for a member round opened on ``opened_on`` (see the counting conventions)."""
    sched = rules.schedule.member

    def after(n: int) -> date:
        return add_days(opened_on, n, working_days=sched.working_days, is_working_day=is_working_day)

    return MemberDeadlines(self_assessment=after(sched.self_days), joint=after(sched.joint_days),
                           review=after(sched.review_days),
                           report=after(sched.report_days) if sched.report_days is not None else None)


def public_notice_end(rules: RuleSet, first_day: date, is_working_day: WorkingDay | None = None) -> date:
    """Last day of a 公示 starting on ``first_day`` (which counts when it is a (working) day)."""
    notice = rules.schedule.public_notice
    if not notice.working_days:
        return first_day + timedelta(days=notice.days - 1)
    check = is_working_day or weekday_is_working
    day = first_day if check(first_day) else add_days(first_day, 1, working_days=True,
                                                      is_working_day=check)
    return add_days(day, notice.days - 1, working_days=True, is_working_day=check)


def reminder_dates(rules: RuleSet, deadline: date) -> tuple[date, ...]:
    """Calendar dates on which to remind about ``deadline`` (earliest first)."""
    return tuple(deadline - timedelta(days=d) for d in rules.schedule.reminders.lead_days)


def _resolve(year: int, md: MonthDay) -> date:
    day = md.day if md.day is not None else calendar.monthrange(year, md.month)[1]
    if md.month == 2 and day == 29 and not calendar.isleap(year):
        day = 28
    return date(year, md.month, day)


def branch_deadlines(rules: RuleSet, year: int) -> dict[str, date]:
    """Dates of the branch round held in ``year`` (opens, self_report_due, committee_feedback_due)."""
    sched = rules.schedule.branch
    result = {}
    if sched.opens is not None:
        result["opens"] = _resolve(year, sched.opens)
    result["self_report_due"] = _resolve(year, sched.self_report_due)
    result["committee_feedback_due"] = _resolve(year, sched.committee_feedback_due)
    return result
