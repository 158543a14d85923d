"""定星: the committee's dossier of one branch, its decision on the branch's level, and finalising
the year's round in a committee meeting.

Deciding (`decide`, the workflow's "decide" transition, BRANCH_DECIDE) records a level per branch.
The rules apply as the rule engine says:

* a reason is required whenever the level differs from the branch's opinion (or, without one, from
  the 荐星 proposal);
* the highest level the rules allow this branch is the engine's result for its own vetoes, facts,
  public satisfaction and last year's level **with every criterion at full marks** (`level_ceiling`):
  so vetoes and caps, gates on facts and the one-level-a-year rule (逐级晋升, with its exception
  facts handled by the engine) bound the decision whatever the scores; deciding above it is refused
  with the engine's reasons;
* an enforced quota refuses a decision that would put more decided branches at a level than the
  rules allow (counted over the whole round: decided levels, and for the branches not yet decided
  their opinion or proposal); an advisory quota only warns.

Finalising (`finalise_round`) is the committee meeting's act, so it takes BRANCH_DECIDE (tenant
administrators and committee members) rather than ROUND_MANAGE: the people who decide the levels
record the meeting (date, participants) that decided them. Every branch must be decided and an
enforced quota met; the round then becomes FINALISED and the publication part shows it.

Services flush, never commit, and refuse with `ServiceError` (ConflictError when someone saved the
same rating or round first).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds import ballot_results, core, workflow
from fivestar.branch_rounds.committee import QuotaGuidance, quota_guidance, ratings_by_step
from fivestar.branch_rounds.models import (
    AnswerKind,
    BranchRating,
    BranchRound,
    BranchRoundState,
    CriterionScore,
    EvidenceFile,
    QuarterlyReview,
    RatingAnswer,
)
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.kernel import events, rounds
from fivestar.kernel.versioning import expect_version
from fivestar.orgs.models import Organisation
from fivestar.rules import LEVELS, BallotResult, BranchResult, InputError, RuleSet, evaluate_branch, level_label
from fivestar.standing import services as standing
from fivestar.standing.models import SourceKind
from fivestar.tenants.services import timezone_of
from fivestar.timekeeping import clock

REASON_MAX = 2000
PARTICIPANTS_MAX = 2000
ORG_ACTIONS = ("branch_rating.forward", "branch_rating.org_return")


# --- the dossier ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionView:
    key: str
    label: str
    points: Decimal
    score: Decimal | None
    note: str | None
    evidence: tuple[EvidenceFile, ...] = ()


@dataclass(frozen=True)
class IndicatorView:
    key: str
    label: str
    max: Decimal
    total: Decimal | None  # the engine's total; None when the engine could not run yet
    medal: str | None  # 金星/银星/铜星/无
    criteria: tuple[CriterionView, ...]


@dataclass(frozen=True)
class AnswerView:
    kind: AnswerKind
    key: str
    label: str
    value: bool | None  # None: not answered
    explanation: str | None


@dataclass(frozen=True)
class OrgEvent:
    """One act of the middle level on this rating: forwarded with a comment, or returned with a reason."""

    action: str  # "forward" or "org_return"
    at: dt.datetime
    by: str
    text: str | None


@dataclass(frozen=True)
class Ceiling:
    """The highest level the rules allow the branch, and the engine's reasons for it."""

    level: int
    reasons: tuple[str, ...]

    @property
    def label(self) -> str:
        return level_label(self.level)


@dataclass
class Dossier:
    rating: BranchRating  # with `branch` loaded
    branch_round: BranchRound
    rules: RuleSet
    middle: Organisation | None  # the 机关党委/党总支 above, if any
    indicators: list[IndicatorView]
    vetoes: list[AnswerView]
    facts: list[AnswerView]
    result: BranchResult | None  # the engine's result on the stored scores (None while incomplete)
    ceiling: Ceiling | None
    ballot: Any  # the ballot part's result (rules.ballot.BallotResult), or None when not available
    org_events: list[OrgEvent]
    quarterly: list[QuarterlyReview]  # as the committee had them when it decided (see quarterly_as_decided)
    reasons: tuple[str, ...] = field(default_factory=tuple)  # the engine's reasons on the stored scores
    decided_at: dt.datetime | None = None  # when the committee decided; None while undecided
    quarterly_later: int = 0  # reviews of the year submitted (or revised) after the decision, not listed
    comments_after: frozenset[int] = frozenset()  # listed reviews whose committee comment came later
    # what other features add (events.ask_dossier_sections): last year's acceptance review, …
    sections: list[events.Section] = field(default_factory=list)

    @property
    def reference_level(self) -> int | None:
        return reference_level(self.rating)


