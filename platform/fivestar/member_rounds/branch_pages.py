"""The pages of a branch in a member round, built from the services in branch.py: the branch's round
page (its dashboard: every member's self-assessment and scores, the step it can take), the 党群联评
and 支部审评 grids (prefilled, with the earlier stage's scores beside each input, and after a refused
save what the person typed), and the review grid's live level (JSON for its script). Read-only:
nothing here writes; each grid reads a whole branch in a fixed number of queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from flask_babel import LazyString
from sqlalchemy.orm import Session

from fivestar.i18n import _l
from fivestar.member_rounds import core, self_assessment, workflow
from fivestar.member_rounds.branch import (
    BRANCH_STEPS,
    REVIEW_TEXTS,
    BranchContext,
    branch_evaluations,
    cell_name,
    meeting_shortfall,
    parse_review_row,
    posted_version,
    row_input,
)
from fivestar.member_rounds.core import FieldKey, ScoreField
from fivestar.member_rounds.models import Evaluation, EvaluationStatus, ScoreStage, SelfState
from fivestar.member_rounds.workflow import BRANCH_TRANSITIONS
from fivestar.people.models import Member
from fivestar.rules import InputError, MemberResult, RuleSet, level_label

STEP_BUTTONS: dict[str, LazyString] = {
    "start_joint": _l("开始党群联评"),
    "start_review": _l("开始支部审评"),
    "submit_notice": _l("提交公示"),
}


def result_label(rules: RuleSet, level: int | None, rated: bool | None) -> str:
    """What a member's stored result reads as: 五星 … 二星, the rules' name below, or 不予评星."""
    if rated is False:
        return level_label(None)
    if level is None:
        return ""
    return level_label(level, "member", rules.member.below_label)


def fmt(value: Decimal | None) -> str:
    """A score as a person writes it: 18, 18.5 (no trailing zeros, never 1.8E+1)."""
    if value is None:
        return ""
    return format(value.normalize(), "f")


def scheme_total(rules: RuleSet, scores: Mapping[FieldKey, Decimal]) -> Decimal | None:
    """The total of some stage's scores as the rules' scheme adds them (None when nothing is there)."""
    if not scores:
        return None
    try:
        return core.evaluate(rules, scores).scheme_total
    except InputError:  # scores written under these same pinned rules are valid; stay readable anyway
        return None


# --- dashboard -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardRow:
    evaluation: Evaluation
    member: Member
    active: bool
    self_state: SelfState
    self_label: str
    entered_on_behalf: bool
    self_total: Decimal | None
    joint_total: Decimal | None
    final_total: Decimal | None
    result: str
    return_refusal: str | None  # None: the branch may return this self-assessment now
    enter_refusal: str | None  # None: the branch may enter it for the member now


@dataclass(frozen=True)
class StepAction:
    name: str
    label: str
    refusal: str | None


@dataclass(frozen=True)
class Dashboard:
    context: BranchContext
    step_label: str
    rows: list[DashboardRow]
    actions: list[StepAction]
    follow_ups_open: bool
    meeting_shortfall: str | None


def dashboard(session: Session, ctx: BranchContext) -> Dashboard:
    """Everything the branch's round page shows, in two queries beyond the context."""
    rules, facts = ctx.rules, ctx.facts
    evaluations = branch_evaluations(session, ctx.round_branch)
    scores = core.read_scores(
        session, [e.id for e in evaluations], (ScoreStage.SELF, ScoreStage.JOINT, ScoreStage.FINAL)
    )
    rows = []
    for evaluation in evaluations:
        active = evaluation.status is EvaluationStatus.ACTIVE
        state = evaluation.self_state
        rows.append(
            DashboardRow(
                evaluation=evaluation,
                member=evaluation.member,
                active=active,
                self_state=state,
                self_label=self_assessment.state_label(state),
                entered_on_behalf=evaluation.entered_by is not None,
                self_total=scheme_total(rules, scores.get((evaluation.id, ScoreStage.SELF), {})),
                joint_total=scheme_total(rules, scores.get((evaluation.id, ScoreStage.JOINT), {})),
                final_total=evaluation.total,
                result=result_label(rules, evaluation.level, evaluation.rated),
                return_refusal=workflow.self_refusal("return", state, facts) if active else "-",
                enter_refusal=workflow.self_refusal("enter_for_member", state, facts) if active else "-",
            )
        )
    rb = ctx.round_branch
    # The one step the branch can take from where it is (none once on notice); disabled with the
    # workflow's reason while it may not.
    actions = [
        StepAction(name, str(STEP_BUTTONS[name]), workflow.refusal(name, facts))
        for name in BRANCH_STEPS
        if rb.step in BRANCH_TRANSITIONS[name].sources
    ]
    shortfall = None
    if rb.public_present is not None:
        shortfall = meeting_shortfall(rules, facts.members, rb.public_present)
    return Dashboard(
        context=ctx,
        step_label=workflow.step_label(rb.step),
        rows=rows,
        actions=actions,
        follow_ups_open=workflow.follow_up_refusal(facts) is None,
        meeting_shortfall=shortfall,
    )


# --- the grids -------------------------------------------------------------------------------------


@dataclass
class GridRow:
    evaluation: Evaluation
    member: Member
    version: int
    values: dict[str, str]  # what the inputs show, by field name (score and text fields)
    reference: dict[str, str]  # the earlier stage's score beside each input (自评 18 / 联评 18)
    errors: dict[str, str] = field(default_factory=dict)
    stale: bool = False
    result: MemberResult | None = None
    result_error: str | None = None

    def cell(self, name: str) -> str:
        return cell_name(self.evaluation.id, name)


