"""What a branch does in a member round: returning and entering self-assessments, the 党群联评 meeting
and grid, the 支部审评 grid with bonus and 不予评星, and its step transitions. The pages built on them
(the branch's dashboard, the grids as shown) are in branch_pages.py.

Every decision about whether something may happen now goes through `workflow` (transitions,
`edit_refusal` for the grids, `self_refusal` for self-assessments); every number a person types
goes through `core.parse_scores`, the one validator of scores. The grids read and write a whole
branch with a fixed number of statements whatever its size: one query for the evaluations and their
members, one for all score rows, and on saving two for the score rows (`core.write_scores`) and one
executemany UPDATE for the evaluations, guarded by each row's version (optimistic locking).

Services flush, never commit, and refuse with `ServiceError` (a `GridError` carries an error per
cell, a `StaleRowsError` conflict names the members someone else saved first).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session, contains_eager

from fivestar import audit
from fivestar.errors import ConflictError, NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.kernel import rounds
from fivestar.kernel.versioning import expect_version, flush_or_stale
from fivestar.member_rounds import core, scoring, self_assessment, workflow
from fivestar.member_rounds.core import FieldKey, ScoreField
from fivestar.member_rounds.models import (
    Evaluation,
    EvaluationStatus,
    MemberRound,
    RoundBranch,
    ScoreStage,
)
from fivestar.member_rounds.workflow import RoundFacts
from fivestar.people.models import Member
from fivestar.rules import InputError, MemberResult, RuleSet, min_member_public_representatives
from fivestar.rules.schedule import public_notice_end
from fivestar.tenancy import require_tenant_id
from fivestar.timekeeping import clock

# The transitions a branch takes from its dashboard (finalising belongs to the notice pages).
BRANCH_STEPS = ("start_joint", "start_review", "submit_notice")
TEXT_MAX = 2000  # strengths, weaknesses, reasons, notes: a paragraph, not a document

class GridError(ServiceError):
    """Some cells were wrong; nothing was saved. `errors` maps (evaluation id, field name) → message."""

    def __init__(self, errors: Mapping[tuple[int, str], str]) -> None:
        super().__init__(_("有 %(n)d 处填写有误，均未保存；请按提示修改后再保存。", n=len(errors)))
        self.errors = dict(errors)


class FormError(ServiceError):
    """A one-member form had errors (by field name); nothing was saved."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(_("填写有误，均未保存；请按提示修改后再保存。"))
        self.errors = dict(errors)


class StaleRowsError(ConflictError):
    """Someone saved some of these members after the page was opened: the whole save is refused."""

    def __init__(self, evaluation_ids: Sequence[int], names: Sequence[str]) -> None:
        super().__init__(
            _(
                "以下党员的评定在您打开本页后已被他人保存：%(names)s。本次未保存任何内容；"
                "您填写的内容仍保留在页面上，请核对后再保存。",
                names="、".join(names),
            )
        )
        self.evaluation_ids = list(evaluation_ids)
        self.names = list(names)


# --- context ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BranchContext:
    """A branch of a round with what every decision about it needs (four queries, rules cached)."""

    member_round: MemberRound
    round_branch: RoundBranch
    rules: RuleSet
    facts: RoundFacts

    @property
    def timezone(self) -> str:
        return self.facts.timezone

    @property
    def today(self) -> dt.date:
        return clock.today_in(self.timezone)


def context_for(session: Session, round_branch: RoundBranch) -> BranchContext:
    member_round = core.load_round(session, round_branch.round_id)
    rules = core.round_rules(session, member_round)
    return BranchContext(member_round, round_branch, rules, core.facts_for(session, member_round, round_branch))


def branch_evaluations(session: Session, round_branch: RoundBranch, *, active_only: bool = False) -> list[Evaluation]:
    """The branch's evaluations with their members, in roll order (one query)."""
    query = (
        select(Evaluation)
        .join(Member, Evaluation.member_id == Member.id)
        .where(Evaluation.round_branch_id == round_branch.id)
        .options(contains_eager(Evaluation.member))
        .order_by(Member.member_no, Member.id)
    )
    if active_only:
        query = query.where(Evaluation.status == EvaluationStatus.ACTIVE)
    return list(session.scalars(query))


