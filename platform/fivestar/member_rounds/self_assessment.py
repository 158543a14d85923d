"""个人自评: a member scores themself against the rules, writes how they kept their pledge
(承诺践诺情况) and a summary, saves drafts and submits once.

Two entry points:

* `save(...)` — the member's own save or submission from the self-assessment page: checks that the
  evaluation is the member's own, the version the form was opened with, the state machine's guard
  (workflow.self_refusal) and the input, then writes.
* `write_self(...)` — the write itself, with the state machine's guard, for the branch's
  "enter on behalf of a member without an account" (transition ``enter_for_member``): the caller
  authorizes (ROUND_EVALUATE), checks the version and validates with `validate(...)` first.

Scores are SELF-stage rows in `evaluation_scores` (core.write_scores). Every write bumps the
evaluation's version, so of two people saving the same evaluation at once one wins and the other
gets a `ConflictError` (409) with nothing of theirs written. Services flush, never commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask_babel import LazyString
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from fivestar import audit
from fivestar.accounts.policy import Action, authorize
from fivestar.errors import ConflictError, NotFoundError, ServiceError
from fivestar.i18n import _, _l
from fivestar.kernel.versioning import expect_version, flush_or_stale
from fivestar.member_rounds import core
from fivestar.member_rounds.core import FieldKey, ScoreField
from fivestar.member_rounds.models import (
    Evaluation,
    EvaluationStatus,
    MemberRound,
    PartKind,
    RoundBranch,
    ScoreStage,
    SelfState,
)
from fivestar.member_rounds.workflow import SELF_TRANSITIONS, RoundFacts, self_refusal
from fivestar.rules import RuleSet
from fivestar.tenants.services import timezone_of
from fivestar.timekeeping import clock

TEXT_MAX = 4000  # characters of the pledge and of the summary: a page of writing, not a book

SELF_STATE_LABELS: dict[SelfState, LazyString] = {
    SelfState.PENDING: _l("未填写"),
    SelfState.DRAFT: _l("草稿"),
    SelfState.SUBMITTED: _l("已提交"),
    SelfState.RETURNED: _l("已退回"),
}

KIND_LABELS: dict[PartKind, LazyString] = {
    PartKind.ASPECT: _l("评分项目"),
    PartKind.ADDITION: _l("加分项目"),
    PartKind.DEDUCTION: _l("减分项目"),
    PartKind.BONUS: _l("加分"),
}


def state_label(state: SelfState) -> str:
    return str(SELF_STATE_LABELS[state])


class InvalidSelfAssessmentError(ServiceError):
    """The input has mistakes; `errors` names each field (score field names, "pledge", "summary")."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(_("请按提示修改标出的内容后再保存"))
        self.errors = dict(errors)


class SelfAssessmentClosedError(ServiceError):
    """The step is over for this evaluation (deadline passed, the branch moved on, round closed)."""

    status = 403


# --- the form's shape --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldGroup:
    """The score fields of one aspect (or addition/deduction): several when the rules list criteria."""

    kind: PartKind
    part_key: str
    label: str
    max: Decimal
    fields: tuple[ScoreField, ...]

    @property
    def has_criteria(self) -> bool:
        return any(field.criterion_key for field in self.fields)

    def subtotal(self, values: Mapping[FieldKey, Decimal]) -> Decimal | None:
        """The sum of the group's scores given so far (None when none is given)."""
        given = [values[field.key] for field in self.fields if field.key in values]
        return sum(given, Decimal(0)) if given else None


def field_groups(rules: RuleSet) -> list[FieldGroup]:
    """Score fields grouped by aspect, in the rules' order."""
    groups: dict[tuple[PartKind, str], list[ScoreField]] = {}
    for field in core.score_fields(rules):
        groups.setdefault((field.kind, field.part_key), []).append(field)
    result = []
    for (kind, part_key), fields in groups.items():
        result.append(
            FieldGroup(
                kind=kind,
                part_key=part_key,
                label=fields[0].part_label,
                max=sum((field.max for field in fields), Decimal(0)),
                fields=tuple(fields),
            )
        )
    return result


