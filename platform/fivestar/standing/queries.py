"""Reading the level history: every subject's current level in one statement, and one subject's
full history.

The current level of a branch or member is its latest history row (by when it took effect, then by
id). `current_branch_levels` / `current_member_levels` rank the rows per subject with a window
function and keep the first: ONE statement whatever the number of subjects, so a page that shows
many levels stays at a fixed number of statements. Subjects without any history are absent from the
answer (they have never received a level).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import cast as typed

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from fivestar.standing.models import Adjustment, Cause, LevelHistory, SourceKind
from fivestar.standing.subjects import Subject

_Row = tuple[int, int | None, dt.datetime, str, str | None]


@dataclass(frozen=True)
class CurrentLevel:
    """A subject's level now: the level (None: not rated), since when, where it came from, and
    whether the committee adjusted it since the last round (the latest row is an adjustment)."""

    level: int | None
    since: dt.datetime
    source: SourceKind
    adjusted: bool
    period: str | None  # the round's year or period key (None for an adjustment)


@dataclass(frozen=True)
class HistoryEntry:
    """One row of a subject's history, with its adjustment's cause and meeting when it is one."""

    id: int
    level: int | None
    previous_level: int | None
    source: SourceKind
    period: str | None
    branch_round_id: int | None
    member_round_id: int | None
    adjustment_id: int | None
    effective_at: dt.datetime
    recorded_by: str
    reason: str | None
    cause: Cause | None = None
    veto_key: str | None = None
    meeting_name: str | None = None
    meeting_date: dt.date | None = None

    @property
    def is_adjustment(self) -> bool:
        return self.source is SourceKind.ADJUSTMENT


def _current(
    session: Session, column: InstrumentedAttribute[int | None], ids: Collection[int] | None
) -> dict[int, CurrentLevel]:
    rank = (
        func.row_number()
        .over(partition_by=column, order_by=(LevelHistory.effective_at.desc(), LevelHistory.id.desc()))
        .label("rank")
    )
    ranked = select(
        column.label("subject_id"),
        LevelHistory.level,
        LevelHistory.effective_at,
        LevelHistory.source,
        LevelHistory.period,
        rank,
    ).where(column.is_not(None))
    if ids is not None:
        if not ids:
            return {}
        ranked = ranked.where(column.in_(list(ids)))
    sub = ranked.subquery()
    rows = session.execute(
        select(
            sub.c.subject_id,
            sub.c.level,
            sub.c.effective_at,
            sub.c.source,
            sub.c.period,
        ).where(sub.c.rank == 1)
    )
    return {
        int(subject_id): CurrentLevel(
            level=level,
            since=effective_at,
            source=SourceKind(source),
            adjusted=SourceKind(source) is SourceKind.ADJUSTMENT,
            period=period,
        )
        for subject_id, level, effective_at, source, period in (typed(_Row, tuple(row)) for row in rows)
    }


def current_branch_levels(session: Session, branch_ids: Collection[int] | None = None) -> dict[int, CurrentLevel]:
    """Every branch's current level (or only `branch_ids`'): branch id → CurrentLevel, one statement."""
    return _current(session, LevelHistory.branch_id, branch_ids)


def current_member_levels(session: Session, member_ids: Collection[int] | None = None) -> dict[int, CurrentLevel]:
    """Every member's current level (or only `member_ids`'): member id → CurrentLevel, one statement."""
    return _current(session, LevelHistory.member_id, member_ids)


def history(session: Session, subject: Subject) -> list[HistoryEntry]:
    """The subject's full history, oldest first, with each adjustment's cause and meeting (one statement)."""
    column = LevelHistory.branch_id if subject.is_branch else LevelHistory.member_id
    rows = session.execute(
        select(LevelHistory, Adjustment.cause, Adjustment.veto_key, Adjustment.meeting_name, Adjustment.meeting_date)
        .outerjoin(
            Adjustment,
            (Adjustment.id == LevelHistory.adjustment_id) & (Adjustment.tenant_id == LevelHistory.tenant_id),
        )
        .where(column == subject.id)
        .order_by(LevelHistory.effective_at, LevelHistory.id)
    )
    return [
        HistoryEntry(
            id=row.id,
            level=row.level,
            previous_level=row.previous_level,
            source=row.source,
            period=row.period,
            branch_round_id=row.branch_round_id,
            member_round_id=row.member_round_id,
            adjustment_id=row.adjustment_id,
            effective_at=row.effective_at,
            recorded_by=row.recorded_by,
            reason=row.reason,
            cause=cause,
            veto_key=veto_key,
            meeting_name=meeting_name,
            meeting_date=meeting_date,
        )
        for row, cause, veto_key, meeting_name, meeting_date in rows
    ]


def adjusted_since(current: CurrentLevel | None, decided_level: int | None) -> bool:
    """Whether a page showing a round's decision should also show the current level: the subject was
    adjusted since, or its current level differs from that decision."""
    return current is not None and (current.adjusted or current.level != decided_level)


__all__ = [
    "CurrentLevel",
    "HistoryEntry",
    "adjusted_since",
    "current_branch_levels",
    "current_member_levels",
    "history",
]
