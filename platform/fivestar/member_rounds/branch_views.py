"""The branch's pages of a member round (`/t/<slug>/rounds/branch/…`): its dashboard, returning and
entering self-assessments, the 党群联评 meeting and grid, the 支部审评 grid and its live level preview,
the step transitions, and the follow-ups after the results.

Each view loads the round branch (or evaluation) within the current tenant (another tenant's id is
not found: 404), requires `ROUND_EVALUATE` on it (another branch's secretary: 404), calls one
service, commits once and redirects. A refusal comes back on the page with the person's input kept
and a 4xx: 400 for a wrong cell (each error beside its cell), 409 for a step the workflow refuses or
rows someone else saved first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from fivestar.accounts.policy import Action, authorize, require
from fivestar.accounts.principal import Principal
from fivestar.enums import Role
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.member_rounds import branch, branch_pages, core, followups, workflow
from fivestar.member_rounds.models import Evaluation, MemberRound, RoundBranch, RoundState, ScoreStage
from fivestar.orgs.models import Organisation
from fivestar.rules import level_label
from fivestar.web.session import db

member_round_branch_bp = Blueprint("member_round_branch", __name__, url_prefix="/rounds/branch")

BRANCH_ROLES = (Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE)


# --- loading ---------------------------------------------------------------------------------------


def _round_branch(round_branch_id: int) -> RoundBranch:
    """The round branch, if this person runs it; 404 otherwise (also for another tenant's id)."""
    try:
        round_branch = core.load_round_branch(db(), round_branch_id)
    except NotFoundError:
        abort(404)
    require(current_user, Action.ROUND_EVALUATE, round_branch)
    return round_branch


def _evaluation(evaluation_id: int) -> tuple[Evaluation, RoundBranch]:
    try:
        evaluation = core.load_evaluation(db(), evaluation_id)
    except NotFoundError:
        abort(404)
    round_branch = _round_branch(evaluation.round_branch_id)
    return evaluation, round_branch


def _fresh(round_branch_id: int) -> branch.BranchContext:
    """After a refused change (rolled back): everything loaded again, as stored."""
    db().rollback()
    return branch.context_for(db(), _round_branch(round_branch_id))


def _link(endpoint: str, **values: Any) -> str | None:
    """A link to another part's page, if that part is installed (parts land independently)."""
    if endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **values)


def _links(ctx: branch.BranchContext) -> dict[str, str | None]:
    rb = ctx.round_branch
    return {
        "rounds": _link("tenant.member_round_committee.index"),
        "notice": _link("tenant.member_round_notice.public", token=rb.notice_token) if rb.notice_token else None,
        "notice_manage": _link("tenant.member_round_committee.objections", round_branch_id=rb.id),
        "export": _link("tenant.member_round_committee.export_branch", round_branch_id=rb.id),
        "honour": _link("tenant.member_round_honour.branch", round_branch_id=rb.id),
    }


def _render(template: str, ctx: branch.BranchContext, status: int = 200, **values: Any) -> Any:
    """A page of this blueprint, with the helpers its templates use."""
    rules = ctx.rules

    def level_name(level: int | None) -> str:
        return level_label(level, "member", rules.member.below_label)

    values.setdefault("links", _links(ctx))
    return render_template(template, ctx=ctx, fmt=branch_pages.fmt, level_name=level_name, **values), status


# --- the home page's "本支部评定" -------------------------------------------------------------------


def branch_round_links() -> list[dict[str, Any]]:
    """The open rounds of the branches this person runs, for the home page (one query).

    Only branch roles (书记, 支委) count here: an administrator may open any branch's page, but
    their home page should not list every branch of the district.
    """
    principal = current_user
    if not isinstance(principal, Principal) or principal.is_operator or not principal.is_authenticated:
        return []
    ids = sorted({g.organisation_id for g in principal.grants if g.role in BRANCH_ROLES and g.organisation_id})
    if not ids:
        return []
    rows = db().execute(
        select(RoundBranch, MemberRound.period_key, Organisation)
        .join(MemberRound, RoundBranch.round_id == MemberRound.id)
        .join(Organisation, RoundBranch.branch_id == Organisation.id)
        .where(RoundBranch.branch_id.in_(ids), MemberRound.state == RoundState.OPEN)
        .order_by(MemberRound.period_start.desc(), Organisation.path)
    )
    links = []
    for round_branch, period_key, organisation in rows:
        if not authorize(principal, Action.ROUND_EVALUATE, organisation):
            continue
        links.append(
            {
                "url": url_for("tenant.member_round_branch.dashboard", round_branch_id=round_branch.id),
                "branch": organisation.name,
                "period": period_key,
                "step": workflow.step_label(round_branch.step),
            }
        )
    return links


