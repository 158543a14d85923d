"""The platform's idea of "now", and the working-day calendar.

Deadlines, public-notice periods and round openings all read the time from `now()`. In production it
is the real UTC time. The demo can run a fast calendar: an offset kept in the database
(`fivestar.demo`), so the web process and the workers move forward together; tests freeze or shift
it with `frozen(...)`.

Working days follow the State Council's holiday arrangements (with 调休 working weekends) through
the maintained `chinese_calendar` library. For a year the library does not know yet (the
arrangement is published each November) an operator's file of arrangements is used if it has the
year, else the statutory holidays, without 调休 (`fivestar.timekeeping.holidays`); a warning is logged once.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from zoneinfo import ZoneInfo

from fivestar.timekeeping.holidays import Arrangement, statutory_holidays

log = logging.getLogger(__name__)

_frozen: ContextVar[dt.datetime | None] = ContextVar("fivestar_frozen_now", default=None)
_offset_source: Callable[[], dt.timedelta] | None = None
_arrangements: dict[int, Arrangement] = {}


class CalendarSource(enum.StrEnum):
    """Where a year's working days come from."""

    FILE = "file"  # the operator's FIVESTAR_HOLIDAYS_FILE
    LIBRARY = "library"  # chinese_calendar
    STATUTORY = "statutory"  # the statutory holidays only: no 调休 known yet


def now() -> dt.datetime:
    """The current time, aware, in UTC."""
    frozen = _frozen.get()
    if frozen is not None:
        return frozen
    current = dt.datetime.now(dt.UTC)
    if _offset_source is not None:
        current += _offset_source()
    return current


def today_in(timezone: str) -> dt.date:
    return now().astimezone(ZoneInfo(timezone)).date()


def set_offset_source(source: Callable[[], dt.timedelta] | None) -> None:
    """Install (or remove, with None) where the demo's clock offset comes from."""
    global _offset_source
    _offset_source = source


@contextmanager
def frozen(at: dt.datetime) -> Iterator[None]:
    """Run a block with `now()` fixed at `at` (aware)."""
    if at.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    token = _frozen.set(at.astimezone(dt.UTC))
    try:
        yield
    finally:
        _frozen.reset(token)


def set_arrangements(arrangements: dict[int, Arrangement]) -> None:
    """Install the operator's holiday arrangements (FIVESTAR_HOLIDAYS_FILE), replacing any before."""
    global _arrangements
    _arrangements = dict(arrangements)
    is_working_day.cache_clear()
    calendar_source.cache_clear()


@lru_cache(maxsize=4096)
def is_working_day(day: dt.date) -> bool:
    """A Chinese working day: holidays off, adjusted working weekends (调休) on."""
    arranged = _arrangements.get(day.year)
    if arranged is not None:
        return arranged.is_working_day(day)
    import chinese_calendar

    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        _warn_unknown_year(day.year)
        return day.weekday() < 5 and day not in statutory_holidays(day.year)


@lru_cache(maxsize=64)
def calendar_source(year: int) -> CalendarSource:
    """Which source `is_working_day` uses for `year` (the 日程 page warns about STATUTORY)."""
    if year in _arrangements:
        return CalendarSource.FILE
    import chinese_calendar

    try:
        chinese_calendar.is_workday(dt.date(year, 6, 30))
    except NotImplementedError:
        return CalendarSource.STATUTORY
    return CalendarSource.LIBRARY


@lru_cache(maxsize=64)
def _warn_unknown_year(year: int) -> None:
    log.warning("no holiday arrangement known for %s (chinese_calendar, FIVESTAR_HOLIDAYS_FILE); counting the "
                "statutory holidays only, without adjusted working days", year)


def end_of_day(day: dt.date, timezone: str) -> dt.datetime:
    """The last moment of `day` in `timezone`, in UTC: a deadline "by 4月10日" ends then."""
    local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=ZoneInfo(timezone))
    return (local - dt.timedelta(microseconds=1)).astimezone(dt.UTC)
