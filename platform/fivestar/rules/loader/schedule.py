"""Loading ``[schedule]``: the time zone, branch and member dates, public notice and reminders."""

from __future__ import annotations

import calendar
import zoneinfo
from itertools import pairwise

from .._reader import Reader
from ..model import (
    DEFAULT_TIMEZONE,
    BranchSchedule,
    MemberSchedule,
    MonthDay,
    PublicNotice,
    Reminders,
    Schedule,
)
from ..registry import (
    OPENING_RULES,
)
from .common import _NINE


def _schedule(r: Reader) -> Schedule | None:
    tz = r.text("timezone", required=False, default=DEFAULT_TIMEZONE)
    if tz is not None:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            r.error(
                "timezone",
                f"未知时区 '{tz}'（应如 Asia/Shanghai）",
                f"unknown time zone '{tz}' (use an IANA name such as Asia/Shanghai)",
            )
            tz = None
    branch_r = r.table("branch")
    branch = _branch_schedule(branch_r) if branch_r else None
    member_r = r.table("member")
    member = _member_schedule(member_r) if member_r else None
    notice_r = r.table("public_notice")
    notice: PublicNotice | None = None
    if notice_r is not None:
        days = notice_r.integer("days", minimum=1, maximum=60)
        working = notice_r.boolean("working_days")
        notice_r.finish()
        if days is not None and working is not None:
            notice = PublicNotice(days=days, working_days=working)
    reminders_r = r.table("reminders", required=False)
    reminders: Reminders | None = Reminders()
    if reminders_r is not None:
        reminders = _reminders(reminders_r)
    r.finish()
    if tz is None or branch is None or member is None or notice is None or reminders is None:
        return None
    return Schedule(timezone=tz, branch=branch, member=member, public_notice=notice, reminders=reminders)


def _month_day(r: Reader, key: str, *, required: bool) -> tuple[bool, MonthDay | None]:
    """(ok, value): a ``{month, day?}`` table; day omitted = end of month (x月底)."""
    t = r.table(key, required=required)
    if t is None:
        return (not required and not r.has(key)), None
    month = t.integer("month", minimum=1, maximum=12)
    day = t.integer("day", required=False, minimum=1, maximum=31)
    t.finish()
    if month is None or (t.has("day") and day is None):
        return False, None
    if day is not None:
        last = 29 if month == 2 else calendar.monthrange(2001, month)[1]
        if day > last:
            t.error(
                "day", f"{month}月没有{day}日（最多 {last} 日）", f"month {month} has no day {day} (at most {last})"
            )
            return False, None
    return True, MonthDay(month=month, day=day)


def _branch_schedule(r: Reader) -> BranchSchedule | None:
    ok_open, opens = _month_day(r, "opens", required=False)
    ok_self, self_due = _month_day(r, "self_report_due", required=True)
    ok_back, back_due = _month_day(r, "committee_feedback_due", required=True)
    auto_open = r.boolean("auto_open", default=False)
    open_time = r.clock("open_time", default=_NINE)
    r.finish()
    if not (ok_open and ok_self and ok_back) or self_due is None or back_due is None:
        return None
    if auto_open is None or open_time is None:
        return None
    if auto_open and opens is None:
        r.error("auto_open", "自动开启须同时填写开始日期 opens", "opening by itself needs the date: set `opens`")
        return None
    if opens is not None and opens.sort_key() > self_due.sort_key():
        r.error(
            "self_report_due",
            f"{self_due.describe()} 早于开始日期 {opens.describe()}",
            f"due before the round opens ({opens.describe()})",
        )
        return None
    if back_due.sort_key() < self_due.sort_key():
        r.error(
            "committee_feedback_due",
            f"{back_due.describe()} 早于支部自评上报截止 {self_due.describe()}",
            "the committee's answer is due before the branches report",
        )
        return None
    return BranchSchedule(
        self_report_due=self_due, committee_feedback_due=back_due, opens=opens, auto_open=auto_open, open_time=open_time
    )


def _member_schedule(r: Reader) -> MemberSchedule | None:
    opens = r.choice("opens", OPENING_RULES)
    open_time = r.clock("open_time", default=_NINE)
    working = r.boolean("working_days")
    steps: list[tuple[str, int | None]] = []
    for key in ("self_days", "joint_days", "review_days"):
        steps.append((key, r.integer(key, minimum=1, maximum=365)))
    report = r.integer("report_days", required=False, minimum=1, maximum=365)
    auto_open = r.boolean("auto_open", default=False)
    r.finish()
    ok = True
    ordered = [(k, v) for k, v in steps if v is not None]
    if report is not None:
        ordered.append(("report_days", report))
    for (prev_key, prev), (key, value) in pairwise(ordered):
        if value <= prev:
            r.error(
                key,
                f"{value} 不晚于 {prev_key} = {prev}：各步骤截止须依次推后",
                f"{value} is not after {prev_key} = {prev}; step deadlines must increase",
            )
            ok = False
    self_days, joint_days, review_days = (v for _, v in steps)
    if (
        not ok
        or opens is None
        or open_time is None
        or working is None
        or self_days is None
        or joint_days is None
        or review_days is None
        or (r.has("report_days") and report is None)
        or auto_open is None
    ):
        return None
    return MemberSchedule(
        opens="first_day_after_period" if opens == "first_day_after_period" else "first_working_day_after_period",
        open_time=open_time,
        working_days=working,
        self_days=self_days,
        joint_days=joint_days,
        review_days=review_days,
        report_days=report,
        auto_open=auto_open,
    )


def _reminders(r: Reader) -> Reminders | None:
    leads = r.int_list("lead_days", minimum=0, maximum=60)
    if leads is not None and len(set(leads)) != len(leads):
        r.error("lead_days", "提醒提前天数重复", "lead days must not repeat")
        leads = None
    send = r.clock("send_time", default=_NINE)
    r.finish()
    if leads is None or send is None:
        return None
    return Reminders(lead_days=tuple(sorted(leads, reverse=True)), send_time=send)
