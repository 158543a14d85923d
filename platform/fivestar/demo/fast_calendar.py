"""The demo's fast calendar.

A public notice lasts days and deadlines are weeks away; to walk a whole round in one sitting the
demo lets anyone logged in move the platform clock forward (`fivestar.timekeeping.clock.now()`), never back. The
offset is a row in the database so the web process and the workers agree; each process re-reads it
at most every few seconds. Only with `FIVESTAR_DEMO_CLOCK=1`, which production refuses.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fivestar import audit
from fivestar.demo.models import DemoClock
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.timekeeping import clock

CACHE_SECONDS = 2.0
MAX_STEP_DAYS = 31


def install(factory: sessionmaker[Session]) -> None:
    """Make `clock.now()` in this process follow the offset stored in the database."""
    cached: dict[str, float] = {"value": 0.0, "read_at": -1e9}

    def offset() -> dt.timedelta:
        if time.monotonic() - cached["read_at"] > CACHE_SECONDS:
            with factory() as session:
                cached["value"] = float(current_offset(session))
            cached["read_at"] = time.monotonic()
        return dt.timedelta(seconds=cached["value"])

    clock.set_offset_source(offset)
    _reset_cache.append(lambda: cached.update(read_at=-1e9))


_reset_cache: list[Callable[[], object]] = []


def current_offset(session: Session) -> int:
    return int(session.scalar(select(DemoClock.offset_seconds).where(DemoClock.id == 1)) or 0)


def advance(session: Session, days: int) -> int:
    """Move the clock `days` forward (1 to 31); returns the new offset in seconds."""
    if not 1 <= days <= MAX_STEP_DAYS:
        raise ServiceError(_("每次可快进 1 到 %(n)d 天", n=MAX_STEP_DAYS))
    row = session.get(DemoClock, 1)
    if row is None:
        row = DemoClock(id=1, offset_seconds=0)
        session.add(row)
    before = row.offset_seconds
    row.offset_seconds = before + days * 86400
    row.updated_at = dt.datetime.now(dt.UTC)
    audit.record(session, "demo.clock_advance", object_type="demo_clock", object_id=1,
                 before={"offset_days": before // 86400}, after={"offset_days": row.offset_seconds // 86400})
    for reset in _reset_cache:
        reset()
    return row.offset_seconds