def evaluation_in_branch(session: Session, round_branch: RoundBranch, evaluation_id: int) -> Evaluation:
    """One evaluation of this branch (with its member and branch), else not found."""
    evaluation = core.load_evaluation(session, evaluation_id)
    if evaluation.round_branch_id != round_branch.id:
        raise NotFoundError(_("评定记录不存在"))
    return evaluation


def _flush(session: Session) -> None:
    """Flush, turning a lost optimistic-locking race (someone saved in between) into a 409."""
    flush_or_stale(session)


def _text(raw: Mapping[str, object], name: str) -> str:
    return str(raw.get(name, "") or "").strip()


def _check_length(errors: dict[str, str], name: str, value: str, label: str) -> None:
    if len(value) > TEXT_MAX:
        errors[name] = _("%(label)s不能超过 %(n)d 字", label=label, n=TEXT_MAX)


# --- transitions -----------------------------------------------------------------------------------


def _step_snapshot(rb: RoundBranch) -> dict[str, object]:
    return audit.snapshot(rb, ["step", "notice_started_at", "notice_ends_at"])


def take_step(session: Session, ctx: BranchContext, name: str) -> RoundBranch:
    """Move the branch on by one of its own transitions, if the workflow allows it now."""
    if name not in BRANCH_STEPS:
        raise NotFoundError(_("没有这项操作"))
    core.ensure_open(ctx.member_round)
    rb = ctx.round_branch
    rounds.apply(
        session, workflow.BRANCH_WORKFLOW, name, rb, refusal=workflow.refusal(name, ctx.facts),
        changes=(lambda: _start_notice(ctx)) if name == "submit_notice" else None,
        before=_step_snapshot(rb), after=lambda: _step_snapshot(rb),
    )
    return rb


def _start_notice(ctx: BranchContext) -> None:
    """公示 starts today and lasts the rules' number of (working) days; the link is unguessable.

    A branch returned by the committee and submitted again keeps its link (people may have it) but
    gets a new period."""
    rb = ctx.round_branch
    if not rb.notice_token:
        rb.notice_token = secrets.token_urlsafe(24)
    rb.notice_started_at = clock.now()
    last_day = public_notice_end(ctx.rules, ctx.today, is_working_day=clock.is_working_day)
    rb.notice_ends_at = clock.end_of_day(last_day, ctx.timezone)


# --- self-assessments: return, enter on behalf -----------------------------------------------------


def _self_snapshot(evaluation: Evaluation) -> dict[str, object]:
    return audit.snapshot(evaluation, ["self_state", "return_reason", "entered_by", "self_submitted_at"])


def return_self(
    session: Session, ctx: BranchContext, evaluation: Evaluation, reason: str, version: object
) -> Evaluation:
    """Send a submitted self-assessment back to the member, with the reason they will read."""
    core.ensure_open(ctx.member_round)
    refusal = workflow.self_refusal("return", evaluation.self_state, ctx.facts)
    if refusal is not None:
        raise ConflictError(refusal)
    expect_version(evaluation, version)
    reason = reason.strip()
    if not reason:
        raise ServiceError(_("请填写退回原因，党员会看到它"), field="reason")
    if len(reason) > TEXT_MAX:
        raise ServiceError(_("%(label)s不能超过 %(n)d 字", label=_("退回原因"), n=TEXT_MAX), field="reason")
    before = _self_snapshot(evaluation)
    evaluation.self_state = workflow.SELF_TRANSITIONS["return"].target
    evaluation.return_reason = reason
    _flush(session)
    audit.record(session, "evaluation.self_return", evaluation, before=before, after=_self_snapshot(evaluation),
                 reason=reason)
    return evaluation


