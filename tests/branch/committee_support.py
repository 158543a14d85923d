"""Helpers for the committee-side tests (rounds, the middle level, 定星, quarterly reviews): rule-set
variants, principals, and putting a rating at a step as the branch's own pages would, without
depending on them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts.principal import Grant, Principal
from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds.models import AnswerKind, BranchRating, CriterionScore, RatingAnswer, RatingStep
from fivestar.enums import Role
from fivestar.kernel.rounds import seeding
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.conftest import SAMPLE_RULES

BEIJING = ZoneInfo("Asia/Shanghai")


def rules_with(*, quota: str | None = "enforced", five_share: str = "0.5", promotion: bool = True,
               quarterly: bool = True) -> str:
    """The illustrative rules plus a quota on 五星 (`five_share` of the branches), the one-level-a-year
    rule with a municipal-honour exception, and the quarterly review switched on or off."""
    text = SAMPLE_RULES.read_text(encoding="utf-8")
    if not quarterly:
        text = text.replace("quarterly_review = true", "quarterly_review = false", 1)
    text += '\n[[branch.facts]]\nkey = "municipal_honour"\nlabel = "获得市级及以上表彰"\n'
    if quota is not None:
        text += f'\n[branch.quota]\nmode = "{quota}"\nrounding = "floor"\n[branch.quota.max_share]\n5 = {five_share}\n'
    if promotion:
        text += '\n[branch.promotion]\nmax_levels_up_per_year = 1\nexception_facts = ["municipal_honour"]\n'
    return text


def principal(world: dict[str, Any], role: Role, org: Any = None, *, account: str = "admin") -> Principal:
    return Principal(
        session_token="t", display_name=str(role), tenant_id=world["tenant"].id, account_id=world[account].id,
        grants=(Grant(role, org.id if org is not None else None, org.path if org is not None else None),),
    )


def put_at(
    session: Session,
    world: dict[str, Any],
    rating: BranchRating,
    step: RatingStep,
    *,
    proposed: int | None = 4,
    opinion: int | None = 4,
    previous: int | None = None,
) -> BranchRating:
    """The rating at `step` with the branch's proposal and opinion recorded."""
    now = clock.now()
    with tenant_context(world["tenant"].id):
        with seeding():
            rating.step = step
        rating.proposed_level = proposed
        rating.proposed_total = Decimal("85") if proposed is not None else None
        rating.statement = "本支部全年认真落实各项工作。"
        rating.recommended_at = now
        if opinion is not None:
            rating.opinion_level = opinion
            rating.opinion_statement = "经议星会议测评，建议评为相应星级。"
            rating.opinion_at = now
        if previous is not None:
            rating.previous_level = previous
        session.flush()
    return rating


def answer(session: Session, world: dict[str, Any], rating: BranchRating, kind: AnswerKind, key: str, value: bool,
           explanation: str | None = None) -> None:
    with tenant_context(world["tenant"].id):
        session.add(RatingAnswer(tenant_id=world["tenant"].id, rating_id=rating.id, kind=kind, key=key, value=value,
                                 explanation=explanation))
        session.flush()


def score(session: Session, world: dict[str, Any], rating: BranchRating, indicator: str, criterion: str,
          value: str, note: str | None = None) -> None:
    with tenant_context(world["tenant"].id):
        session.add(CriterionScore(tenant_id=world["tenant"].id, rating_id=rating.id, indicator_key=indicator,
                                   criterion_key=criterion, score=Decimal(value), note=note))
        session.flush()


def fresh(session: Session, world: dict[str, Any], model: Any, ident: int) -> Any:
    """The row as the database has it now (the app wrote through its own session)."""
    with tenant_context(world["tenant"].id):
        return session.scalar(select(model).where(model.id == ident).execution_options(populate_existing=True))


def events(session: Session, world: dict[str, Any], action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.tenant_id == world["tenant"].id, AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
    )


def local(year: int, month: int, day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(year, month, day, hour, 0, tzinfo=BEIJING)
