"""Closing a member round, and the committee moving a step deadline later.

Closing is the round's one transition (workflow.ROUND_TRANSITIONS["close"]): allowed once every branch
of the round has reported (FINALISED); it scores every member set-based (scoring.score_round) so the
stored results are exactly what the rule engine gives, then marks the round CLOSED. Nothing in a
closed round changes afterwards: every service writing results or what they rest on calls
`core.ensure_open` first, which refuses a closed round (409).

A deadline extension is not a transition (the round stays open): the committee gives a later day for
one step (个人自评, 党群联评, 支部审评 or 上报名单) with a reason; the deadline is the end of that day
in the tenant's time zone, as when the round opened. The audit event keeps the old and the new
deadline and the reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.errors import ServiceError
from fivestar.i18n import _, _l
from fivestar.kernel import rounds
from fivestar.kernel.versioning import expect_version
from fivestar.member_rounds import core, workflow
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationStatus,
    MemberRound,
    RoundBranch,
)
from fivestar.member_rounds.scoring import score_round
from fivestar.standing import services as standing
from fivestar.standing.models import SourceKind
from fivestar.tenants.services import timezone_of
from fivestar.timekeeping import clock

DeadlineStep = Literal["self", "joint", "review", "report"]

# Each step's deadline column, in the order the steps run.
DEADLINE_COLUMNS: dict[str, str] = {
    "self": "self_due_at",
    "joint": "joint_due_at",
    "review": "review_due_at",
    "report": "report_due_at",
}


def deadline_label(step: str) -> str:
    return {
        "self": _("个人自评"),
        "joint": _("党群联评"),
        "review": _("支部审评"),
        "report": _("上报名单"),
    }[step]


@dataclass(frozen=True)
class ClosedRound:
    round: MemberRound
    changed: int  # active evaluations whose stored result changed on closing


# How a lost race on the round itself reads (someone closed or extended it since the page opened).
STALE_ROUND = _l("本轮评定已被他人修改，请刷新后重试。")


def branches_by_step(session: Session, member_round: MemberRound) -> dict[BranchStep, int]:
    """How many branches of the round are at each step (one grouped query)."""
    return rounds.count_by_step(session, RoundBranch, member_round)


def close_round(session: Session, member_round: MemberRound) -> ClosedRound:
    """Close the round: every branch must have reported; every member is scored set-based."""
    core.ensure_open(member_round)
    steps = branches_by_step(session, member_round)
    refusal = workflow.round_refusal("close", member_round.state, steps)
    if refusal:
        raise ServiceError(refusal)
    changed = score_round(session, member_round)

    def closed() -> None:
        member_round.closed_at = clock.now()

    def after() -> dict[str, object]:
        levels = session.execute(
            select(Evaluation.level, Evaluation.rated, func.count())
            .where(
                Evaluation.round_id == member_round.id,
                Evaluation.tenant_id == member_round.tenant_id,
                Evaluation.status == EvaluationStatus.ACTIVE,
            )
            .group_by(Evaluation.level, Evaluation.rated)
        )
        distribution: dict[str, int] = {}
        for level, rated, count in levels:
            key = str(level) if rated else ("not_rated" if rated is False else "unscored")
            distribution[key] = distribution.get(key, 0) + int(count)
        return {
            "state": member_round.state,
            "closed_at": member_round.closed_at,
            "branches": sum(steps.values()),
            "changed": changed,
            "levels": distribution,
        }

    rounds.apply(
        session, workflow.ROUND_WORKFLOW, "close", member_round, refusal=None, changes=closed,
        before={"state": member_round.state, "closed_at": member_round.closed_at}, after=after,
        stale=str(STALE_ROUND),
    )
    record_final_levels(session, member_round)
    return ClosedRound(member_round, changed)


def extend_deadline(
    session: Session,
    member_round: MemberRound,
    step: DeadlineStep | str,
    new_day: dt.date,
    reason: str | None,
    *,
    version: int | str | None = None,
) -> MemberRound:
    """Move one step's deadline to the end of `new_day` (tenant time), later than it is now.

    Refused on a closed round, for a day in the past or not later than the current deadline, for a
    step the round has no deadline for, without a reason, and when the new deadline would reach the
    next step's (extend the later step first, so the steps stay in order). `version`, when given, is
    the round version the committee's form was opened with.
    """
    core.ensure_open(member_round)
    if version is not None:
        expect_version(member_round, version)
    rounds.extend_deadline(
        session, member_round, which=str(step), columns=DEADLINE_COLUMNS, label=deadline_label, new_day=new_day,
        reason=reason, timezone=timezone_of(session, member_round.tenant_id),
        audit_name="member_round.extend_deadline", audit_key="step", field_name="step", stale=str(STALE_ROUND),
    )
    return member_round



def record_final_levels(session: Session, member_round: MemberRound) -> None:
    """A closed round's results enter the level history: every active member's level (不予评星 kept as no
    level; a member never scored received nothing), in one INSERT … SELECT. Closing calls it; so does
    the demo for the period it seeds as already closed."""
    assert member_round.closed_at is not None
    standing.record_round_levels(
        session,
        standing.RoundLevels(
            SourceKind.MEMBER_ROUND, member_round.tenant_id, member_round.id, member_round.period_key,
            member_round.closed_at,
        ),
        select(Evaluation.member_id.label("subject_id"), Evaluation.level.label("level")).where(
            Evaluation.tenant_id == member_round.tenant_id,
            Evaluation.round_id == member_round.id,
            Evaluation.status == EvaluationStatus.ACTIVE,
            Evaluation.rated.is_not(None),
        ),
    )


__all__ = [
    "DEADLINE_COLUMNS",
    "ClosedRound",
    "DeadlineStep",
    "branches_by_step",
    "close_round",
    "deadline_label",
    "extend_deadline",
    "record_final_levels",
]