member_round_branch_bp.add_app_template_global(branch_round_links, "branch_round_links")


# --- dashboard and transitions ---------------------------------------------------------------------


def _render_dashboard(ctx: branch.BranchContext, status: int = 200) -> Any:
    board = branch_pages.dashboard(db(), ctx)
    return _render("rounds/branch/dashboard.html", ctx, status, board=board)


@member_round_branch_bp.get("/<int:round_branch_id>")
@login_required
def dashboard(round_branch_id: int) -> Any:
    round_branch = _round_branch(round_branch_id)
    return _render_dashboard(branch.context_for(db(), round_branch))


@member_round_branch_bp.post("/<int:round_branch_id>/step")
@login_required
def step(round_branch_id: int) -> Any:
    round_branch = _round_branch(round_branch_id)
    ctx = branch.context_for(db(), round_branch)
    name = request.form.get("transition", "")
    try:
        branch.take_step(db(), ctx, name)
        label = workflow.step_label(round_branch.step)
        db().commit()
    except ServiceError as error:
        ctx = _fresh(round_branch_id)
        flash(error.message, "error")
        return _render_dashboard(ctx, error.status)
    flash(_("已进入“%(step)s”阶段。", step=label), "success")
    return redirect(url_for(".dashboard", round_branch_id=round_branch_id))


# --- self-assessments: return, enter on behalf -----------------------------------------------------


@member_round_branch_bp.route("/evaluations/<int:evaluation_id>/return", methods=["GET", "POST"])
@login_required
def return_self(evaluation_id: int) -> Any:
    evaluation, round_branch = _evaluation(evaluation_id)
    ctx = branch.context_for(db(), round_branch)
    errors: dict[str, str] = {}
    status = 200
    form: Mapping[str, str] = {"reason": "", "version": str(evaluation.version)}
    if request.method == "POST":
        form = request.form
        try:
            branch.return_self(db(), ctx, evaluation, form.get("reason", ""), form.get("version"))
            name = evaluation.member.name
            db().commit()
        except ServiceError as error:
            ctx = _fresh(round_branch.id)
            evaluation, _rb = _evaluation(evaluation_id)
            errors = {error.field or "form": error.message}
            status = error.status
        else:
            flash(_("已退回 %(name)s 的自评。", name=name), "success")
            return redirect(url_for(".dashboard", round_branch_id=round_branch.id))
    refusal = workflow.self_refusal("return", evaluation.self_state, ctx.facts)
    return _render(
        "rounds/branch/return.html", ctx, status, evaluation=evaluation, form=form, errors=errors, refusal=refusal
    )


@member_round_branch_bp.route("/evaluations/<int:evaluation_id>/enter", methods=["GET", "POST"])
@login_required
def enter_self(evaluation_id: int) -> Any:
    evaluation, round_branch = _evaluation(evaluation_id)
    ctx = branch.context_for(db(), round_branch)
    fields = core.score_fields(ctx.rules)
    errors: dict[str, str] = {}
    status = 200
    stored = core.read_scores(db(), [evaluation.id], [ScoreStage.SELF]).get(
        (evaluation.id, ScoreStage.SELF), {}
    )
    form: Mapping[str, str] = {
        **{f.name: branch_pages.fmt(stored.get(f.key)) for f in fields if f.key in stored},
        "pledge": evaluation.pledge or "",
        "summary": evaluation.summary or "",
        "version": str(evaluation.version),
    }
    if request.method == "POST":
        form = request.form
        try:
            branch.enter_self(db(), ctx, evaluation, form, form.get("version"))
            name = evaluation.member.name
            db().commit()
        except ServiceError as error:
            ctx = _fresh(round_branch.id)
            evaluation, _rb = _evaluation(evaluation_id)
            errors = getattr(error, "errors", None) or {error.field or "form": error.message}
            flash(error.message, "error")
            status = error.status
        else:
            flash(_("已代 %(name)s 录入并提交自评。", name=name), "success")
            return redirect(url_for(".dashboard", round_branch_id=round_branch.id))
    refusal = workflow.self_refusal("enter_for_member", evaluation.self_state, ctx.facts)
    return _render(
        "rounds/branch/enter.html", ctx, status,
        evaluation=evaluation, fields=fields, form=form, errors=errors, refusal=refusal,
    )


