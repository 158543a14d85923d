"""The committee's pages of the member round (`/t/<slug>/rounds/…`) and the branch's answers to
objections.

- `index`: every round with its progress per step; tenant admins open a round here. Shortcuts to a
  secretary's branch dashboard and a member's self-assessment.
- `detail`: one round — every branch's progress, level distributions, five-star lists; extending a
  deadline and closing the round (tenant admins); returning a branch's results (the committee).
- `objections` / `objection` / `finalise`: the branch answers objections and reports upward.
- `flags`: members low four periods running (for people to decide).
- Excel exports of the results and of the five-star list.

Each view loads its object within the tenant (another district's id: 404), authorizes, calls one
service, commits once. Refusals come back on the page with a 4xx; stale forms answer 409 and keep
what the person typed.
"""

from __future__ import annotations

import tempfile
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, RadioField, SelectField, TextAreaField
from wtforms.validators import Length

from fivestar.accounts.policy import Action, authorize, require
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _, _l
from fivestar.kernel.versioning import expect_version
from fivestar.member_rounds import closing, committee, core, notice, workbooks
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    MemberRound,
    Objection,
    ObjectionState,
    RoundBranch,
    RoundState,
    ScoreStage,
)
from fivestar.member_rounds.opening import open_round
from fivestar.member_rounds.workflow import BRANCH_TRANSITIONS, refusal, step_label
from fivestar.people.models import Member
from fivestar.web import round_pages
from fivestar.web.refusals import refuse, require_on
from fivestar.web.round_pages import DeadlineForm, VersionForm, deadline_form, page, submit, with_row
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

member_round_committee_bp = Blueprint("member_round_committee", __name__, url_prefix="/rounds")

CHUNK = 64 * 1024


def _deadline_choices() -> list[tuple[str, str]]:
    return [(step, closing.deadline_label(step)) for step in closing.DEADLINE_COLUMNS]


# --- forms ---------------------------------------------------------------------------------------------


class OpenRoundForm(FlaskForm):
    period = SelectField(_l("评定期次"), choices=[], validate_choice=False)


class ExtendForm(DeadlineForm):
    deadline_field = "step"
    step = SelectField(_l("环节"), choices=[], validate_choice=False)


class ReturnForm(FlaskForm):
    reason = TextAreaField(_l("退回原因"), validators=[Length(max=2000, message=_l("原因最长 2000 个字"))])
    version = HiddenField()


class AnswerForm(FlaskForm):
    outcome = RadioField(_l("答复结果"), choices=[], validate_choice=False)
    reason = TextAreaField(_l("理由"), validators=[Length(max=2000, message=_l("理由最长 2000 个字"))])
    change = SelectField(_l("是否更改评定结果"), choices=[], validate_choice=False)
    version = HiddenField()
    evaluation_version = HiddenField()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.outcome.choices = [("upheld", _("采纳")), ("dismissed", _("不予采纳"))]
        self.change.choices = [("no", _("不更改")), ("yes", _("更改该党员的最终分数或不予评星"))]


# --- helpers -------------------------------------------------------------------------------------------


def _has_endpoint(endpoint: str) -> bool:
    return endpoint in current_app.view_functions


@member_round_committee_bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "has_endpoint": _has_endpoint,
        "step_label": step_label,
        "round_state_label": committee.round_state_label,
        "objection_state_label": committee.objection_state_label,
        "period_label": notice.period_label,
        "BranchStep": BranchStep,
        "RoundState": RoundState,
        "ObjectionState": ObjectionState,
    }


def _round_or_404(round_id: int) -> MemberRound:
    return round_pages.or_404(core.load_round, round_id)


def _round_branch_or_404(round_branch_id: int) -> RoundBranch:
    return round_pages.or_404(core.load_round_branch, round_branch_id)


# --- the rounds list -------------------------------------------------------------------------------------


