"""Due instants in the tenant's zone: Asia/Shanghai, two zones with daylight saving (the spring gap
and the autumn fold), and a Chinese holiday with an adjusted working weekend (调休)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from fivestar.rules import RuleSet, load_rules
from fivestar.rules.schedule import member_period, member_round_deadlines
from fivestar.scheduling.models import DueKind
from fivestar.scheduling.planner import CATCH_UP, wanted_items
from fivestar.timekeeping import clock
from fivestar.timekeeping.local_times import branch_opening_at, local_to_utc, member_opening_at

REPO = Path(__file__).resolve().parents[2]
SAMPLE = (REPO / "tenants" / "notice-illustrative.toml").read_text(encoding="utf-8")
UTC = dt.UTC


def _rules(*, timezone: str = "Asia/Shanghai", member_auto: bool = True, branch: str | None = None,
           open_time: str = "09:00") -> RuleSet:
    text = SAMPLE.replace('timezone = "Asia/Shanghai"', f'timezone = "{timezone}"')
    text = text.replace('open_time = "09:00"', f'open_time = "{open_time}"')
    if member_auto:
        text = text.replace("[schedule.member]\n", "[schedule.member]\nauto_open = true\n")
    if branch is not None:
        text = re.sub(r"\[schedule\.branch\]\n.*?\n\n", f"[schedule.branch]\n{branch}\n\n", text, flags=re.S)
    return load_rules(text)


def every_day(_day: dt.date) -> bool:
    return True


def test_shanghai_has_one_offset_all_year() -> None:
    nine = local_to_utc(dt.date(2026, 10, 8), dt.time(9, 0), "Asia/Shanghai")
    assert nine == dt.datetime(2026, 10, 8, 1, 0, tzinfo=UTC)
    past_midnight = local_to_utc(dt.date(2026, 1, 1), dt.time(0, 30), "Asia/Shanghai")
    assert past_midnight == dt.datetime(2025, 12, 31, 16, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "day", "at", "expected"),
    [
        # New York, 8 March 2026: 02:00 EST jumps to 03:00 EDT. 02:30 does not exist: it is 03:30 EDT.
        ("America/New_York", dt.date(2026, 3, 8), dt.time(2, 30), dt.datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
        # Berlin, 29 March 2026: 02:00 CET jumps to 03:00 CEST.
        ("Europe/Berlin", dt.date(2026, 3, 29), dt.time(2, 30), dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
    ],
)
def test_a_time_in_the_spring_gap_moves_forward_by_the_gap(zone: str, day: dt.date, at: dt.time,
                                                           expected: dt.datetime) -> None:
    instant = local_to_utc(day, at, zone)
    assert instant == expected
    from zoneinfo import ZoneInfo

    assert instant.astimezone(ZoneInfo(zone)).time() == dt.time(3, 30)  # an hour later on the wall clock


@pytest.mark.parametrize(
    ("zone", "day", "at", "first", "second"),
    [
        # New York, 1 November 2026: 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
        ("America/New_York", dt.date(2026, 11, 1), dt.time(1, 30),
         dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC), dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
        # Berlin, 25 October 2026: 02:30 happens at 00:30 UTC (CEST) and at 01:30 UTC (CET).
        ("Europe/Berlin", dt.date(2026, 10, 25), dt.time(2, 30),
         dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC), dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
    ],
)
def test_a_time_in_the_autumn_fold_is_its_first_occurrence(zone: str, day: dt.date, at: dt.time,
                                                           first: dt.datetime, second: dt.datetime) -> None:
    assert local_to_utc(day, at, zone) == first
    assert local_to_utc(day, at.replace(fold=1), zone) == first  # a fold=1 input is not taken as the second
    assert first != second


def test_the_branch_opening_in_a_daylight_saving_zone() -> None:
    gap = _rules(timezone="Europe/Berlin", branch="opens = { month = 3, day = 29 }\nopen_time = \"02:30\"\n"
                 "auto_open = true\nself_report_due = { month = 4 }\ncommittee_feedback_due = { month = 5 }")
    assert branch_opening_at(gap, 2026, "Europe/Berlin", is_working_day=every_day) == dt.datetime(
        2026, 3, 29, 1, 30, tzinfo=UTC)
    fold = _rules(timezone="America/New_York", branch="opens = { month = 11, day = 1 }\nopen_time = \"01:30\"\n"
                  "auto_open = true\nself_report_due = { month = 11 }\ncommittee_feedback_due = { month = 12 }")
    assert branch_opening_at(fold, 2026, "America/New_York", is_working_day=every_day) == dt.datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC)
    # Without a calendar that works on Sundays, 1 November 2026 (a Sunday) moves to Monday 01:30 EST.
    assert branch_opening_at(fold, 2026, "America/New_York") == dt.datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


def test_the_member_round_after_national_day_opens_on_the_first_working_day() -> None:
    """2026Q3 ends on 30 September; 1–7 October are the National Day holiday, so the round opens on
    Thursday 8 October at 09:00 Beijing time. Saturday 10 October is an adjusted working day (调休):
    counting five working days after the opening, it counts, so 个人自评 is due on 14 October, not 15."""
    rules = _rules()
    period = member_period(rules, dt.date(2026, 9, 30))
    assert period.key == "2026Q3"
    assert not clock.is_working_day(dt.date(2026, 10, 1))
    assert clock.is_working_day(dt.date(2026, 10, 10))  # a Saturday, worked in exchange
    opening = member_opening_at(rules, period, "Asia/Shanghai", is_working_day=clock.is_working_day)
    assert opening == dt.datetime(2026, 10, 8, 1, 0, tzinfo=UTC)
    deadlines = member_round_deadlines(rules, dt.date(2026, 10, 8), is_working_day=clock.is_working_day)
    assert deadlines.self_assessment == dt.date(2026, 10, 14)
    monday_to_friday = member_round_deadlines(rules, dt.date(2026, 10, 8))
    assert monday_to_friday.self_assessment == dt.date(2026, 10, 15)


def test_the_planner_wants_the_next_opening_and_a_recent_missed_one() -> None:
    rules = _rules(branch="opens = { month = 1, day = 5 }\nauto_open = true\n"
                   "self_report_due = { month = 1 }\ncommittee_feedback_due = { month = 3 }")
    # Two days after the 2026Q3 opening: that one (missed while the platform was down) and 2026Q4's.
    now = dt.datetime(2026, 10, 10, 2, 0, tzinfo=UTC)
    wanted = {(item.kind, item.key): item.due_at for item in wanted_items(rules, "Asia/Shanghai", now)}
    assert wanted[(DueKind.OPEN_MEMBER_ROUND, "2026Q3")] == dt.datetime(2026, 10, 8, 1, 0, tzinfo=UTC)
    assert (DueKind.OPEN_MEMBER_ROUND, "2026Q4") in wanted
    # The branch round of 2027 (rating 2026) opens on the first working day from 5 January 2027.
    assert wanted[(DueKind.OPEN_BRANCH_ROUND, "2026")].date() == dt.date(2027, 1, 5)
    assert (DueKind.OPEN_BRANCH_ROUND, "2025") not in wanted  # 5 January 2026 is long past
    # Later than CATCH_UP after the opening, a missed round is left to the committee.
    late = dt.datetime(2026, 10, 8, 1, 0, tzinfo=UTC) + CATCH_UP + dt.timedelta(minutes=1)
    assert (DueKind.OPEN_MEMBER_ROUND, "2026Q3") not in {
        (item.kind, item.key) for item in wanted_items(rules, "Asia/Shanghai", late)}


def test_nothing_is_planned_unless_the_rules_ask() -> None:
    rules = _rules(member_auto=False)
    assert wanted_items(rules, "Asia/Shanghai", dt.datetime(2026, 10, 8, 2, 0, tzinfo=UTC)) == []


def test_auto_open_for_branches_needs_an_opening_date() -> None:
    from fivestar.rules import RuleSetError

    with pytest.raises(RuleSetError) as refused:
        _rules(branch="auto_open = true\nself_report_due = { month = 1 }\ncommittee_feedback_due = { month = 3 }")
    assert "schedule.branch.auto_open" in str(refused.value)