# --- 党群联评 ---------------------------------------------------------------------------------------


def _render_joint(
    ctx: branch.BranchContext, grid: branch_pages.Grid, *, meeting_form: Mapping[str, str] | None = None,
    meeting_errors: Mapping[str, str] | None = None, status: int = 200,
) -> Any:
    rb = ctx.round_branch
    meeting_form = meeting_form or {
        "meeting_date": rb.meeting_date.isoformat() if rb.meeting_date else ctx.today.isoformat(),
        "members_present": "" if rb.members_present is None else str(rb.members_present),
        "public_present": "" if rb.public_present is None else str(rb.public_present),
        "meeting_note": rb.meeting_note or "",
        "version": str(rb.version),
    }
    public = meeting_form.get("public_present", "")
    shortfall = None
    if public.isdigit():
        shortfall = branch.meeting_shortfall(ctx.rules, ctx.facts.members, int(public))
    share = branch.public_min_share(ctx.rules)
    return _render(
        "rounds/branch/joint.html", ctx, status,
        grid=grid, meeting=meeting_form, meeting_errors=meeting_errors or {}, shortfall=shortfall,
        minimum_public=branch.minimum_public(ctx.rules, ctx.facts.members), share=share,
    )


@member_round_branch_bp.route("/<int:round_branch_id>/joint", methods=["GET", "POST"])
@login_required
def joint(round_branch_id: int) -> Any:
    round_branch = _round_branch(round_branch_id)
    ctx = branch.context_for(db(), round_branch)
    if request.method == "GET":
        return _render_joint(ctx, branch_pages.joint_grid(db(), ctx))
    try:
        saved = branch.save_joint(db(), ctx, request.form)
        db().commit()
    except branch.GridError as error:
        ctx = _fresh(round_branch_id)
        flash(error.message, "error")
        return _render_joint(ctx, branch_pages.joint_grid(db(), ctx, request.form, error.errors), status=error.status)
    except branch.StaleRowsError as error:
        ctx = _fresh(round_branch_id)
        flash(error.message, "error")
        grid = branch_pages.joint_grid(db(), ctx, request.form, stale=error.evaluation_ids)
        return _render_joint(ctx, grid, status=error.status)
    except ServiceError as error:
        ctx = _fresh(round_branch_id)
        flash(error.message, "error")
        return _render_joint(ctx, branch_pages.joint_grid(db(), ctx, request.form), status=error.status)
    flash(_("已保存 %(n)d 名党员的党群联评。", n=saved), "success")
    return redirect(url_for(".joint", round_branch_id=round_branch_id))


@member_round_branch_bp.post("/<int:round_branch_id>/joint/meeting")
@login_required
def meeting(round_branch_id: int) -> Any:
    round_branch = _round_branch(round_branch_id)
    ctx = branch.context_for(db(), round_branch)
    try:
        shortfall = branch.save_meeting(db(), ctx, request.form, request.form.get("version"))
        db().commit()
    except ServiceError as error:
        ctx = _fresh(round_branch_id)
        errors = getattr(error, "errors", None) or {}
        if not errors:
            flash(error.message, "error")
        return _render_joint(
            ctx,
            branch_pages.joint_grid(db(), ctx),
            meeting_form=request.form,
            meeting_errors=errors,
            status=error.status,
        )
    flash(_("已保存党群联评会议情况。"), "success")
    if shortfall:
        flash(shortfall, "warning")
    return redirect(url_for(".joint", round_branch_id=round_branch_id))


# --- 支部审评 ---------------------------------------------------------------------------------------


def _render_review(ctx: branch.BranchContext, grid: branch_pages.Grid, status: int = 200) -> Any:
    return _render("rounds/branch/review.html", ctx, status, grid=grid)