def field_name(key: FieldKey) -> str:
    """The form field name of a score (as `ScoreField.name`)."""
    kind, part_key, criterion_key = key
    return f"{kind.value}.{part_key}" + (f".{criterion_key}" if criterion_key else "")


# --- validation --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SelfInput:
    """A validated self-assessment, ready for `write_self`."""

    scores: dict[FieldKey, Decimal]
    pledge: str | None
    summary: str | None


def validate(
    rules: RuleSet, values: Mapping[str, object], pledge: str | None, summary: str | None, *, submit: bool
) -> SelfInput:
    """Check a self-assessment against the rules: each score within its maximum with at most two
    decimals (core.parse_scores); a submission must give every score, the pledge and the summary.
    Raises `InvalidSelfAssessmentError` naming every bad field."""
    scores, errors = core.parse_scores(core.score_fields(rules), values, required=submit)
    texts: dict[str, str | None] = {}
    for name, text, missing in (
        ("pledge", pledge, _("请填写承诺践诺情况")),
        ("summary", summary, _("请填写个人总结")),
    ):
        cleaned = (text or "").replace("\r\n", "\n").strip()
        if submit and not cleaned:
            errors[name] = missing
        elif len(cleaned) > TEXT_MAX:
            errors[name] = _("最多 %(n)d 个字（现有 %(have)d 个字）", n=TEXT_MAX, have=len(cleaned))
        texts[name] = cleaned or None
    if errors:
        raise InvalidSelfAssessmentError(errors)
    return SelfInput(scores=scores, pledge=texts["pledge"], summary=texts["summary"])


# --- the state machine's guard -----------------------------------------------------------------------


@dataclass(frozen=True)
class SelfContext:
    """What a self-assessment page and save need besides the evaluation itself."""

    round: MemberRound
    round_branch: RoundBranch
    rules: RuleSet
    facts: RoundFacts


def context(session: Session, evaluation: Evaluation) -> SelfContext:
    """The evaluation's round, branch step, pinned rules and workflow facts (three small queries;
    the rules are cached per version)."""
    member_round = core.load_round(session, evaluation.round_id)
    round_branch = session.scalar(select(RoundBranch).where(RoundBranch.id == evaluation.round_branch_id))
    if round_branch is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFoundError(_("该支部不在本轮评定中"))
    facts = RoundFacts(
        now=clock.now(),
        timezone=timezone_of(session, evaluation.tenant_id),
        round_state=member_round.state,
        step=round_branch.step,
        self_due_at=member_round.self_due_at,
        joint_due_at=member_round.joint_due_at,
        review_due_at=member_round.review_due_at,
    )
    return SelfContext(member_round, round_branch, core.round_rules(session, member_round), facts)


def refusal(evaluation: Evaluation, transition: str, facts: RoundFacts) -> ServiceError | None:
    """Why `transition` may not happen to this evaluation now (as the error to raise), or None."""
    if evaluation.status is not EvaluationStatus.ACTIVE:
        return SelfAssessmentClosedError(_("您已转出本支部，本轮评定记录已保留，不能再填写自评"))
    reason = self_refusal(transition, evaluation.self_state, facts)
    if reason is None:
        return None
    if evaluation.self_state is SelfState.SUBMITTED and transition in ("save_draft", "submit", "enter_for_member"):
        return ConflictError(reason)
    return SelfAssessmentClosedError(reason)


# --- writing -----------------------------------------------------------------------------------------


def save(
    session: Session,
    evaluation: Evaluation,
    principal: Any,
    values: Mapping[str, object],
    pledge: str | None,
    summary: str | None,
    *,
    submit: bool,
    version: int | str | None,
) -> Evaluation:
    """The member's own save (draft) or submission of their self-assessment.

    Refuses, writing nothing: another person's evaluation (NotFoundError: it does not exist for
    them), a closed round (ConflictError, core.ensure_open), a form opened on an older version
    (ConflictError), a step that is over (deadline, branch moved on: SelfAssessmentClosedError,
    403), an already submitted one (ConflictError) and bad input (InvalidSelfAssessmentError with
    every field's message).
    """
    if not authorize(principal, Action.SELF_ASSESS, evaluation):
        raise NotFoundError(_("评定记录不存在"))
    ctx = context(session, evaluation)
    core.ensure_open(ctx.round)
    expect_version(evaluation, version)
    transition = "submit" if submit else "save_draft"
    refused = refusal(evaluation, transition, ctx.facts)
    if refused is not None:
        raise refused
    checked = validate(ctx.rules, values, pledge, summary, submit=submit)
    return _write(session, evaluation, checked, transition=transition, entered_by=None)