def enter_self(
    session: Session, ctx: BranchContext, evaluation: Evaluation, raw: Mapping[str, object], version: object
) -> Evaluation:
    """Enter a member's self-assessment for them (a member without an account, or on paper): the
    scores, 承诺践诺情况 and summary, submitted at once and recorded as entered by the acting person.

    Validation and writing are the member side's (`self_assessment.validate` / `write_self`, which
    use `core.parse_scores`), so a self-assessment means the same whoever typed it."""
    core.ensure_open(ctx.member_round)
    refusal = workflow.self_refusal("enter_for_member", evaluation.self_state, ctx.facts)
    if refusal is not None:
        raise ConflictError(refusal)
    expect_version(evaluation, version)
    checked = self_assessment.validate(
        ctx.rules, raw, _text(raw, "pledge"), _text(raw, "summary"), submit=True
    )
    return self_assessment.write_self(
        session, evaluation, checked.scores, checked.pledge, checked.summary,
        transition="enter_for_member", entered_by=audit.current_actor().name,
    )


def _scores_doc(fields: Sequence[ScoreField], values: Mapping[FieldKey, Decimal]) -> dict[str, str]:
    """Scores for an audit event, by form field name, in the rules' order."""
    return {f.name: str(values[f.key]) for f in fields if f.key in values}


# --- 党群联评 meeting ---------------------------------------------------------------------------------


def public_min_share(rules: RuleSet) -> Decimal | None:
    """The rules' minimum share of public representatives at the 党群联评 meeting, if they set one."""
    meeting = rules.member.meeting
    return meeting.public_representatives_min_share if meeting is not None else None


def minimum_public(rules: RuleSet, members: int) -> int | None:
    """Fewest public representatives the rules ask for at a meeting of a branch of `members`
    (the rule engine rounds up: "不少于 20 %" of 13 is 3)."""
    return min_member_public_representatives(rules, members)


def meeting_shortfall(rules: RuleSet, members: int, public_present: int) -> str | None:
    """The warning shown when fewer public representatives came than the rules ask for, else None."""
    share = public_min_share(rules)
    minimum = minimum_public(rules, members)
    if share is None or minimum is None or minimum == 0 or public_present >= minimum:
        return None
    percent = format((share * 100).normalize(), "f")
    return _(
        "群众代表 %(public)d 人，少于党员人数 %(members)d 的 %(percent)s%%（至少 %(min)d 人）",
        public=public_present, members=members, percent=percent, min=minimum,
    )


def _meeting_snapshot(rb: RoundBranch) -> dict[str, object]:
    return audit.snapshot(rb, ["meeting_date", "members_present", "public_present", "meeting_note"])


def _int_field(errors: dict[str, str], raw: Mapping[str, object], name: str, label: str) -> int | None:
    text = _text(raw, name)
    if not text:
        errors[name] = _("请填写%(label)s", label=label)
        return None
    try:
        number = int(text)
    except ValueError:
        errors[name] = _("%(label)s须为整数", label=label)
        return None
    if number < 0:
        errors[name] = _("%(label)s不能为负数", label=label)
        return None
    return number