@dataclass
class Grid:
    context: BranchContext
    fields: list[ScoreField]
    bonus_fields: list[ScoreField]
    rows: list[GridRow]
    refusal: str | None  # why it cannot be saved now (shown; the inputs are disabled)
    bonus_cap: Decimal | None = None

    @property
    def error_count(self) -> int:
        return sum(len(row.errors) for row in self.rows)


def _values_of(fields: Sequence[ScoreField], scores: Mapping[FieldKey, Decimal]) -> dict[str, str]:
    return {f.name: fmt(scores.get(f.key)) for f in fields if f.key in scores}


def _grid_rows(
    session: Session,
    ctx: BranchContext,
    fields: Sequence[ScoreField],
    stage: ScoreStage,
    reference: ScoreStage,
) -> tuple[list[GridRow], dict[tuple[int, ScoreStage], dict[FieldKey, Decimal]]]:
    evaluations = branch_evaluations(session, ctx.round_branch, active_only=True)
    stages = {stage, reference, ScoreStage.SELF}
    scores = core.read_scores(session, [e.id for e in evaluations], stages)
    rows = []
    for evaluation in evaluations:
        own = scores.get((evaluation.id, stage), {})
        earlier = scores.get((evaluation.id, reference), {}) or scores.get((evaluation.id, ScoreStage.SELF), {})
        rows.append(
            GridRow(
                evaluation=evaluation,
                member=evaluation.member,
                version=evaluation.version,
                # Prefilled from the earlier stage until this stage has its own values.
                values=_values_of(fields, own or earlier),
                reference=_values_of(fields, earlier),
            )
        )
    return rows, scores


def _keep_posted(
    rows: Sequence[GridRow],
    raw: Mapping[str, object] | None,
    errors: Mapping[tuple[int, str], str],
    stale: Sequence[int],
) -> None:
    """After a refused save the page shows what the person typed, not what is stored."""
    if raw is None:
        return
    for row in rows:
        posted = row_input(raw, row.evaluation.id)
        if posted:
            posted.pop("version", None)
            row.values = posted
            row.version = posted_version(raw, row.evaluation.id) or row.version
        row.errors = {name: message for (eid, name), message in errors.items() if eid == row.evaluation.id}
        row.stale = row.evaluation.id in stale


def joint_grid(
    session: Session,
    ctx: BranchContext,
    raw: Mapping[str, object] | None = None,
    errors: Mapping[tuple[int, str], str] | None = None,
    stale: Sequence[int] = (),
) -> Grid:
    """The 党群联评 grid: a row per active member, prefilled from the self-assessment (or the joint
    scores once saved), with the self score beside each input."""
    fields = core.score_fields(ctx.rules)
    rows, _scores = _grid_rows(session, ctx, fields, ScoreStage.JOINT, ScoreStage.SELF)
    for row in rows:
        row.values["strengths"] = row.evaluation.strengths or ""
        row.values["weaknesses"] = row.evaluation.weaknesses or ""
    _keep_posted(rows, raw, errors or {}, stale)
    return Grid(ctx, fields, [], rows, workflow.edit_refusal("joint", ctx.facts))


def review_grid(
    session: Session,
    ctx: BranchContext,
    raw: Mapping[str, object] | None = None,
    errors: Mapping[tuple[int, str], str] | None = None,
    stale: Sequence[int] = (),
) -> Grid:
    """The 支部审评 grid: final scores (defaulting to the joint scores, shown beside), bonus per
    reason with its basis, 不予评星 with a note, and each member's level by the rule engine."""
    rules = ctx.rules
    fields = core.score_fields(rules)
    bonus = core.bonus_fields(rules)
    rows, scores = _grid_rows(session, ctx, fields, ScoreStage.FINAL, ScoreStage.JOINT)
    for row in rows:
        final = scores.get((row.evaluation.id, ScoreStage.FINAL), {})
        row.values.update(_values_of(bonus, final))
        for name in REVIEW_TEXTS:
            row.values[name] = getattr(row.evaluation, name) or ""
    _keep_posted(rows, raw, errors or {}, stale)
    for row in rows:
        row.result, row.result_error = preview_row(rules, row.values)
    cap = rules.member.bonus.cap if rules.member.bonus is not None else None
    return Grid(ctx, fields, bonus, rows, workflow.edit_refusal("review", ctx.facts), bonus_cap=cap)


def preview_row(rules: RuleSet, row: Mapping[str, object]) -> tuple[MemberResult | None, str | None]:
    """The level the rule engine gives what is typed so far, or the first problem with it."""
    parsed, errors = parse_review_row(rules, row, complete=False)
    if errors:
        return None, next(iter(errors.values()))
    return parsed.result, None


def preview(rules: RuleSet, row: Mapping[str, object]) -> dict[str, object]:
    """The JSON the review page's script shows in a row's level cell while the secretary types."""
    parsed, errors = parse_review_row(rules, row, complete=False)
    result = parsed.result
    if result is None:
        return {"ok": False, "errors": errors}
    return {
        "ok": True,
        "errors": errors,
        "total": fmt(result.total),
        "level": result.level,
        "rated": result.rated,
        "label": result.label if result.rated else level_label(None),
        "bonus_capped": result.bonus_capped,
        "bonus_applied": fmt(result.bonus_applied),
        "reasons": [reason.zh for reason in result.reasons],
    }


__all__ = [
    "STEP_BUTTONS",
    "Dashboard",
    "DashboardRow",
    "Grid",
    "GridRow",
    "StepAction",
    "dashboard",
    "fmt",
    "joint_grid",
    "preview",
    "preview_row",
    "result_label",
    "review_grid",
    "scheme_total",
]
