"""Branch rounds built straight from the models for the publication (亮星) tests: a FINALISED round
with criterion scores, veto and fact answers and decided levels — or an OPEN one full of things that
must never be published — without going through the 荐星/议星/定星 pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import (
    AnswerKind,
    BranchRating,
    BranchRound,
    BranchRoundState,
    CriterionScore,
    RatingAnswer,
    RatingStep,
)
from fivestar.rules import RuleSet
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import current_rules, version_rules

UTC = dt.UTC


@dataclass
class Decided:
    """One branch in a built round: its indicator totals (spread over the criteria), answers, levels."""

    branch: Any
    level: int | None  # the committee's decided level (None: not decided)
    totals: Mapping[str, Decimal | int | str] = field(default_factory=dict)  # indicator key -> total
    vetoes: Mapping[str, bool] = field(default_factory=dict)
    facts: Mapping[str, bool] = field(default_factory=dict)
    proposed_level: int | None = None
    opinion_level: int | None = None
    statement: str | None = None
    opinion_statement: str | None = None
    decision_reason: str | None = None
    previous_level: int | None = None


def spread(rules: RuleSet, totals: Mapping[str, Decimal | int | str]) -> dict[str, dict[str, Decimal]]:
    """Criterion scores that add up to each indicator's total: each criterion filled to its points in
    the rules' order, the rest zero (every criterion gets a row, as after a submitted 荐星)."""
    scores: dict[str, dict[str, Decimal]] = {}
    for indicator in rules.branch.indicators:
        left = Decimal(str(totals.get(indicator.key, 0)))
        per: dict[str, Decimal] = {}
        for criterion in indicator.criteria:
            given = min(left, criterion.points)
            per[criterion.key] = given
            left -= given
        assert left == 0, f"{indicator.key}: {totals.get(indicator.key)} is above the indicator's maximum"
        scores[indicator.key] = per
    return scores


def build_round(
    session: Session,
    tenant: Any,
    *,
    year: int,
    decisions: Sequence[Decided],
    state: BranchRoundState = BranchRoundState.FINALISED,
    decided_on: dt.date | None = None,
) -> tuple[BranchRound, dict[int, BranchRating]]:
    """A round of `year` for `tenant` with one rating per `Decided` (keyed by branch id)."""
    with tenant_context(tenant.id):
        version = current_rules(session, tenant)
        assert version is not None
        rules = version_rules(version)
        finalised = state is BranchRoundState.FINALISED
        decided_on = decided_on or dt.date(year + 1, 2, 10)
        branch_round = BranchRound(
            tenant_id=tenant.id,
            year=year,
            rules_version_id=version.id,
            state=state,
            opened_at=dt.datetime(year + 1, 1, 5, 1, 0, tzinfo=UTC),
            opened_by="测试",
            self_report_due_at=dt.datetime(year + 1, 1, 31, 15, 59, tzinfo=UTC),
            committee_due_at=dt.datetime(year + 1, 2, 28, 15, 59, tzinfo=UTC),
            decision_meeting_date=decided_on if finalised else None,
            decision_participants="工委委员甲、工委委员乙" if finalised else None,
            finalised_at=dt.datetime(decided_on.year, decided_on.month, decided_on.day, 8, 0, tzinfo=UTC)
            if finalised
            else None,
        )
        session.add(branch_round)
        session.flush()
        ratings: dict[int, BranchRating] = {}
        for decided in decisions:
            rating = BranchRating(
                tenant_id=tenant.id,
                round_id=branch_round.id,
                branch_id=decided.branch.id,
                step=RatingStep.DECIDED if decided.level is not None else RatingStep.COMMITTEE,
                previous_level=decided.previous_level,
                statement=decided.statement,
                proposed_level=decided.proposed_level,
                proposed_total=sum((Decimal(str(v)) for v in decided.totals.values()), Decimal(0)),
                opinion_level=decided.opinion_level,
                opinion_statement=decided.opinion_statement,
                decided_level=decided.level,
                decision_reason=decided.decision_reason,
                decided_at=branch_round.finalised_at if decided.level is not None else None,
                decided_by="工委" if decided.level is not None else None,
            )
            session.add(rating)
            session.flush()
            ratings[decided.branch.id] = rating
            for indicator_key, per in spread(rules, decided.totals).items():
                for criterion_key, score in per.items():
                    session.add(
                        CriterionScore(
                            tenant_id=tenant.id,
                            rating_id=rating.id,
                            indicator_key=indicator_key,
                            criterion_key=criterion_key,
                            score=score,
                            note="自评说明",
                        )
                    )
            for veto in rules.branch.vetoes:
                session.add(
                    RatingAnswer(
                        tenant_id=tenant.id,
                        rating_id=rating.id,
                        kind=AnswerKind.VETO,
                        key=veto.key,
                        value=bool(decided.vetoes.get(veto.key, False)),
                    )
                )
            for fact in rules.branch.facts:
                session.add(
                    RatingAnswer(
                        tenant_id=tenant.id,
                        rating_id=rating.id,
                        kind=AnswerKind.FACT,
                        key=fact.key,
                        value=bool(decided.facts.get(fact.key, False)),
                    )
                )
        session.flush()
    return branch_round, ratings


# Known scores and the medals worked out by hand from tenants/notice-illustrative.toml, whose every
# indicator has gold ≥ 18, silver ≥ 16, bronze ≥ 14 (and nothing below 14).
ONE_TOTALS = {"leadership": 18, "membership": "16.5", "mechanisms": 14, "results": "13.5", "public": 20}
ONE_MEDALS = {"leadership": "金星", "membership": "银星", "mechanisms": "铜星", "results": "无", "public": "金星"}
DIRECT_TOTALS = {"leadership": 19, "membership": 19, "mechanisms": 19, "results": 19, "public": 19}
DIRECT_MEDALS = dict.fromkeys(DIRECT_TOTALS, "金星")