@member_round_committee_bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> Any:
    tenant = current_tenant()
    require(current_user, Action.TENANT_VIEW, tenant)
    can_manage = authorize(current_user, Action.ROUND_MANAGE)
    form = OpenRoundForm()
    status = 200
    if request.method == "POST":
        require(current_user, Action.ROUND_MANAGE)
        outcome = submit(
            form,
            lambda: open_round(db(), tenant, period_key=(form.period.data or "").strip() or None),
            done=lambda opened: (
                _(
                    "已开启 %(period)s 党员评定：%(branches)d 个支部、%(members)d 名党员。",
                    period=notice.period_label(opened.round.period_key),
                    branches=opened.branches,
                    members=opened.members,
                ),
                url_for(".detail", round_id=opened.round.id),
            ),
        )
        if not isinstance(outcome, int):
            return outcome
        status = outcome
    if can_manage:
        form.period.choices = committee.openable_periods(db(), tenant)
        if not form.period.data and form.period.choices:
            form.period.data = form.period.choices[0][0]  # the period just past
    return page(
        "rounds/committee/index.html", status, form=form, can_manage=can_manage, steps=committee.STEPS,
        rows=committee.rounds_overview(db(), current_user), can_view=round_pages.can_view_rounds(),
        mine=committee.my_round_branches(db(), current_user),
        has_member=getattr(current_user, "member_id", None) is not None,
    )


# --- one round -------------------------------------------------------------------------------------------


def _render_detail(member_round: MemberRound, status: int = 200, **forms: Any) -> Any:
    session = db()
    rules = core.round_rules(session, member_round)
    progress = committee.branch_progress(session, current_user, member_round)
    distribution = committee.level_distribution(session, current_user, member_round, rules)
    five_star = committee.five_star_rows(session, current_user, member_round)
    by_branch: dict[int, list[committee.FiveStarRow]] = {}
    for row in five_star:
        by_branch.setdefault(row.round_branch_id, []).append(row)
    extend_form = forms.get("extend_form") or ExtendForm(formdata=None)
    deadline_form(extend_form, member_round, _deadline_choices())
    close_form = VersionForm(formdata=None, version=str(member_round.version))
    can_manage = authorize(current_user, Action.ROUND_MANAGE)
    all_finalised = bool(progress) and all(p.round_branch.step is BranchStep.FINALISED for p in progress)
    return page(
        "rounds/committee/detail.html", status, member_round=member_round, rules=rules,
        rules_version=committee.rules_version_number(session, member_round), progress=progress,
        distribution=distribution, five_star=five_star, five_star_by_branch=by_branch, extend_form=extend_form,
        close_form=close_form, can_manage=can_manage and member_round.state is RoundState.OPEN,
        can_close=all_finalised, can_return=authorize(current_user, Action.ROUND_RETURN),
        returnable=BRANCH_TRANSITIONS["return"].sources, tenant_wide=authorize(current_user, Action.ROUND_VIEW),
    )


@member_round_committee_bp.get("/<int:round_id>")
@login_required
@with_row(core.load_round)
def detail(member_round: MemberRound) -> Any:
    round_pages.require_view_rounds()
    return _render_detail(member_round)


round_pages.add_extend_route(
    member_round_committee_bp,
    "/<int:round_id>/extend",
    core.load_round,
    ExtendForm,
    _deadline_choices,
    closing.extend_deadline,
    render=_render_detail, message=_l("请填写新的截止日期，如 2026-04-30"),
)


@member_round_committee_bp.post("/<int:round_id>/close")
@login_required
@with_row(core.load_round)
def close(member_round: MemberRound) -> Any:
    require(current_user, Action.ROUND_MANAGE)
    round_id = member_round.id
    form = VersionForm()

    def close_round() -> Any:
        expect_version(member_round, form.version.data)
        return closing.close_round(db(), member_round)

    outcome = submit(
        form, close_round, done=lambda _closed: (_("本轮评定已结束。"), url_for(".detail", round_id=round_id)),
        refused=lambda: _round_or_404(round_id), on_form=False,
    )
    return _render_detail(member_round, outcome) if isinstance(outcome, int) else outcome