@member_round_branch_bp.route("/<int:round_branch_id>/review", methods=["GET", "POST"])
@login_required
def review(round_branch_id: int) -> Any:
    round_branch = _round_branch(round_branch_id)
    ctx = branch.context_for(db(), round_branch)
    if request.method == "GET":
        return _render_review(ctx, branch_pages.review_grid(db(), ctx))
    try:
        saved = branch.save_review(db(), ctx, request.form)
        db().commit()
    except branch.GridError as error:
        ctx = _fresh(round_branch_id)
        flash(error.message, "error")
        return _render_review(ctx, branch_pages.review_grid(db(), ctx, request.form, error.errors), error.status)
    except branch.StaleRowsError as error:
        ctx = _fresh(round_branch_id)
        flash(error.message, "error")
        return _render_review(ctx, branch_pages.review_grid(db(), ctx, request.form, stale=error.evaluation_ids),
                              error.status)
    except ServiceError as error:
        ctx = _fresh(round_branch_id)
        flash(error.message, "error")
        return _render_review(ctx, branch_pages.review_grid(db(), ctx, request.form), error.status)
    flash(_("已保存 %(n)d 名党员的支部审评结果。", n=saved), "success")
    return redirect(url_for(".review", round_branch_id=round_branch_id))


@member_round_branch_bp.post("/<int:round_branch_id>/preview")
@login_required
def preview(round_branch_id: int) -> Any:
    """The level the rule engine gives one row's values (JSON for review.js; nothing is saved)."""
    round_branch = _round_branch(round_branch_id)
    rules = core.round_rules(db(), core.load_round(db(), round_branch.round_id))
    return jsonify(branch_pages.preview(rules, request.form))


# --- follow-ups ------------------------------------------------------------------------------------


def _render_followups(ctx: branch.BranchContext, status: int = 200, **state: Any) -> Any:
    return _render(
        "rounds/branch/followups.html", ctx, status,
        fu=followups.follow_up_page(db(), ctx), forms=state.get("forms", {}), errors=state.get("errors", {}),
    )


@member_round_branch_bp.get("/<int:round_branch_id>/followups")
@login_required
def followups_page(round_branch_id: int) -> Any:
    round_branch = _round_branch(round_branch_id)
    return _render_followups(branch.context_for(db(), round_branch))


def _follow_up_action(evaluation_id: int, kind: str) -> Any:
    evaluation, round_branch = _evaluation(evaluation_id)
    ctx = branch.context_for(db(), round_branch)
    form = request.form
    try:
        if kind == "mentors":
            followups.assign_mentors(db(), ctx, evaluation, [int(v) for v in form.getlist("mentor") if v.isdigit()])
            message = _("已安排帮扶指导员。")
        elif kind == "talk":
            followups.record_talk(db(), ctx, evaluation, form)
            message = _("已记录谈话。")
        elif kind == "rectification_result":
            followups.record_rectification_result(db(), ctx, evaluation, form)
            message = _("已记录整改结果。")
        else:
            followups.set_rectification(db(), ctx, evaluation, form)
            message = _("已保存整改期限。")
        db().commit()
    except ServiceError as error:
        ctx = _fresh(round_branch.id)
        errors = getattr(error, "errors", None) or {error.field or "form": error.message}
        flash(error.message, "error")
        return _render_followups(
            ctx, error.status, forms={(evaluation_id, kind): form}, errors={(evaluation_id, kind): errors},
        )
    flash(message, "success")
    return redirect(url_for(".followups_page", round_branch_id=round_branch.id) + f"#e{evaluation_id}")


@member_round_branch_bp.post("/evaluations/<int:evaluation_id>/mentors")
@login_required
def mentors(evaluation_id: int) -> Any:
    return _follow_up_action(evaluation_id, "mentors")


@member_round_branch_bp.post("/evaluations/<int:evaluation_id>/talk")
@login_required
def talk(evaluation_id: int) -> Any:
    return _follow_up_action(evaluation_id, "talk")


@member_round_branch_bp.post("/evaluations/<int:evaluation_id>/rectification")
@login_required
def rectification(evaluation_id: int) -> Any:
    return _follow_up_action(evaluation_id, "rectification")


@member_round_branch_bp.post("/evaluations/<int:evaluation_id>/rectification/result")
@login_required
def rectification_result(evaluation_id: int) -> Any:
    return _follow_up_action(evaluation_id, "rectification_result")
