"""What every part of the branch rating shares: the pinned rules, loading with the branch attached,
the rule engine's view of a rating, and the facts the workflow decides on.

Services in this package flush, never commit, and refuse with `ServiceError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.branch_rounds import workflow
from fivestar.branch_rounds.models import (
    AnswerKind,
    BallotMeeting,
    BranchRating,
    BranchRound,
    CriterionScore,
    RatingAnswer,
)
from fivestar.branch_rounds.workflow import RatingFacts
from fivestar.enums import OrgKind
from fivestar.i18n import _l
from fivestar.kernel import rounds
from fivestar.orgs.models import Organisation
from fivestar.rules import BranchInput, BranchResult, RuleSet, evaluate_branch
from fivestar.tenants.services import pinned_rules, timezone_of

HUNDRED = Decimal(100)
MIDDLE_KINDS = (OrgKind.PARTY_COMMITTEE, OrgKind.GENERAL_BRANCH)


def round_rules(session: Session, branch_round: BranchRound) -> RuleSet:
    """The rule set the round opened with (its pinned version)."""
    return pinned_rules(session, branch_round.rules_version_id)


def ensure_open(branch_round: BranchRound) -> None:
    """The one guard of a finalised round: every service that writes levels, decisions or what they
    rest on calls it before anything else (before a version check, so the person reads why), and a
    finalised year's rating never changes silently. Refuses with a 409 (ConflictError), writing
    nothing. Changes after publication go through a recorded adjustment, never through these paths."""
    rounds.ensure_open(workflow.finalised_refusal(branch_round.state))


# Loading a year's round, and a branch's rating with its organisation (as `authorize` needs).
load_round = rounds.loader(BranchRound, _l("评定年度不存在"))
load_rating = rounds.loader(BranchRating, _l("该支部不在本年度星级评定中"), with_branch=True)


def middle_organisation(session: Session, rating: BranchRating) -> Organisation | None:
    """The 机关党委 or 党总支 directly above the branch, which reviews its rating first; None when the
    branch sits directly under the working committee."""
    parent_id = rating.branch.parent_id
    if parent_id is None:
        return None
    parent = session.scalar(select(Organisation).where(Organisation.id == parent_id))
    return parent if parent is not None and parent.kind in MIDDLE_KINDS else None


def scores_of(session: Session, rating_id: int) -> dict[str, dict[str, Decimal]]:
    """indicator key → criterion key → score, for one rating (one query)."""
    result: dict[str, dict[str, Decimal]] = {}
    for indicator_key, criterion_key, score in session.execute(
        select(CriterionScore.indicator_key, CriterionScore.criterion_key, CriterionScore.score).where(
            CriterionScore.rating_id == rating_id
        )
    ):
        result.setdefault(indicator_key, {})[criterion_key] = score
    return result


def answers_of(session: Session, rating_id: int) -> dict[AnswerKind, dict[str, bool]]:
    result: dict[AnswerKind, dict[str, bool]] = {AnswerKind.VETO: {}, AnswerKind.FACT: {}}
    for kind, key, value in session.execute(
        select(RatingAnswer.kind, RatingAnswer.key, RatingAnswer.value).where(RatingAnswer.rating_id == rating_id)
    ):
        result[kind][key] = value
    return result


def branch_input(
    rules: RuleSet,
    rating: BranchRating,
    scores: Mapping[str, Mapping[str, Decimal]],
    answers: Mapping[AnswerKind, Mapping[str, bool]],
) -> BranchInput:
    """The rule engine's input for a rating. The public rate is stored in percent; the engine takes 0..1."""
    public_rate = None
    if rules.branch.public is not None and rating.public_rate is not None:
        public_rate = rating.public_rate / HUNDRED
    return BranchInput(
        scores={indicator: dict(criteria) for indicator, criteria in scores.items()},
        vetoes=dict(answers.get(AnswerKind.VETO, {})),
        facts=dict(answers.get(AnswerKind.FACT, {})),
        public_rate=public_rate,
        previous_level=rating.previous_level,
        is_new=rating.is_new,
    )


def evaluate(session: Session, rules: RuleSet, rating: BranchRating) -> BranchResult | None:
    """The rule engine's result for the rating as stored; None while the public rate it needs is missing."""
    if rules.branch.public is not None and rating.public_rate is None:
        return None
    return evaluate_branch(
        rules, branch_input(rules, rating, scores_of(session, rating.id), answers_of(session, rating.id))
    )


def facts_for(
    session: Session, branch_round: BranchRound, rating: BranchRating, rules: RuleSet, *, has_results: bool = False
) -> RatingFacts:
    """The facts the workflow decides on for one rating (a few small queries)."""
    criteria = sum(len(indicator.criteria) for indicator in rules.branch.indicators)
    scored = session.scalar(select(func.count()).where(CriterionScore.rating_id == rating.id)) or 0
    answers = answers_of(session, rating.id)
    meeting_state = session.scalar(select(BallotMeeting.state).where(BallotMeeting.rating_id == rating.id))
    return RatingFacts(
        **rounds.facts_of(branch_round, rating, timezone_of(session, branch_round.tenant_id)),
        self_report_due_at=branch_round.self_report_due_at,
        committee_due_at=branch_round.committee_due_at,
        unscored_criteria=max(criteria - int(scored), 0),
        unanswered_vetoes=len([v for v in rules.branch.vetoes if v.key not in answers[AnswerKind.VETO]]),
        unanswered_facts=len([f for f in rules.branch.facts if f.key not in answers[AnswerKind.FACT]]),
        has_statement=bool((rating.statement or "").strip()),
        meeting_state=meeting_state,
        has_results=has_results,
        has_opinion=rating.opinion_level is not None and bool((rating.opinion_statement or "").strip()),
    )