# --- returning a branch's results -----------------------------------------------------------------------


@member_round_committee_bp.route("/branches/<int:round_branch_id>/return", methods=["GET", "POST"])
@login_required
@with_row(core.load_round_branch, Action.ROUND_RETURN)
def return_branch(round_branch: RoundBranch) -> Any:
    round_branch_id = round_branch.id
    member_round = _round_or_404(round_branch.round_id)
    form = ReturnForm()
    status = 200
    if request.method == "GET":
        form.version.data = str(round_branch.version)
    else:
        name = round_branch.branch.name
        outcome = submit(
            form,
            lambda: committee.return_branch(db(), round_branch, reason=form.reason.data, version=form.version.data),
            done=lambda _rb: (
                _("已退回“%(branch)s”的评定结果。", branch=name), url_for(".detail", round_id=member_round.id)
            ),
            refused=lambda: setattr(form.version, "data", str(_round_branch_or_404(round_branch_id).version)),
        )
        if not isinstance(outcome, int):
            return outcome
        status = outcome
    returnable = round_branch.step in BRANCH_TRANSITIONS["return"].sources
    return page("rounds/committee/return.html", status, form=form, round_branch=round_branch,
                member_round=member_round, returnable=returnable)


# --- objections and finalising (the branch) ------------------------------------------------------------


def _objection_page(round_branch: RoundBranch, status: int = 200) -> Any:
    session = db()
    member_round = _round_or_404(round_branch.round_id)
    rows = session.execute(
        select(Objection, Member.name)
        .outerjoin(Evaluation, Objection.evaluation_id == Evaluation.id)
        .outerjoin(Member, Evaluation.member_id == Member.id)
        .where(Objection.round_branch_id == round_branch.id)
        .order_by(Objection.filed_at, Objection.id)
    ).all()
    facts = core.facts_for(session, member_round, round_branch)
    can_answer = authorize(current_user, Action.ROUND_EVALUATE, round_branch) and round_branch.step is BranchStep.NOTICE
    return page(
        "rounds/committee/objections.html", status, round_branch=round_branch, member_round=member_round,
        objections=rows, can_answer=can_answer, finalise_refusal=refusal("finalise", facts),
        finalise_form=VersionForm(formdata=None, version=str(round_branch.version)),
        notice_running=notice.is_running(member_round, round_branch),
    )


@member_round_committee_bp.get("/branches/<int:round_branch_id>/objections")
@login_required
@with_row(core.load_round_branch, Action.ROUND_VIEW)
def objections(round_branch: RoundBranch) -> Any:
    return _objection_page(round_branch)


@member_round_committee_bp.post("/branches/<int:round_branch_id>/finalise")
@login_required
@with_row(core.load_round_branch, Action.ROUND_EVALUATE)
def finalise(round_branch: RoundBranch) -> Any:
    round_branch_id = round_branch.id
    form = VersionForm()
    outcome = submit(
        form,
        lambda: notice.finalise(db(), round_branch, version=form.version.data),
        done=lambda _rb: (
            _("已上报：本支部的评定结果和五星党员名单已报送工委。"),
            url_for(".objections", round_branch_id=round_branch_id),
        ),
        refused=lambda: _round_branch_or_404(round_branch_id), on_form=False,
    )
    return _objection_page(round_branch, outcome) if isinstance(outcome, int) else outcome


def _score_values(evaluation: Evaluation | None) -> dict[str, str]:
    """The member's stored final scores, by form field name (to prefill the change form)."""
    if evaluation is None:
        return {}
    member_round = core.load_round(db(), evaluation.round_id)
    rules = core.round_rules(db(), member_round)
    stored = core.read_scores(db(), [evaluation.id], [ScoreStage.FINAL]).get((evaluation.id, ScoreStage.FINAL), {})
    values = {
        f.name: format(stored[f.key].normalize(), "f")
        for f in [*core.score_fields(rules), *core.bonus_fields(rules)]
        if f.key in stored
    }
    values.update(
        {
            "disqualifier": evaluation.disqualifier or "",
            "disqualifier_note": evaluation.disqualifier_note or "",
            "bonus_reason": evaluation.bonus_reason or "",
            "bonus_basis": evaluation.bonus_basis or "",
        }
    )
    return values


