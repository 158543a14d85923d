"""Where the overview reads a branch's *current* level.

The current level is the standing feature's (`fivestar.standing.queries.current_branch_levels`): the
last decided level, moved since by any recorded adjustment (增星摘星). Until that feature is merged this
module answers with the same shape from the last finalised branch round's decided levels, so the
lead swaps one import and nothing else changes. Every caller goes through `current_branch_levels` here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState


@dataclass(frozen=True)
class CurrentLevel:
    """A branch's level now, and the finalised year it comes from."""

    branch_id: int
    level: int
    year: int


def current_branch_levels(session: Session, branch_ids: Collection[int] | None = None) -> dict[int, CurrentLevel]:
    """branch id → its current level, for `branch_ids` (every branch when None); one statement.

    A branch with no decided level in the newest finalised round is absent: it has no level."""
    newest = select(func.max(BranchRound.year)).where(BranchRound.state == BranchRoundState.FINALISED).scalar_subquery()
    query = (
        select(BranchRating.branch_id, BranchRating.decided_level, BranchRound.year)
        .join(BranchRound, BranchRound.id == BranchRating.round_id)
        .where(
            BranchRound.state == BranchRoundState.FINALISED,
            BranchRound.year == newest,
            BranchRating.decided_level.is_not(None),
        )
    )
    if branch_ids is not None:
        if not branch_ids:
            return {}
        query = query.where(BranchRating.branch_id.in_(list(branch_ids)))
    return {
        branch_id: CurrentLevel(branch_id, int(level or 0), int(year))
        for branch_id, level, year in session.execute(query)
    }


__all__ = ["CurrentLevel", "current_branch_levels"]
