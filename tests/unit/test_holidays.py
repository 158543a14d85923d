"""Working days for a year the holiday library does not know yet (2027, as of its release 1.11;
2035 in the tests that need a year it surely does not know): the statutory holidays, or the
operator's file of the State Council's arrangement."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import chinese_calendar
import pytest

from fivestar.config import ConfigError, load_settings
from fivestar.rules.schedule import member_period
from fivestar.timekeeping import clock
from fivestar.timekeeping.holidays import HolidayFileError, load_arrangements, statutory_holidays
from fivestar.timekeeping.local_times import member_opening_at
from tests.unit.test_scheduling_times import _rules

UTC = dt.UTC
D = dt.date


@pytest.fixture(autouse=True)
def no_arrangements() -> Iterator[None]:
    clock.set_arrangements({})
    yield
    clock.set_arrangements({})


def _library_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(D(year, 6, 30))
    except NotImplementedError:
        return False
    return True


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_statutory_days_are_days_off_in_every_year_the_library_knows(year: int) -> None:
    """Checked against the maintained data: each computed statutory day (lunar dates included) is a
    holiday in the State Council's arrangement for that year."""
    days = statutory_holidays(year)
    assert len(days) == 13
    assert all(chinese_calendar.is_holiday(day) for day in days), sorted(d for d in days
                                                                        if not chinese_calendar.is_holiday(d))


def test_the_statutory_days_of_2027() -> None:
    assert statutory_holidays(2027) == {
        D(2027, 1, 1),
        D(2027, 2, 5), D(2027, 2, 6), D(2027, 2, 7), D(2027, 2, 8),  # 除夕, 正月初一 to 初三
        D(2027, 4, 5),  # 清明
        D(2027, 5, 1), D(2027, 5, 2),
        D(2027, 6, 9),  # 端午
        D(2027, 9, 15),  # 中秋
        D(2027, 10, 1), D(2027, 10, 2), D(2027, 10, 3),
    }


def test_an_unknown_year_counts_the_statutory_holidays_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    assert not _library_knows(2035)
    with caplog.at_level(logging.WARNING, logger="fivestar.timekeeping.clock"):
        assert not clock.is_working_day(D(2035, 1, 1))  # a Monday, 元旦
        assert not clock.is_working_day(D(2035, 2, 9))  # a Friday, 正月初二
        assert clock.is_working_day(D(2035, 2, 12))  # the bridging days are not known before the notice
        assert not clock.is_working_day(D(2035, 2, 17))  # a Saturday
        assert not clock.is_working_day(D(2035, 4, 5))  # a Thursday, 清明
        assert clock.is_working_day(D(2035, 4, 6))
    assert [r.getMessage() for r in caplog.records].count(
        "no holiday arrangement known for 2035 (chinese_calendar, FIVESTAR_HOLIDAYS_FILE); counting the "
        "statutory holidays only, without adjusted working days") == 1
    assert clock.calendar_source(2035) is clock.CalendarSource.STATUTORY
    assert clock.calendar_source(2026) is clock.CalendarSource.LIBRARY


def test_the_2026q4_member_round_does_not_open_on_new_years_day() -> None:
    """The first working day after 2026Q4 is Monday 4 January 2027, with the library or without it
    (it did not know 2027 when this was written: 1 January then counted as a working Friday)."""
    rules = _rules()
    period = member_period(rules, D(2026, 12, 31))
    opening = member_opening_at(rules, period, "Asia/Shanghai", is_working_day=clock.is_working_day)
    assert opening == dt.datetime(2027, 1, 4, 1, 0, tzinfo=UTC)


ARRANGEMENT_2027 = """
# 国务院办公厅关于2027年部分节假日安排的通知 (an example: the real one is the operator's to copy)
[2027]
source = "国办发明电（示例）"
holidays = ["2027-01-01..2027-01-03", "2027-02-05..2027-02-11"]
workdays = ["2027-02-14", 2027-02-20]
"""


def test_the_operators_file_wins_for_its_year(tmp_path: Path) -> None:
    path = tmp_path / "holidays.toml"
    path.write_text(ARRANGEMENT_2027, encoding="utf-8")
    arrangements = load_arrangements(path)
    assert arrangements[2027].source == "国办发明电（示例）"
    assert len(arrangements[2027].holidays) == 10
    clock.set_arrangements(arrangements)
    assert clock.calendar_source(2027) is clock.CalendarSource.FILE
    assert not clock.is_working_day(D(2027, 2, 10))  # a Wednesday inside the arranged break
    assert clock.is_working_day(D(2027, 2, 14))  # a Sunday worked in exchange (调休)
    assert clock.is_working_day(D(2027, 2, 20))  # a TOML date, not a string, is accepted too
    assert clock.is_working_day(D(2027, 2, 12))  # a Friday after the break
    assert clock.is_working_day(D(2026, 10, 10))  # other years still come from the library


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[2027\nholidays = []", "格式有误"),
        ("[next]\nholidays = []", "四位年份"),
        ("[2027]\nholiday = []", "未知的项"),
        ('[2027]\nholidays = "2027-01-01"', "日期列表"),
        ('[2027]\nholidays = ["2027-13-01"]', "不是日期"),
        ('[2027]\nholidays = ["2026-12-31..2027-01-02"]', "不在 2027 年内"),
        ('[2027]\nholidays = ["2027-02-11..2027-02-05"]', "范围有误"),
        ('[2027]\nholidays = ["2027-01-01..2027-03-01"]', "范围有误"),
        ('[2027]\nholidays = ["2027-02-14"]\nworkdays = ["2027-02-14"]', "既是放假日又是调休上班日"),
    ],
)
def test_a_bad_file_is_refused_with_a_reason(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "holidays.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HolidayFileError, match=says):
        load_arrangements(path)


def test_the_setting_checks_the_file_when_the_process_starts(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match="无法读取节假日安排文件"):
        load_settings(env="test", holidays_file=str(missing))
    assert load_settings(env="test", holidays_file="").holidays_file is None
    good = tmp_path / "holidays.toml"
    good.write_text(ARRANGEMENT_2027, encoding="utf-8")
    settings = load_settings(env="test", holidays_file=str(good))
    settings.install_holidays()
    assert clock.calendar_source(2027) is clock.CalendarSource.FILE