def save_meeting(session: Session, ctx: BranchContext, raw: Mapping[str, object], version: object) -> str | None:
    """Record the 党群联评 meeting: its date, members and public representatives present, a note.

    A shortfall of public representatives does not block the record — meetings happen as they
    happen — but it is shown, and it must be explained in the note (which is kept and audited).
    Returns the shortfall warning, if any."""
    core.ensure_open(ctx.member_round)
    refusal = workflow.edit_refusal("joint", ctx.facts)
    if refusal is not None:
        raise ConflictError(refusal)
    rb = ctx.round_branch
    expect_version(rb, version)
    errors: dict[str, str] = {}
    meeting_date = None
    text = _text(raw, "meeting_date")
    first_local = _local_date(ctx.member_round.opened_at, ctx.timezone)
    if not text:
        errors["meeting_date"] = _("请填写会议日期")
    else:
        try:
            meeting_date = dt.date.fromisoformat(text)
        except ValueError:
            errors["meeting_date"] = _("会议日期格式不对，应如 2026-04-10")
        else:
            if meeting_date > ctx.today:
                errors["meeting_date"] = _("会议日期不能晚于今天")
            elif meeting_date < first_local:
                errors["meeting_date"] = _(
                    "会议日期不能早于本轮评定开启的日期 %(day)s", day=first_local.isoformat()
                )
    members_present = _int_field(errors, raw, "members_present", _("到会党员人数"))
    public_present = _int_field(errors, raw, "public_present", _("到会群众代表人数"))
    if members_present is not None and members_present > ctx.facts.members:
        errors["members_present"] = _(
            "到会党员人数不能多于本支部参评党员 %(n)d 人", n=ctx.facts.members
        )
    if public_present is not None and public_present > 10_000:
        errors["public_present"] = _("到会群众代表人数过大，请核对")
    note = _text(raw, "meeting_note")
    _check_length(errors, "meeting_note", note, _("说明"))
    shortfall = None
    if public_present is not None:
        shortfall = meeting_shortfall(ctx.rules, ctx.facts.members, public_present)
        if shortfall and not note:
            errors["meeting_note"] = _("%(warning)s；请在说明中写明原因", warning=shortfall)
    if errors:
        raise FormError(errors)
    before = _meeting_snapshot(rb)
    rb.meeting_date = meeting_date
    rb.members_present = members_present
    rb.public_present = public_present
    rb.meeting_note = note or None
    _flush(session)
    audit.record(session, "round_branch.meeting", rb, before=before, after=_meeting_snapshot(rb),
                 reason=shortfall)
    return shortfall


def _local_date(moment: dt.datetime, timezone: str) -> dt.date:
    return moment.astimezone(ZoneInfo(timezone)).date()


# --- the grids (built for the page in branch_pages.py) --------------------------------------------


def cell_name(evaluation_id: int, name: str) -> str:
    """The form field name of one cell: `r<evaluation id>.<field name>` (field names have dots too)."""
    return f"r{evaluation_id}.{name}"


def row_input(raw: Mapping[str, object], evaluation_id: int) -> dict[str, str]:
    """One row's posted values, by plain field name."""
    prefix = f"r{evaluation_id}."
    return {key[len(prefix):]: str(value) for key, value in raw.items() if key.startswith(prefix)}


def posted_version(raw: Mapping[str, object], evaluation_id: int) -> int | None:
    try:
        return int(str(raw.get(cell_name(evaluation_id, "version"), "")))
    except ValueError:
        return None


def _check_versions(evaluations: Sequence[Evaluation], raw: Mapping[str, object]) -> None:
    """Optimistic locking per row: every row must carry the version it was opened with."""
    stale = [e for e in evaluations if posted_version(raw, e.id) != e.version]
    if stale:
        raise StaleRowsError([e.id for e in stale], [e.member.name for e in stale])


def _update_evaluations(session: Session, rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> None:
    """One executemany UPDATE of the given columns, each row guarded by its version (and tenant)."""
    if not rows:
        return
    table = cast(Table, Evaluation.__table__)
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.version == bindparam("b_version"),
            table.c.tenant_id == require_tenant_id(),
        )
        .values({name: bindparam(f"b_{name}") for name in columns} | {"version": table.c.version + 1})
    )
    payload = [{f"b_{key}": value for key, value in row.items()} for row in rows]
    result = session.connection().execute(statement, payload)
    if result.rowcount != len(rows):
        # Someone saved between our read and our write (the read already compared versions).
        raise ConflictError(
            _("此内容已被他人修改（您打开后有新的保存）。您填写的内容仍保留，请核对后再保存。")
        )


# --- 党群联评 grid ------------------------------------------------------------------------------------


