"""Due instants: a tenant-local date and time of day, as a UTC instant.

Two wall-clock times need a rule because they do not name exactly one instant:

* **the spring gap** — a time that does not exist (02:30 on the night clocks jump from 02:00 to
  03:00) is taken as the same distance past the jump: 02:30 becomes 03:30 local time. Python's
  `zoneinfo` gives exactly this for `fold=0` when the result is normalised through UTC.
* **the autumn fold** — a time that happens twice (01:30 on the night clocks go back) is the
  *first* occurrence (`fold=0`). A due item is one row with one instant, so it fires once either way.

China has had no daylight saving since 1991, so for the districts this is served for it changes
nothing; it matters for a tenant whose rules name another zone, and it is tested both ways.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from fivestar.rules import RuleSet
from fivestar.rules.schedule import Period, WorkingDay, branch_deadlines, member_round_opening, weekday_is_working


def local_to_utc(day: dt.date, at: dt.time, timezone: str) -> dt.datetime:
    """The UTC instant of `day` at wall-clock `at` in `timezone` (gap: forward; fold: first)."""
    local = dt.datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=ZoneInfo(timezone))
    return local.astimezone(dt.UTC)


def member_opening_at(rules: RuleSet, period: Period, timezone: str,
                      is_working_day: WorkingDay | None = None) -> dt.datetime:
    """When the member round of `period` opens by the rules, in UTC."""
    local = member_round_opening(rules, period.end, is_working_day=is_working_day)
    return local_to_utc(local.date(), rules.schedule.member.open_time, timezone)


def branch_opening_at(rules: RuleSet, held_in: int, timezone: str,
                      is_working_day: WorkingDay | None = None) -> dt.datetime | None:
    """When the branch round held in year `held_in` (rating `held_in - 1`) opens, in UTC: the first
    working day on or after the rules' `opens` date, at `open_time`. None without an `opens` date."""
    sched = rules.schedule.branch
    dates = branch_deadlines(rules, held_in)
    if "opens" not in dates:
        return None
    day = dates["opens"]
    check = is_working_day or weekday_is_working
    while not check(day):
        day += dt.timedelta(days=1)
    return local_to_utc(day, sched.open_time, timezone)