@member_round_committee_bp.route("/objections/<int:objection_id>", methods=["GET", "POST"])
@login_required
def objection(objection_id: int) -> Any:
    session = db()
    try:
        found = notice.load_objection(session, objection_id)
    except NotFoundError:
        abort(404)
    round_branch = _round_branch_or_404(found.round_branch_id)
    require_on(Action.ROUND_EVALUATE, round_branch)
    member_round = _round_or_404(round_branch.round_id)
    rules = core.round_rules(session, member_round)
    evaluation = core.load_evaluation(session, found.evaluation_id) if found.evaluation_id else None
    form = AnswerForm()
    values = _score_values(evaluation)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "GET":
        form.version.data = str(found.version)
        form.evaluation_version.data = str(evaluation.version) if evaluation else ""
        form.outcome.data = "dismissed"
        form.change.data = "no"
    elif form.validate_on_submit():
        values = {name: str(value) for name, value in request.form.items()}
        upheld = form.outcome.data == "upheld"
        change = None
        if upheld and evaluation is not None and form.change.data == "yes":
            change, errors = _parse_change(rules, evaluation, form)
        if errors:
            status = 400
            flash(_("请改正标出的错误后再保存。"), "error")
        elif form.outcome.data not in ("upheld", "dismissed"):
            form.outcome.errors = [_("请选择采纳或不予采纳")]
            status = 400
        else:
            try:
                notice.answer_objection(
                    session, round_branch, found, upheld=upheld, reason=form.reason.data,
                    version=form.version.data, change=change,
                )
                session.commit()
            except ServiceError as error:
                status = refuse(error, form)
                found = notice.load_objection(session, objection_id)
                round_branch = _round_branch_or_404(found.round_branch_id)
                if evaluation is not None:
                    evaluation = core.load_evaluation(session, evaluation.id)
            else:
                flash(_("已答复异议。"), "success")
                return redirect(url_for(".objections", round_branch_id=round_branch.id))
    else:
        status = 400
    return (
        render_template(
            "rounds/committee/objection.html",
            objection=found,
            round_branch=round_branch,
            member_round=member_round,
            evaluation=evaluation,
            rules=rules,
            fields=core.score_fields(rules),
            bonus_fields=core.bonus_fields(rules),
            values=values,
            errors=errors,
            form=form,
            can_answer=found.state is ObjectionState.OPEN and round_branch.step is BranchStep.NOTICE,
            # What this person typed when someone else answered first: shown, never silently lost.
            unsaved=form.reason.data if request.method == "POST" and found.state is not ObjectionState.OPEN else None,
            current_level=notice.member_level_text(
                evaluation.level, evaluation.rated, evaluation.disqualifier, rules.member.below_label
            )
            if evaluation
            else "",
        ),
        status,
    )


def _parse_change(
    rules: Any, evaluation: Evaluation, form: AnswerForm
) -> tuple[notice.ResultChange | None, dict[str, str]]:
    raw = request.form
    disqualifier = (raw.get("disqualifier") or "").strip() or None
    errors: dict[str, str] = {}
    if disqualifier is not None and rules.member.disqualifier(disqualifier) is None:
        errors["disqualifier"] = _("请从列表中选择不予评星的原因")
        disqualifier = None
    scores, score_errors = core.parse_scores(core.score_fields(rules), raw, required=disqualifier is None)
    bonus, bonus_errors = core.parse_scores(core.bonus_fields(rules), raw, required=False)
    errors.update(score_errors)
    errors.update(bonus_errors)
    bonus = {key: value for key, value in bonus.items() if value > 0}
    if bonus and not (raw.get("bonus_reason") or "").strip():
        errors["bonus_reason"] = _("有加分时须写明加分理由")
    if errors:
        return None, errors
    return (
        notice.ResultChange(
            evaluation=evaluation,
            version=form.evaluation_version.data,
            scores={**scores, **bonus},
            disqualifier=disqualifier,
            disqualifier_note=raw.get("disqualifier_note"),
            bonus_reason=(raw.get("bonus_reason") or "").strip() or None,
            bonus_basis=(raw.get("bonus_basis") or "").strip() or None,
        ),
        {},
    )