def reference_level(rating: BranchRating) -> int | None:
    """What a decision is compared with: the branch's opinion, else the 荐星 proposal."""
    return rating.opinion_level if rating.opinion_level is not None else rating.proposed_level


def build_dossier(session: Session, branch_round: BranchRound, rating: BranchRating) -> Dossier:
    """Everything the committee weighs for one branch (a fixed handful of queries)."""
    rules = core.round_rules(session, branch_round)
    score_rows = session.execute(
        select(CriterionScore.indicator_key, CriterionScore.criterion_key, CriterionScore.score, CriterionScore.note)
        .where(CriterionScore.rating_id == rating.id)
    ).all()
    scores: dict[str, dict[str, Decimal]] = {}
    notes: dict[tuple[str, str], str | None] = {}
    for indicator_key, criterion_key, score, note in score_rows:
        scores.setdefault(indicator_key, {})[criterion_key] = score
        notes[(indicator_key, criterion_key)] = note
    evidence: dict[tuple[str, str], list[EvidenceFile]] = {}
    for item in session.scalars(
        select(EvidenceFile).where(EvidenceFile.rating_id == rating.id).order_by(EvidenceFile.id)
    ):
        evidence.setdefault((item.indicator_key, item.criterion_key), []).append(item)
    answer_rows = session.execute(
        select(RatingAnswer.kind, RatingAnswer.key, RatingAnswer.value, RatingAnswer.explanation).where(
            RatingAnswer.rating_id == rating.id
        )
    ).all()
    answers: dict[AnswerKind, dict[str, bool]] = {AnswerKind.VETO: {}, AnswerKind.FACT: {}}
    explanations: dict[tuple[AnswerKind, str], str | None] = {}
    for kind, key, value, explanation in answer_rows:
        answers[kind][key] = value
        explanations[(kind, key)] = explanation

    result = _evaluate(rules, rating, scores, answers)
    by_key = {indicator.key: indicator for indicator in result.indicators} if result is not None else {}
    indicators = []
    for indicator in rules.branch.indicators:
        computed = by_key.get(indicator.key)
        indicators.append(
            IndicatorView(
                key=indicator.key,
                label=indicator.label,
                max=indicator.max,
                total=computed.total if computed is not None else None,
                medal=computed.medal_label if computed is not None else None,
                criteria=tuple(
                    CriterionView(
                        key=criterion.key,
                        label=criterion.label,
                        points=criterion.points,
                        score=scores.get(indicator.key, {}).get(criterion.key),
                        note=notes.get((indicator.key, criterion.key)),
                        evidence=tuple(evidence.get((indicator.key, criterion.key), ())),
                    )
                    for criterion in indicator.criteria
                ),
            )
        )
    vetoes = [
        AnswerView(AnswerKind.VETO, v.key, v.label, answers[AnswerKind.VETO].get(v.key),
                   explanations.get((AnswerKind.VETO, v.key)))
        for v in rules.branch.vetoes
    ]
    facts = [
        AnswerView(AnswerKind.FACT, f.key, f.label, answers[AnswerKind.FACT].get(f.key),
                   explanations.get((AnswerKind.FACT, f.key)))
        for f in rules.branch.facts
    ]
    as_decided = quarterly_as_decided(session, branch_round, rating)
    return Dossier(
        rating=rating,
        branch_round=branch_round,
        rules=rules,
        middle=core.middle_organisation(session, rating),
        indicators=indicators,
        vetoes=vetoes,
        facts=facts,
        result=result,
        ceiling=_ceiling(rules, rating, answers),
        ballot=ballot_result(session, rating),
        org_events=org_history(session, rating),
        quarterly=as_decided.reviews,
        reasons=tuple(reason.zh for reason in result.reasons) if result is not None else (),
        decided_at=as_decided.decided_at,
        quarterly_later=as_decided.later,
        comments_after=as_decided.comments_after,
        sections=events.answers_sections(
            events.ask_dossier_sections.send(rating, session=session, branch_round=branch_round)
        ),
    )


def _evaluate(
    rules: RuleSet, rating: BranchRating, scores: Mapping[str, Mapping[str, Decimal]],
    answers: Mapping[AnswerKind, Mapping[str, bool]],
) -> BranchResult | None:
    if rules.branch.public is not None and rating.public_rate is None:
        return None
    try:
        return evaluate_branch(rules, core.branch_input(rules, rating, scores, answers))
    except InputError:  # stored data the pinned rules no longer accept: show the figures, no result
        return None