def write_self(
    session: Session,
    evaluation: Evaluation,
    values: Mapping[FieldKey, Decimal],
    pledge: str | None,
    summary: str | None,
    *,
    transition: str = "enter_for_member",
    entered_by: str | None = None,
) -> Evaluation:
    """Write a self-assessment through `transition` (a key of workflow.SELF_TRANSITIONS), after the
    state machine's guard. For the branch entering it for a member: pass validated scores (from
    `validate(rules, form, pledge, summary, submit=True).scores`) and `entered_by` (the person's
    name, shown to the member as "entered on your behalf by …"). The caller authorizes and checks
    the version (fivestar.kernel.versioning.expect_version) first."""
    if transition not in SELF_TRANSITIONS or transition == "return":
        raise ValueError(f"write_self cannot take the {transition!r} transition")
    ctx = context(session, evaluation)
    core.ensure_open(ctx.round)
    refused = refusal(evaluation, transition, ctx.facts)
    if refused is not None:
        raise refused
    checked = SelfInput(scores=dict(values), pledge=pledge, summary=summary)
    return _write(session, evaluation, checked, transition=transition, entered_by=entered_by)


def _write(
    session: Session, evaluation: Evaluation, checked: SelfInput, *, transition: str, entered_by: str | None
) -> Evaluation:
    target = SELF_TRANSITIONS[transition].target
    old_scores = core.read_scores(session, [evaluation.id], [ScoreStage.SELF]).get((evaluation.id, ScoreStage.SELF), {})
    fields = ("self_state", "pledge", "summary", "entered_by", "self_submitted_at")
    before = {**audit.snapshot(evaluation, fields), "scores": _named(old_scores)}

    evaluation.self_state = target
    evaluation.pledge = checked.pledge
    evaluation.summary = checked.summary
    evaluation.entered_by = entered_by
    if target is SelfState.SUBMITTED:
        evaluation.self_submitted_at = clock.now()
    # Always an UPDATE (and so a new version), even when nothing of the row itself changed: the
    # scores changed, and a second person holding the old version must be told.
    flag_modified(evaluation, "self_state")
    flush_or_stale(session)
    core.write_scores(session, [evaluation.id], ScoreStage.SELF, {evaluation.id: checked.scores})
    audit.record(
        session,
        f"evaluation.self_{transition}",
        evaluation,
        before=before,
        after={**audit.snapshot(evaluation, fields), "scores": _named(checked.scores)},
    )
    session.flush()
    return evaluation


def _named(scores: Mapping[FieldKey, Decimal]) -> dict[str, str]:
    return {field_name(key): str(value) for key, value in sorted(scores.items(), key=lambda item: field_name(item[0]))}


def stored_scores(session: Session, evaluation: Evaluation) -> dict[FieldKey, Decimal]:
    """The evaluation's SELF-stage scores (one query)."""
    return dict(core.read_scores(session, [evaluation.id], [ScoreStage.SELF]).get((evaluation.id, ScoreStage.SELF), {}))


def as_form_values(scores: Mapping[FieldKey, Decimal]) -> dict[str, str]:
    """Stored scores as the text a form shows (12.50 → "12.5", 20.00 → "20")."""
    return {field_name(key): _plain(value) for key, value in scores.items()}


def _plain(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text


__all__ = [
    "SELF_STATE_LABELS",
    "FieldGroup",
    "InvalidSelfAssessmentError",
    "SelfAssessmentClosedError",
    "SelfContext",
    "SelfInput",
    "as_form_values",
    "context",
    "field_groups",
    "field_name",
    "refusal",
    "save",
    "state_label",
    "stored_scores",
    "validate",
    "write_self",
]