def save_joint(session: Session, ctx: BranchContext, raw: Mapping[str, object]) -> int:
    """Save the whole 党群联评 grid at once: every cell valid, or nothing saved. Returns the rows saved."""
    core.ensure_open(ctx.member_round)
    refusal = workflow.edit_refusal("joint", ctx.facts)
    if refusal is not None:
        raise ConflictError(refusal)
    fields = core.score_fields(ctx.rules)
    evaluations = branch_evaluations(session, ctx.round_branch, active_only=True)
    _check_versions(evaluations, raw)
    errors: dict[tuple[int, str], str] = {}
    values: dict[int, dict[FieldKey, Decimal]] = {}
    texts: dict[int, tuple[str, str]] = {}
    for evaluation in evaluations:
        row = row_input(raw, evaluation.id)
        parsed, row_errors = core.parse_scores(fields, row, required=True)
        strengths, weaknesses = _text(row, "strengths"), _text(row, "weaknesses")
        _check_length(row_errors, "strengths", strengths, _("优点"))
        _check_length(row_errors, "weaknesses", weaknesses, _("不足"))
        errors.update({(evaluation.id, name): message for name, message in row_errors.items()})
        values[evaluation.id] = parsed
        texts[evaluation.id] = (strengths, weaknesses)
    if errors:
        raise GridError(errors)
    ids = [e.id for e in evaluations]
    previous = core.read_scores(session, ids, [ScoreStage.JOINT])
    core.write_scores(session, ids, ScoreStage.JOINT, values)
    _update_evaluations(
        session,
        [
            {"id": e.id, "version": e.version, "strengths": texts[e.id][0] or None,
             "weaknesses": texts[e.id][1] or None}
            for e in evaluations
        ],
        ["strengths", "weaknesses"],
    )
    changes = []
    for e in evaluations:
        before = {"scores": _scores_doc(fields, previous.get((e.id, ScoreStage.JOINT), {})),
                  "strengths": e.strengths, "weaknesses": e.weaknesses}
        after = {"scores": _scores_doc(fields, values[e.id]), "strengths": texts[e.id][0] or None,
                 "weaknesses": texts[e.id][1] or None}
        if before != after:
            changes.append((e.id, before, after))
    audit.record_many(session, "evaluation.joint", Evaluation.__tablename__, changes)
    for e in evaluations:
        session.expire(e)
    return len(evaluations)


# --- 支部审评 grid ------------------------------------------------------------------------------------


REVIEW_TEXTS = ("bonus_reason", "bonus_basis", "disqualifier", "disqualifier_note")


@dataclass(frozen=True)
class ParsedReview:
    scores: dict[FieldKey, Decimal]
    bonus: dict[FieldKey, Decimal]
    bonus_reason: str | None
    bonus_basis: str | None
    disqualifier: str | None
    disqualifier_note: str | None
    result: MemberResult | None


def parse_review_row(
    rules: RuleSet, row: Mapping[str, object], *, complete: bool
) -> tuple[ParsedReview, dict[str, str]]:
    """One member's review values and their errors by field name.

    `complete`: the row is being saved (scores required unless 不予评星; a bonus needs its reason and
    the commendation it rests on; 不予评星 needs a note). A preview computes what is typed so far."""
    fields = core.score_fields(rules)
    disqualifier = _text(row, "disqualifier") or None
    errors: dict[str, str] = {}
    if disqualifier is not None and rules.member.disqualifier(disqualifier) is None:
        errors["disqualifier"] = _("请从列表中选择不予评星的原因")
        disqualifier = None
    scores, score_errors = core.parse_scores(fields, row, required=complete and disqualifier is None)
    errors.update(score_errors)
    bonus_values, bonus_errors = core.parse_scores(core.bonus_fields(rules), row, required=False)
    errors.update(bonus_errors)
    bonus_values = {key: value for key, value in bonus_values.items() if value > 0}
    reason, basis = _text(row, "bonus_reason"), _text(row, "bonus_basis")
    note = _text(row, "disqualifier_note")
    if complete:
        if bonus_values and not reason:
            errors["bonus_reason"] = _("有加分时须写明加分理由")
        if bonus_values and not basis:
            errors["bonus_basis"] = _("有加分时须写明所依据的表彰（名称、授予单位、时间）")
        if disqualifier is not None and not note:
            errors["disqualifier_note"] = _("不予评星须写明具体情况")
        _check_length(errors, "bonus_reason", reason, _("加分理由"))
        _check_length(errors, "bonus_basis", basis, _("加分依据"))
        _check_length(errors, "disqualifier_note", note, _("不予评星说明"))
    result = None
    if not score_errors and not bonus_errors:
        try:
            result = core.evaluate(rules, {**scores, **bonus_values}, disqualifier)
        except InputError as error:  # pragma: no cover - parse_scores checked the same bounds
            errors["total"] = str(error)
    parsed = ParsedReview(
        scores=scores,
        bonus=bonus_values,
        bonus_reason=(reason or None) if bonus_values else None,
        bonus_basis=(basis or None) if bonus_values else None,
        disqualifier=disqualifier,
        disqualifier_note=(note or None) if disqualifier else None,
        result=result,
    )
    return parsed, errors