def ballot_result(session: Session, rating: BranchRating) -> BallotResult | None:
    """The 议星 ballot's result for the rating (None before voting closed)."""
    return ballot_results.results_for_rating(session, rating)


def org_history(session: Session, rating: BranchRating) -> list[OrgEvent]:
    """The middle level's forwards and returns of this rating, oldest first (one query on the audit
    trail, which keeps every one of them even after the rating came back and went up again)."""
    rows = session.execute(
        select(AuditEvent.action, AuditEvent.occurred_at, AuditEvent.actor_name, AuditEvent.after, AuditEvent.reason)
        .where(
            AuditEvent.tenant_id == rating.tenant_id,
            AuditEvent.object_type == BranchRating.__tablename__,
            AuditEvent.object_id == str(rating.id),
            AuditEvent.action.in_(ORG_ACTIONS),
        )
        .order_by(AuditEvent.occurred_at, AuditEvent.id)
    ).all()
    events = []
    for row in rows:
        at: dt.datetime = row.occurred_at
        by: str = row.actor_name
        if row.action == "branch_rating.forward":
            after = row.after if isinstance(row.after, dict) else {}
            comment = after.get("org_comment")
            events.append(OrgEvent("forward", at, by, str(comment) if comment is not None else None))
        else:
            events.append(OrgEvent("org_return", at, by, row.reason))
    return events


def quarterly_of_year(session: Session, branch_id: int, year: int) -> list[QuarterlyReview]:
    """The branch's quarterly reviews (一季一小评) of the rated year, by quarter (one query)."""
    return list(
        session.scalars(
            select(QuarterlyReview)
            .where(QuarterlyReview.branch_id == branch_id, QuarterlyReview.year == year)
            .order_by(QuarterlyReview.quarter)
        )
    )


def decision_time(branch_round: BranchRound, rating: BranchRating) -> dt.datetime | None:
    """When the committee decided this rating: its 定星, else (a finalised round's rating without
    one recorded) the round's finalisation; None while undecided."""
    if rating.decided_at is not None:
        return rating.decided_at
    if branch_round.state is BranchRoundState.FINALISED:
        return branch_round.finalised_at
    return None


@dataclass(frozen=True)
class QuarterlyAsDecided:
    reviews: list[QuarterlyReview]
    decided_at: dt.datetime | None
    later: int  # submitted (or revised) after the decision: not listed
    comments_after: frozenset[int]  # ids of listed reviews whose comment was made after the decision


def quarterly_as_decided(session: Session, branch_round: BranchRound, rating: BranchRating) -> QuarterlyAsDecided:
    """The year's quarterly reviews as they stood when the committee decided (one query).

    A dossier of a decided rating (and so of a finalised round) shows what the committee had in
    front of it: reviews submitted up to the decision, with the comments made by then; a review
    filed or revised later is left out and counted, a later comment is not shown. Before the
    decision the dossier shows every review of the rated year as it is now."""
    reviews = quarterly_of_year(session, rating.branch_id, branch_round.year)
    cutoff = decision_time(branch_round, rating)
    if cutoff is None:
        return QuarterlyAsDecided(reviews, None, 0, frozenset())
    listed = [r for r in reviews if r.submitted_at is not None and r.submitted_at <= cutoff]
    comments_after = frozenset(
        r.id for r in listed if r.commented_at is not None and r.commented_at > cutoff
    )
    return QuarterlyAsDecided(listed, cutoff, len(reviews) - len(listed), comments_after)


# --- the highest level the rules allow ------------------------------------------------------------------


def _full_marks(rules: RuleSet) -> dict[str, dict[str, Decimal]]:
    return {i.key: {c.key: c.points for c in i.criteria} for i in rules.branch.indicators}


def _ceiling(rules: RuleSet, rating: BranchRating, answers: Mapping[AnswerKind, Mapping[str, bool]]) -> Ceiling:
    """The engine's level for this branch with every criterion at full marks: the scores can only
    lower a level, so nothing the branch scored lets the committee go above this. A public rate not
    recorded yet is taken as 100 % (no cap is known; the 荐星 step requires it before the committee)."""
    inp = core.branch_input(rules, rating, _full_marks(rules), answers)
    if rules.branch.public is not None and inp.public_rate is None:
        inp = replace(inp, public_rate=Decimal(1))
    try:
        result = evaluate_branch(rules, inp)
    except InputError:  # pragma: no cover - answers the pinned rules reject: no ceiling to apply
        return Ceiling(5, ())
    return Ceiling(result.level, tuple(reason.zh for reason in result.reductions))


