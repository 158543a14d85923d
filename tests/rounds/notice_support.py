"""Helpers for the notice, objection, committee, flag and export tests: put a branch of an opened
round through review onto public notice (final scores scored by the rule engine), as the branch's
own pages would, without depending on them."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import core
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    MemberRound,
    Objection,
    RoundBranch,
    ScoreStage,
    SelfState,
)
from fivestar.rules import RuleSet, public_notice_end
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock

BEIJING = dt.timezone(dt.timedelta(hours=8))
# Totals giving each level on the illustrative rules (five aspects of 20; bands 90/80/70/0).
TOTAL_FOR = {5: Decimal(95), 4: Decimal(85), 3: Decimal(75), 2: Decimal(50)}
NOT_RATED = "not_rated"


def scores_for(rules: RuleSet, level: int) -> dict[core.FieldKey, Decimal]:
    """Final scores for every score field of the rules (criteria where they list them) adding up to
    the level's total: every field at its maximum, then points taken off field by field."""
    fields = core.score_fields(rules)
    values = {f.key: f.max for f in fields}
    missing = sum(values.values(), Decimal(0)) - TOTAL_FOR[level]
    assert missing >= 0
    for f in fields:
        cut = min(missing, values[f.key])
        values[f.key] -= cut
        missing -= cut
    return values


def round_branch_of(session: Session, world: Mapping[str, Any], branch_key: str, member_round: MemberRound | None = None
                    ) -> RoundBranch:
    member_round = member_round or world["round"]
    with tenant_context(world["tenant"].id):
        found = session.scalar(
            select(RoundBranch).where(
                RoundBranch.round_id == member_round.id, RoundBranch.branch_id == world[branch_key].id
            )
        )
    assert found is not None
    return found


def evaluation_of(session: Session, world: Mapping[str, Any], member: Any, member_round: MemberRound | None = None
                  ) -> Evaluation:
    member_round = member_round or world["round"]
    with tenant_context(world["tenant"].id):
        found = session.scalar(
            select(Evaluation).where(Evaluation.round_id == member_round.id, Evaluation.member_id == member.id)
        )
    assert found is not None
    return found


def score(session: Session, world: Mapping[str, Any], levels: Mapping[Any, int | str],
          member_round: MemberRound | None = None) -> None:
    """Give members final scores (or 不予评星) and their rule-engine result, as the review does."""
    member_round = member_round or world["round"]
    with tenant_context(world["tenant"].id):
        rules = core.round_rules(session, member_round)
        for member, level in levels.items():
            evaluation = evaluation_of(session, world, member, member_round)
            disqualifier = "unpaid_dues" if level == NOT_RATED else None
            values = scores_for(rules, 3 if level == NOT_RATED else int(level))
            core.write_scores(session, [evaluation.id], ScoreStage.FINAL, {evaluation.id: values})
            result = core.evaluate(rules, values, disqualifier)
            evaluation.self_state = SelfState.SUBMITTED
            evaluation.disqualifier = disqualifier
            evaluation.disqualifier_note = "连续三个月未交党费" if disqualifier else None
            evaluation.total = result.total
            evaluation.level = result.level
            evaluation.rated = result.rated
            evaluation.scored_at = clock.now()
        session.flush()


def put_on_notice(
    session: Session,
    world: Mapping[str, Any],
    branch_key: str = "one",
    levels: Mapping[Any, int | str] | None = None,
    member_round: MemberRound | None = None,
) -> RoundBranch:
    """Score the branch's members (default: 5, 4, 不予评星 for branch one) and start its public notice
    now, for the rules' number of (working) days, with a fresh link."""
    member_round = member_round or world["round"]
    if levels is None:
        members = world["ones"] if branch_key == "one" else world["twos"]
        levels = dict(zip(members, (5, 4, NOT_RATED), strict=True))
    score(session, world, levels, member_round)
    round_branch = round_branch_of(session, world, branch_key, member_round)
    with tenant_context(world["tenant"].id):
        rules = core.round_rules(session, member_round)
        zone = world["tenant"].timezone
        today = clock.today_in(zone)
        with seeding():
            round_branch.step = BranchStep.NOTICE
        round_branch.notice_token = secrets.token_urlsafe(24)
        round_branch.notice_started_at = clock.now()
        round_branch.notice_ends_at = clock.end_of_day(
            public_notice_end(rules, today, is_working_day=clock.is_working_day), zone
        )
        session.flush()
    return round_branch


def after_notice(round_branch: RoundBranch) -> dt.datetime:
    assert round_branch.notice_ends_at is not None
    return round_branch.notice_ends_at + dt.timedelta(hours=10)


def add_objection(session: Session, world: Mapping[str, Any], round_branch: RoundBranch, text: str = "评定不实",
                  evaluation: Evaluation | None = None) -> Objection:
    with tenant_context(world["tenant"].id):
        objection = Objection(
            tenant_id=world["tenant"].id,
            round_branch_id=round_branch.id,
            evaluation_id=evaluation.id if evaluation is not None else None,
            text=text,
            filed_at=clock.now(),
        )
        session.add(objection)
        session.flush()
    return objection


def finalise_directly(session: Session, world: Mapping[str, Any], round_branch: RoundBranch) -> None:
    with tenant_context(world["tenant"].id):
        with seeding():
            round_branch.step = BranchStep.FINALISED
        round_branch.finalised_at = clock.now()
        session.flush()



def text_of(response: Any) -> str:
    return str(response.get_data(as_text=True))
