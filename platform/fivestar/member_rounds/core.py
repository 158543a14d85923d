"""What every part of the member round shares: the pinned rules, the score fields they define,
reading and writing score rows, evaluating one member, and the facts the workflow decides on.

Services in this package flush, never commit, and refuse with `ServiceError`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.orm import Session, contains_eager

from fivestar.errors import NotFoundError
from fivestar.i18n import _, _l
from fivestar.kernel import rounds
from fivestar.member_rounds import workflow
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationScore,
    EvaluationStatus,
    MemberRound,
    Objection,
    ObjectionState,
    PartKind,
    RoundBranch,
    ScoreStage,
    SelfState,
)
from fivestar.member_rounds.workflow import RoundFacts
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.rules import MemberInput, MemberResult, RuleSet, evaluate_member
from fivestar.tenancy import require_tenant_id
from fivestar.tenants.services import pinned_rules, timezone_of
from fivestar.timekeeping import clock

TWO_PLACES = Decimal("0.01")

# (kind, part key, criterion key or "") — one score field of a stage.
FieldKey = tuple[PartKind, str, str]


@dataclass(frozen=True)
class ScoreField:
    """One number a form asks for: an aspect (or one of its criteria), an addition, a deduction."""

    kind: PartKind
    part_key: str
    criterion_key: str
    label: str
    part_label: str
    max: Decimal

    @property
    def key(self) -> FieldKey:
        return (self.kind, self.part_key, self.criterion_key)

    @property
    def name(self) -> str:
        """A form field name, stable and unique within a stage."""
        suffix = f".{self.criterion_key}" if self.criterion_key else ""
        return f"{self.kind.value}.{self.part_key}{suffix}"


# --- rules -----------------------------------------------------------------------------------------


def round_rules(session: Session, member_round: MemberRound) -> RuleSet:
    """The rule set the round opened with (its pinned version, never the tenant's latest)."""
    return pinned_rules(session, member_round.rules_version_id)


def score_fields(rules: RuleSet) -> list[ScoreField]:
    """The score fields of a member's assessment, in the rules' order (bonus reasons excluded)."""
    fields: list[ScoreField] = []
    for part in rules.member.scheme.parts():
        kind = PartKind(part.kind)
        criteria = getattr(part, "criteria", ()) or ()
        if criteria:
            fields.extend(
                ScoreField(kind, part.key, criterion.key, criterion.label, part.label, criterion.points)
                for criterion in criteria
            )
        else:
            fields.append(ScoreField(kind, part.key, "", part.label, part.label, part.max))
    return fields


def bonus_fields(rules: RuleSet) -> list[ScoreField]:
    bonus = rules.member.bonus
    if bonus is None:
        return []
    return [ScoreField(PartKind.BONUS, r.key, "", r.label, r.label, r.max) for r in bonus.reasons]


def parse_scores(
    fields: Iterable[ScoreField], raw: Mapping[str, object], *, required: bool
) -> tuple[dict[FieldKey, Decimal], dict[str, str]]:
    """Read form values (by `ScoreField.name`) into Decimals; return (values, errors by field name).

    A score must be a number from 0 to the field's maximum with at most two decimal places. Empty
    fields are errors when `required`, else skipped (a draft may be incomplete).
    """
    values: dict[FieldKey, Decimal] = {}
    errors: dict[str, str] = {}
    for field in fields:
        text = str(raw.get(field.name, "") or "").strip().replace("，", ".")
        if not text:
            if required:
                errors[field.name] = _("请填写%(label)s的分数", label=field.label)
            continue
        try:
            number = Decimal(text)
        except InvalidOperation:
            errors[field.name] = _("%(label)s须为数字", label=field.label)
            continue
        if not number.is_finite() or number < 0 or number > field.max:
            errors[field.name] = _(
                "%(label)s须在 0 到 %(max)s 分之间", label=field.label, max=_fmt(field.max)
            )
            continue
        if number != number.quantize(TWO_PLACES):
            errors[field.name] = _("%(label)s最多保留两位小数", label=field.label)
            continue
        values[field.key] = number.quantize(TWO_PLACES)
    return values, errors


def _fmt(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text


# --- score rows ------------------------------------------------------------------------------------


def write_scores(
    session: Session, evaluation_ids: Iterable[int], stage: ScoreStage, values: Mapping[int, Mapping[FieldKey, Decimal]]
) -> None:
    """Replace the `stage` scores of the given evaluations with `values` (two statements in all)."""
    ids = list(evaluation_ids)
    if not ids:
        return
    session.execute(
        delete(EvaluationScore)
        .where(EvaluationScore.evaluation_id.in_(ids), EvaluationScore.stage == stage)
        .execution_options(synchronize_session=False)
    )
    tenant_id = require_tenant_id()  # a bulk INSERT gets no tenant stamped by the ORM hook
    rows = [
        {
            "tenant_id": tenant_id,
            "evaluation_id": evaluation_id,
            "stage": stage,
            "kind": kind,
            "part_key": part_key,
            "criterion_key": criterion_key,
            "score": score,
        }
        for evaluation_id in ids
        for (kind, part_key, criterion_key), score in values.get(evaluation_id, {}).items()
    ]
    if rows:
        session.execute(insert(EvaluationScore), rows)


def read_scores(
    session: Session, evaluation_ids: Iterable[int], stages: Iterable[ScoreStage]
) -> dict[tuple[int, ScoreStage], dict[FieldKey, Decimal]]:
    """Scores of many evaluations and stages in one query, keyed by (evaluation id, stage)."""
    ids = list(evaluation_ids)
    wanted = list(stages)
    result: dict[tuple[int, ScoreStage], dict[FieldKey, Decimal]] = defaultdict(dict)
    if not ids:
        return result
    rows = session.execute(
        select(
            EvaluationScore.evaluation_id,
            EvaluationScore.stage,
            EvaluationScore.kind,
            EvaluationScore.part_key,
            EvaluationScore.criterion_key,
            EvaluationScore.score,
        ).where(EvaluationScore.evaluation_id.in_(ids), EvaluationScore.stage.in_(wanted))
    )
    for evaluation_id, stage, kind, part_key, criterion_key, score in rows:
        result[(evaluation_id, stage)][(kind, part_key, criterion_key)] = score
    return result


def member_input(
    scores: Mapping[FieldKey, Decimal], disqualifier: str | None = None
) -> MemberInput:
    """The rule engine's input from score rows: criteria add up to their aspect."""
    parts: dict[PartKind, dict[str, Decimal]] = defaultdict(dict)
    for (kind, part_key, _criterion), score in scores.items():
        parts[kind][part_key] = parts[kind].get(part_key, Decimal(0)) + score
    return MemberInput(
        aspects=dict(parts[PartKind.ASPECT]),
        additions=dict(parts[PartKind.ADDITION]),
        deductions=dict(parts[PartKind.DEDUCTION]),
        bonus=dict(parts[PartKind.BONUS]),
        disqualifiers=[disqualifier] if disqualifier else [],
    )


def evaluate(rules: RuleSet, scores: Mapping[FieldKey, Decimal], disqualifier: str | None = None) -> MemberResult:
    """One member's result by the rule engine (for previews and single saves; whole rounds are
    scored set-based by scoring.py, which must agree with this)."""
    return evaluate_member(rules, member_input(scores, disqualifier))


# --- loading ---------------------------------------------------------------------------------------


# Loading a round, and a branch of a round with its organisation (as `authorize` needs).
load_round = rounds.loader(MemberRound, _l("评定轮次不存在"))
load_round_branch = rounds.loader(RoundBranch, _l("该支部不在本轮评定中"), with_branch=True)


def load_evaluation(session: Session, evaluation_id: int) -> Evaluation:
    """An evaluation with its branch and member loaded."""
    found = session.scalar(
        select(Evaluation)
        .join(Organisation, Evaluation.branch_id == Organisation.id)
        .join(Member, Evaluation.member_id == Member.id)
        .where(Evaluation.id == evaluation_id)
        .options(contains_eager(Evaluation.branch), contains_eager(Evaluation.member))
    )
    if found is None:
        raise NotFoundError(_("评定记录不存在"))
    return found


def facts_for(session: Session, member_round: MemberRound, round_branch: RoundBranch) -> RoundFacts:
    """The facts the workflow decides on for one branch, in two queries."""
    active = Evaluation.status == EvaluationStatus.ACTIVE
    has_joint = (
        select(EvaluationScore.id)
        .where(EvaluationScore.evaluation_id == Evaluation.id, EvaluationScore.stage == ScoreStage.JOINT)
        .exists()
    )
    counts = session.execute(
        select(
            func.count().filter(active),
            func.count().filter(and_(active, Evaluation.self_state != SelfState.SUBMITTED)),
            func.count().filter(and_(active, Evaluation.disqualifier.is_(None), Evaluation.total.is_(None))),
            func.count().filter(and_(active, ~has_joint)),
        ).where(Evaluation.round_branch_id == round_branch.id)
    ).one()
    open_objections = session.scalar(
        select(func.count())
        .select_from(Objection)
        .where(Objection.round_branch_id == round_branch.id, Objection.state == ObjectionState.OPEN)
    )
    return RoundFacts(
        **rounds.facts_of(member_round, round_branch, timezone_of(session, member_round.tenant_id)),
        self_due_at=member_round.self_due_at,
        joint_due_at=member_round.joint_due_at,
        review_due_at=member_round.review_due_at,
        members=int(counts[0] or 0),
        self_pending=int(counts[1] or 0),
        unscored=int(counts[2] or 0),
        open_objections=int(open_objections or 0),
        notice_ends_at=round_branch.notice_ends_at,
        meeting_recorded=round_branch.meeting_date is not None,
        joint_missing=int(counts[3] or 0),
    )


def ensure_open(member_round: MemberRound) -> None:
    """The one guard of a closed round: every service that writes scores, levels, decisions or what
    they rest on (self-assessments, the 党群联评 meeting and grid, the review, the notice and its
    objections, the committee's return, closing, deadlines) calls it before anything else, so a
    closed round's results never change silently. Refuses with a 409 (ConflictError), writing
    nothing. Results are changed after closing only by a recorded adjustment, never by these paths."""
    rounds.ensure_open(workflow.closed_refusal(member_round.state))


def now() -> dt.datetime:
    return clock.now()


__all__ = [
    "BranchStep",
    "FieldKey",
    "ScoreField",
    "bonus_fields",
    "ensure_open",
    "evaluate",
    "facts_for",
    "load_evaluation",
    "load_round",
    "load_round_branch",
    "member_input",
    "parse_scores",
    "read_scores",
    "round_rules",
    "score_fields",
    "write_scores",
]
