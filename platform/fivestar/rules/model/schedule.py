"""The schedule part of the rule set: the dates and periods of a tenant's rounds, in its time zone.

The date arithmetic on it is ``fivestar.rules.schedule``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from typing import Literal

from .common import Json

#: The time zone of a rule set that names none, and the platform's default for a tenant
#: (re-exported as `fivestar.timekeeping.DEFAULT_TIMEZONE`; the rule engine imports nothing of ours).
DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class MonthDay:
    """A yearly date; ``day = None`` means the end of the month (x月底)."""

    month: int
    day: int | None = None

    def sort_key(self) -> tuple[int, int]:
        return (self.month, 32 if self.day is None else self.day)

    def describe(self) -> str:
        return f"{self.month}月底" if self.day is None else f"{self.month}月{self.day}日"

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {"month": self.month}
        if self.day is not None:
            doc["day"] = self.day
        return doc


@dataclass(frozen=True, slots=True)
class BranchSchedule:
    """Branch round dates within the year: self-ratings reported up, committee answers back."""

    self_report_due: MonthDay
    committee_feedback_due: MonthDay
    opens: MonthDay | None = None
    #: The workers open the round by themselves on `opens` (first working day from it) at `open_time`.
    auto_open: bool = False
    open_time: time = time(9, 0)

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {
            "self_report_due": self.self_report_due.to_document(),
            "committee_feedback_due": self.committee_feedback_due.to_document(),
        }
        if self.opens is not None:
            doc["opens"] = self.opens.to_document()
        if self.auto_open:
            doc["auto_open"] = True
            doc["open_time"] = self.open_time.strftime("%H:%M")
        return doc


OpeningRule = Literal["first_working_day_after_period", "first_day_after_period"]


@dataclass(frozen=True, slots=True)
class MemberSchedule:
    """Member round: when it opens and the step deadlines, counted in (working) days after opening."""

    opens: OpeningRule
    open_time: time
    working_days: bool
    self_days: int
    joint_days: int
    review_days: int
    report_days: int | None = None
    #: The workers open each period's round by themselves at the opening instant.
    auto_open: bool = False

    def to_document(self) -> dict[str, Json]:
        doc: dict[str, Json] = {
            "opens": self.opens,
            "open_time": self.open_time.strftime("%H:%M"),
            "working_days": self.working_days,
            "self_days": self.self_days,
            "joint_days": self.joint_days,
            "review_days": self.review_days,
        }
        if self.report_days is not None:
            doc["report_days"] = self.report_days
        if self.auto_open:
            doc["auto_open"] = True
        return doc


@dataclass(frozen=True, slots=True)
class PublicNotice:
    """公示: how long results are posted for objections."""

    days: int
    working_days: bool

    def to_document(self) -> dict[str, Json]:
        return {"days": self.days, "working_days": self.working_days}


@dataclass(frozen=True, slots=True)
class Reminders:
    """Reminders sent ``lead_days`` calendar days before each deadline, at ``send_time`` tenant time."""

    lead_days: tuple[int, ...] = ()
    send_time: time = time(9, 0)

    def to_document(self) -> dict[str, Json]:
        return {"lead_days": list(self.lead_days), "send_time": self.send_time.strftime("%H:%M")}


@dataclass(frozen=True, slots=True)
class Schedule:
    """All dates and periods of a tenant, in its time zone."""

    timezone: str
    branch: BranchSchedule
    member: MemberSchedule
    public_notice: PublicNotice
    reminders: Reminders = field(default_factory=Reminders)

    def to_document(self) -> dict[str, Json]:
        return {
            "timezone": self.timezone,
            "branch": self.branch.to_document(),
            "member": self.member.to_document(),
            "public_notice": self.public_notice.to_document(),
            "reminders": self.reminders.to_document(),
        }