def _review_doc(fields: Sequence[ScoreField], bonus: Sequence[ScoreField], scores: Mapping[FieldKey, Decimal],
                evaluation_values: Mapping[str, object]) -> dict[str, object]:
    return {
        "scores": _scores_doc([*fields, *bonus], scores),
        **{name: evaluation_values.get(name) for name in (*REVIEW_TEXTS, "total", "level", "rated")},
    }


def save_review(session: Session, ctx: BranchContext, raw: Mapping[str, object]) -> int:
    """Save the whole 支部审评 grid: final scores, bonus and 不予评星 for every member, and each
    member's total and level. Every cell valid and every row current, or nothing saved."""
    core.ensure_open(ctx.member_round)
    refusal = workflow.edit_refusal("review", ctx.facts)
    if refusal is not None:
        raise ConflictError(refusal)
    rules = ctx.rules
    fields, bonus = core.score_fields(rules), core.bonus_fields(rules)
    evaluations = branch_evaluations(session, ctx.round_branch, active_only=True)
    _check_versions(evaluations, raw)
    errors: dict[tuple[int, str], str] = {}
    parsed: dict[int, ParsedReview] = {}
    for evaluation in evaluations:
        row, row_errors = parse_review_row(rules, row_input(raw, evaluation.id), complete=True)
        errors.update({(evaluation.id, name): message for name, message in row_errors.items()})
        parsed[evaluation.id] = row
    if errors:
        raise GridError(errors)
    ids = [e.id for e in evaluations]
    previous = core.read_scores(session, ids, [ScoreStage.FINAL])
    core.write_scores(session, ids, ScoreStage.FINAL, {eid: {**p.scores, **p.bonus} for eid, p in parsed.items()})
    updates = []
    changes = []
    for e in evaluations:
        p = parsed[e.id]
        result = p.result
        assert result is not None  # no errors: every row was evaluated
        new = {
            "bonus_reason": p.bonus_reason,
            "bonus_basis": p.bonus_basis,
            "disqualifier": p.disqualifier,
            "disqualifier_note": p.disqualifier_note,
            "total": result.total,
            "level": result.level,
            "rated": result.rated,
        }
        updates.append({"id": e.id, "version": e.version, **{name: new[name] for name in REVIEW_TEXTS}})
        before = _review_doc(fields, bonus, previous.get((e.id, ScoreStage.FINAL), {}),
                             {name: getattr(e, name) for name in new})
        after = _review_doc(fields, bonus, {**p.scores, **p.bonus}, new)
        if before != after:
            changes.append((e.id, before, after))
    _update_evaluations(session, updates, REVIEW_TEXTS)
    # The stored total, level and rated come from the set-based scorer, the same code that scores
    # whole rounds (it must agree with core.evaluate, which gave `after` above; a test holds it).
    scoring.score_round(session, ctx.member_round, round_branch_ids=[ctx.round_branch.id])
    audit.record_many(session, "evaluation.review", Evaluation.__tablename__, changes)
    for e in evaluations:
        session.expire(e)
    return len(evaluations)


__all__ = [
    "BRANCH_STEPS",
    "BranchContext",
    "FormError",
    "GridError",
    "StaleRowsError",
    "context_for",
    "enter_self",
    "meeting_shortfall",
    "return_self",
    "save_joint",
    "save_meeting",
    "save_review",
    "take_step",
]