def level_ceiling(session: Session, rules: RuleSet, rating: BranchRating) -> Ceiling:
    """The highest level the rules allow `rating` (see `_ceiling`)."""
    return _ceiling(rules, rating, core.answers_of(session, rating.id))


# --- deciding ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decided:
    rating: BranchRating
    warnings: tuple[str, ...]  # advisory quota lines now exceeded


def _round_levels(session: Session, branch_round: BranchRound) -> list[tuple[int, int | None, int | None, int | None]]:
    """(rating id, decided, opinion, proposed) of every rating of the round (one query)."""
    return [
        (int(rid), decided, opinion, proposed)
        for rid, decided, opinion, proposed in session.execute(
            select(
                BranchRating.id, BranchRating.decided_level, BranchRating.opinion_level, BranchRating.proposed_level
            ).where(BranchRating.round_id == branch_round.id, BranchRating.tenant_id == branch_round.tenant_id)
        )
    ]


def round_guidance(
    session: Session, rules: RuleSet, branch_round: BranchRound, *, deciding: tuple[int, int] | None = None
) -> QuotaGuidance:
    """The quota over the whole round: decided levels (with `deciding` = (rating id, level) counted
    as decided), and for the branches not yet decided their opinion or proposal."""
    levels: dict[int, int | None] = {}
    decided: dict[int, bool] = {}
    for rid, decided_level, opinion, proposed in _round_levels(session, branch_round):
        if deciding is not None and rid == deciding[0]:
            levels[rid], decided[rid] = deciding[1], True
        elif decided_level is not None:
            levels[rid], decided[rid] = decided_level, True
        else:
            levels[rid], decided[rid] = (opinion if opinion is not None else proposed), False
    return quota_guidance(rules, levels, decided)


def parse_level(value: object) -> int:
    try:
        level = int(str(value).strip())
    except (TypeError, ValueError):
        raise ServiceError(_("请选择定星星级"), field="level") from None
    if level not in LEVELS:
        raise ServiceError(_("请选择定星星级"), field="level")
    return level


def decide(
    session: Session,
    branch_round: BranchRound,
    rating: BranchRating,
    level: object,
    reason: str | None,
    *,
    version: int | str | None,
) -> Decided:
    """Record the committee's level for one branch (COMMITTEE or DECIDED, round OPEN)."""
    core.ensure_open(branch_round)
    expect_version(rating, version)
    rules = core.round_rules(session, branch_round)
    refused = workflow.refusal("decide", core.facts_for(session, branch_round, rating, rules))
    if refused:
        raise ServiceError(refused)
    chosen = parse_level(level)
    text = (reason or "").strip()
    if len(text) > REASON_MAX:
        raise ServiceError(_("理由最长 %(n)d 个字", n=REASON_MAX), field="reason")
    reference = reference_level(rating)
    if chosen != reference and not text:
        if reference is None:
            raise ServiceError(_("该支部没有建议星级，定星须填写理由"), field="reason")
        raise ServiceError(
            _("定为%(level)s与支部意见（%(reference)s）不同，须填写理由", level=level_label(chosen),
              reference=level_label(reference)),
            field="reason",
        )
    ceiling = level_ceiling(session, rules, rating)
    if chosen > ceiling.level:
        because = "；".join(ceiling.reasons) or _("各项评分标准满分时按规则也只能达到%(max)s", max=ceiling.label)
        raise ServiceError(
            _("不能定为%(level)s：按评定规则该支部最高为%(max)s（%(why)s）", level=level_label(chosen),
              max=ceiling.label, why=because),
            field="level",
        )
    guidance = round_guidance(session, rules, branch_round, deciding=(rating.id, chosen))
    line = next(line for line in guidance.lines if line.level == chosen)
    if guidance.enforced and line.decided_over:
        raise ServiceError(
            _(
                "不能定为%(level)s：规则限定%(level)s最多 %(allowed)d 个（%(total)d 个支部的 %(share)s%%），"
                "定星后将有 %(count)d 个",
                level=line.label, allowed=line.allowed or 0, total=guidance.total, share=line.max_share or "0",
                count=line.decided,
            ),
            field="level",
        )
    before = {
        "step": rating.step,
        "decided_level": rating.decided_level,
        "decision_reason": rating.decision_reason,
        "decided_at": rating.decided_at,
        "decided_by": rating.decided_by,
    }

    def decided() -> None:
        rating.decided_level = chosen
        rating.decision_reason = text or None
        rating.decided_at = clock.now()
        rating.decided_by = audit.current_actor().name

    rounds.apply(
        session, workflow.RATING_WORKFLOW, "decide", rating, refusal=None, reason=text or None, changes=decided,
        before=before,
        after=lambda: {
            "step": rating.step,
            "decided_level": chosen,
            "decision_reason": rating.decision_reason,
            "decided_at": rating.decided_at,
            "decided_by": rating.decided_by,
            "reference_level": reference,
            "ceiling": ceiling.level,
        },
    )
    warnings = guidance.warnings if guidance.mode == "advisory" else ()
    return Decided(rating, tuple(warnings))


