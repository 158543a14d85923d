"""China's working days for years the holiday library does not know yet.

`chinese_calendar` (maintained, the first source) carries each year's arrangement — the State
Council's holidays and the adjusted working weekends (调休) — once the notice for that year is out,
usually in November, and once a release has followed. Until then two sources stand in, in this
order (`fivestar.timekeeping.clock.is_working_day`):

1. **An operator's file** (`FIVESTAR_HOLIDAYS_FILE`, TOML) with the year's arrangement copied from the
   State Council's notice (国务院办公厅关于 N 年部分节假日安排的通知):

       [2027]
       holidays = ["2027-01-01", "2027-02-05..2027-02-11"]   # days off, ranges inclusive
       workdays = ["2027-02-14"]                             # adjusted working weekends (调休)
       source = "国办发明电〔2026〕N号"                        # optional: where it comes from

   A year in the file is taken from the file alone (days not listed: Monday to Friday work).
2. **The statutory holidays** (《全国年节及纪念日放假办法》, as amended in 2024, in force from 2025):
   元旦 1 January; 春节 除夕 and 正月初一 to 初三; 清明 (the solar term's day); 劳动节 1–2 May; 端午
   (五月初五); 中秋 (八月十五); 国庆 1–3 October. These are days off whatever the arrangement; what
   cannot be known before the notice are the bridging days and the 调休 Saturdays and Sundays, so
   deadlines near a long holiday may come a day or two early. The lunar dates come from `lunar_python`.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: A range in the file: "2027-02-05..2027-02-11" (inclusive), at most this long.
LONGEST_RANGE = dt.timedelta(days=31)


@dataclass(frozen=True)
class Arrangement:
    """One year's days off and adjusted working days, as the operator's file gives them."""

    year: int
    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]
    source: str = ""

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays


class HolidayFileError(ValueError):
    """The operator's holiday file cannot be used; the message says where and why (中文 and English)."""


@lru_cache(maxsize=64)
def statutory_holidays(year: int) -> frozenset[dt.date]:
    """The 13 statutory days off of `year` under the rules in force from 2025 (the library knows every
    year before that)."""
    from lunar_python import Lunar, Solar

    def solar(lunar: Lunar) -> dt.date:
        day: Solar = lunar.getSolar()
        return dt.date(day.getYear(), day.getMonth(), day.getDay())

    new_year = solar(Lunar.fromYmd(year, 1, 1))
    clear_bright = Lunar.fromYmd(year, 3, 1).getJieQiTable()["清明"]
    days = {
        dt.date(year, 1, 1),
        new_year - dt.timedelta(days=1),  # 除夕: the eve, whether the twelfth month has 29 or 30 days
        *(new_year + dt.timedelta(days=n) for n in range(3)),
        dt.date(clear_bright.getYear(), clear_bright.getMonth(), clear_bright.getDay()),
        dt.date(year, 5, 1),
        dt.date(year, 5, 2),
        solar(Lunar.fromYmd(year, 5, 5)),
        solar(Lunar.fromYmd(year, 8, 15)),
        *(dt.date(year, 10, n) for n in (1, 2, 3)),
    }
    return frozenset(days)


def load_arrangements(path: Path) -> dict[int, Arrangement]:
    """Read and check the operator's file; HolidayFileError names the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise HolidayFileError(
            f"无法读取节假日安排文件 {path}：{error.strerror} (cannot read the holidays file)"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise HolidayFileError(f"节假日安排文件 {path} 格式有误：{error} (not valid TOML)") from None
    arrangements: dict[int, Arrangement] = {}
    for name, table in data.items():
        if not (name.isdigit() and len(name) == 4 and isinstance(table, dict)):
            raise HolidayFileError(f"节假日安排文件 {path}：[{name}] 应为四位年份的表，如 [2027] "
                                   "(each table must be a year, e.g. [2027])")
        year = int(name)
        unknown = set(table) - {"holidays", "workdays", "source"}
        if unknown:
            raise HolidayFileError(f"节假日安排文件 {path}：[{year}] 中有未知的项 {', '.join(sorted(unknown))} "
                                   "(only holidays, workdays and source)")
        holidays = _days(path, year, "holidays", table.get("holidays", []))
        workdays = _days(path, year, "workdays", table.get("workdays", []))
        both = holidays & workdays
        if both:
            first = min(both).isoformat()
            raise HolidayFileError(f"节假日安排文件 {path}：{first} 既是放假日又是调休上班日 "
                                   "(a day cannot be both a holiday and a working day)")
        source = table.get("source", "")
        arrangements[year] = Arrangement(year, holidays, workdays, str(source))
    return arrangements


def _days(path: Path, year: int, field: str, values: object) -> frozenset[dt.date]:
    if not isinstance(values, list):
        raise HolidayFileError(f"节假日安排文件 {path}：[{year}] {field} 应为日期列表 (must be a list of dates)")
    days: set[dt.date] = set()
    for value in values:
        text = value.isoformat() if isinstance(value, dt.date) else str(value)
        first, _, last = text.partition("..")
        try:
            start = dt.date.fromisoformat(first.strip())
            end = dt.date.fromisoformat(last.strip()) if last else start
        except ValueError:
            raise HolidayFileError(f"节假日安排文件 {path}：[{year}] {field} 中的 “{text}” 不是日期，应写作 "
                                   "2027-01-01 或 2027-02-05..2027-02-11 (not a date or a date range)") from None
        if start.year != year or end.year != year or end < start or end - start > LONGEST_RANGE:
            raise HolidayFileError(f"节假日安排文件 {path}：[{year}] {field} 中的 “{text}” 不在 {year} 年内或范围有误 "
                                   "(outside the year, or a reversed or over-long range)")
        days.update(start + dt.timedelta(days=n) for n in range((end - start).days + 1))
    return frozenset(days)


__all__ = ["Arrangement", "HolidayFileError", "load_arrangements", "statutory_holidays"]
