"""Where the overview reads a branch's *current* level: the standing feature's level history
(`fivestar.standing.queries.current_branch_levels`) — the last decided level, moved since by any
recorded adjustment (增星摘星). Every overview page goes through `current_branch_levels` here.

A branch whose latest history row says "not rated" (level None) has no level for the overview: the
reports count it apart, never as a failing branch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy.orm import Session

from fivestar.standing.models import SourceKind
from fivestar.standing.queries import CurrentLevel
from fivestar.standing.queries import current_branch_levels as standing_levels


def current_branch_levels(session: Session, branch_ids: Collection[int] | None = None) -> dict[int, CurrentLevel]:
    """branch id → its current level, for `branch_ids` (every branch when None); one statement.
    Branches without a level (never rated, or last rated "not rated") are absent."""
    return {bid: current for bid, current in standing_levels(session, branch_ids).items() if current.level is not None}


def level_of(current: CurrentLevel) -> int:
    """The level of an entry of `current_branch_levels` (never None there)."""
    return current.level if current.level is not None else 0


def newest_year(levels: Mapping[int, CurrentLevel]) -> int | None:
    """The newest rated year the levels come from (their branch rounds'), None when there is none."""
    periods = [c.period or "" for c in levels.values() if c.source is SourceKind.BRANCH_ROUND]
    years = [int(period) for period in periods if period.isdigit()]
    return max(years, default=None)


def adjusted_count(levels: Mapping[int, CurrentLevel]) -> int:
    """How many of the levels were set by an adjustment (增星摘星) since their round."""
    return sum(1 for c in levels.values() if c.adjusted)


__all__ = ["CurrentLevel", "adjusted_count", "current_branch_levels", "level_of", "newest_year"]