# --- finalising the round -----------------------------------------------------------------------------------


def finalise_round(
    session: Session,
    branch_round: BranchRound,
    *,
    meeting_date: dt.date | None,
    participants: str | None,
    version: int | str | None,
) -> BranchRound:
    """Record the committee meeting that decided the levels and finalise the round (→ 亮星)."""
    core.ensure_open(branch_round)
    expect_version(branch_round, version)
    refused = workflow.round_refusal("finalise", branch_round.state, ratings_by_step(session, branch_round))
    if refused:
        raise ServiceError(refused)
    timezone = timezone_of(session, branch_round.tenant_id)
    today = clock.today_in(timezone)
    if meeting_date is None:
        raise ServiceError(_("请填写定星的工委会议日期"), field="meeting_date")
    if meeting_date > today:
        raise ServiceError(
            _("会议日期 %(day)s 还没有到，不能晚于今天（%(today)s）", day=meeting_date.isoformat(),
              today=today.isoformat()),
            field="meeting_date",
        )
    opened_on = branch_round.opened_at.astimezone(ZoneInfo(timezone)).date()
    if meeting_date < opened_on:
        raise ServiceError(
            _("会议日期不能早于本年度评定开启的日期（%(day)s）", day=opened_on.isoformat()), field="meeting_date"
        )
    who = (participants or "").strip()
    if not who:
        raise ServiceError(_("请填写参加会议的人员"), field="participants")
    if len(who) > PARTICIPANTS_MAX:
        raise ServiceError(_("参会人员最长 %(n)d 个字", n=PARTICIPANTS_MAX), field="participants")
    rules = core.round_rules(session, branch_round)
    guidance = round_guidance(session, rules, branch_round)
    over = [line for line in guidance.lines if line.decided_over]
    if guidance.enforced and over:
        raise ServiceError(
            _("定星结果超过规则限额，请先调整：%(lines)s", lines="；".join(
                _("%(level)s %(count)d 个，最多 %(allowed)d 个", level=line.label, count=line.decided,
                  allowed=line.allowed or 0)
                for line in over
            ))
        )
    before = {
        "state": branch_round.state,
        "finalised_at": branch_round.finalised_at,
        "decision_meeting_date": branch_round.decision_meeting_date,
        "decision_participants": branch_round.decision_participants,
    }

    def finalised() -> None:
        branch_round.finalised_at = clock.now()
        branch_round.decision_meeting_date = meeting_date
        branch_round.decision_participants = who

    rounds.apply(
        session, workflow.ROUND_WORKFLOW, "finalise", branch_round, refusal=None, changes=finalised, before=before,
        after=lambda: {
            "state": branch_round.state,
            "finalised_at": branch_round.finalised_at,
            "decision_meeting_date": meeting_date,
            "decision_participants": who,
            "levels": {str(line.level): line.decided for line in guidance.lines},
            "quota_warnings": list(guidance.warnings),
        },
    )
    record_final_levels(session, branch_round)
    events.branch_round_finalised.send(branch_round, session=session)  # plans follow (improvement)
    return branch_round



def record_final_levels(session: Session, branch_round: BranchRound) -> None:
    """A finalised round's decided levels enter the level history, in one INSERT … SELECT (at finalising)."""
    assert branch_round.finalised_at is not None
    standing.record_round_levels(
        session,
        standing.RoundLevels(
            SourceKind.BRANCH_ROUND, branch_round.tenant_id, branch_round.id, str(branch_round.year),
            branch_round.finalised_at,
        ),
        select(
            BranchRating.branch_id.label("subject_id"),
            BranchRating.decided_level.label("level"),
            BranchRating.decided_by.label("recorded_by"),
            BranchRating.decision_reason.label("reason"),
        ).where(BranchRating.tenant_id == branch_round.tenant_id, BranchRating.round_id == branch_round.id),
    )


__all__ = [
    "AnswerView", "Ceiling", "CriterionView", "Decided", "Dossier", "IndicatorView", "OrgEvent", "ballot_result",
    "build_dossier", "decide", "decision_time", "finalise_round", "level_ceiling", "org_history", "parse_level",
    "quarterly_as_decided", "quarterly_of_year", "record_final_levels", "reference_level", "round_guidance"
]