# --- flags ---------------------------------------------------------------------------------------------------


@member_round_committee_bp.get("/flags")
@login_required
def flags() -> Any:
    round_pages.require_view_rounds()
    tenant = current_tenant()
    rules = committee.current_rule_set(db(), tenant)
    threshold = committee.flag_threshold(rules)
    below = rules.member.below_label if rules is not None else "无星"
    rows = committee.flagged_members(db(), current_user, threshold, below)
    return render_template(
        "rounds/committee/flags.html",
        rows=rows,
        threshold_label=notice.member_level_text(threshold, True, None, below),
        run=committee.FLAG_RUN,
    )


# --- exports -------------------------------------------------------------------------------------------------


def _xlsx(write: Any, filename: str) -> Any:
    """Write a workbook into a temporary file and stream that file to the browser in chunks: the
    workbook is never held in memory, and the file is closed (and so removed) once sent."""
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the generator below
    try:
        write(handle)
        size = handle.tell()
        handle.seek(0)
    except Exception:
        handle.close()
        raise

    def chunks() -> Iterator[bytes]:
        try:
            while block := handle.read(CHUNK):
                yield block
        finally:
            handle.close()

    response = Response(chunks(), mimetype=workbooks.XLSX_MIMETYPE, direct_passthrough=True)
    response.headers["Content-Length"] = str(size)
    # An ASCII name for old clients beside the UTF-8 one (RFC 6266), as send_file does it.
    simple = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii").strip("-_ ")
    if not simple or simple.startswith("."):
        simple = "export.xlsx"
    response.headers.set(
        "Content-Disposition", "attachment", filename=simple, **{"filename*": f"UTF-8''{quote(filename, safe='')}"}
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@member_round_committee_bp.get("/<int:round_id>/results.xlsx")
@login_required
@with_row(core.load_round)
def export_round(member_round: MemberRound) -> Any:
    if not authorize(current_user, Action.ROUND_VIEW):  # the whole tenant: tenant-wide readers only
        abort(403)
    tenant = current_tenant()
    stamp = workbooks.generated_stamp(tenant)
    name = workbooks.download_filename(_("党员星级评定结果"), member_round.period_key, stamp)
    return _xlsx(lambda out: workbooks.write_results(db(), out, tenant, member_round), f"{name}.xlsx")


@member_round_committee_bp.get("/<int:round_id>/five-star.xlsx")
@login_required
@with_row(core.load_round)
def export_five_star(member_round: MemberRound) -> Any:
    round_pages.require_view_rounds()
    tenant = current_tenant()
    name = workbooks.download_filename(_("五星党员名单"), member_round.period_key, workbooks.generated_stamp(tenant))
    return _xlsx(
        lambda out: workbooks.write_five_star(db(), out, tenant, current_user, member_round), f"{name}.xlsx"
    )


@member_round_committee_bp.get("/branches/<int:round_branch_id>/results.xlsx")
@login_required
@with_row(core.load_round_branch, Action.ROUND_VIEW)
def export_branch(round_branch: RoundBranch) -> Any:
    member_round = _round_or_404(round_branch.round_id)
    tenant = current_tenant()
    name = workbooks.download_filename(
        round_branch.branch.name, _("党员星级评定结果"), member_round.period_key, workbooks.generated_stamp(tenant)
    )
    return _xlsx(
        lambda out: workbooks.write_results(db(), out, tenant, member_round, round_branch=round_branch),
        f"{name}.xlsx",
    )


__all__ = ["member_round_committee_bp"]
