"""整改提升计划 on the web (`/t/<slug>/improvement/…`): the year's plans, one plan with its items,
the branch's edits, evidence files, publishing (with a confirmation page), and the committee's button
that creates the plans of a year finalised before plans existed.

Each view loads its object within the tenant (another district's id: 404), authorises — a plan the
person may not see is a 404 (another branch's secretary), one they may see but not change a 403 (a
committee member editing, a member of the branch) — calls one service and commits once. Refusals come
back on the page with a 4xx; a form someone else saved first answers 409 with what was typed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from fivestar.accounts.policy import Action, authorize, plan_scope, scoped_actions
from fivestar.branch_rounds.models import BranchRound, BranchRoundState
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.improvement import acceptance, files, queries, services, workflow
from fivestar.improvement.forms import ConfirmForm, GoalForm, ItemForm, StatusForm, status_label
from fivestar.improvement.models import ImprovementPlan, PlanItem, PlanState
from fivestar.kernel.uploads import DEFAULT_FILE_BYTES, Upload, discard
from fivestar.rules import level_label
from fivestar.timekeeping import clock
from fivestar.web.downloads import uploaded_file
from fivestar.web.editing import opened_version, refuse_edit
from fivestar.web.errors import user_error
from fivestar.web.refusals import refuse
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

improvement_bp = Blueprint("improvement", __name__, url_prefix="/improvement")


@improvement_bp.app_template_filter("item_status")
def _item_status(value: Any) -> str:
    return status_label(str(getattr(value, "value", value)))


def today() -> dt.date:
    return clock.today_in(current_tenant().timezone)


def files_root() -> Path:
    configured = current_app.config.get("IMPROVEMENT_FILES_DIR")
    if configured:
        return Path(configured)
    return Path(current_app.config["FIVESTAR_SETTINGS"].resolved_data_dir) / "improvement"


def load_plan(plan_id: int, action: Action = Action.PLAN_VIEW) -> ImprovementPlan:
    """The plan, or 404 when this tenant has none or the person may not see it; 403 when they may see
    the branch but not take `action` on its plan."""
    try:
        plan = services.load_plan(db(), plan_id)
    except NotFoundError:
        abort(404)
    if not authorize(current_user, Action.PLAN_VIEW, plan):
        abort(403 if authorize(current_user, Action.ORG_VIEW, plan.branch) else 404)
    if action is not Action.PLAN_VIEW and not authorize(current_user, action, plan):
        abort(403)
    return plan


def _item(plan: ImprovementPlan, item_id: int) -> PlanItem:
    try:
        return services.load_item(db(), plan, item_id)
    except NotFoundError:
        abort(404)


def _year_arg(default: int) -> int:
    raw = (request.args.get("year") or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 2000 <= int(raw) <= 2999:
        raise user_error(400, _("年度应为四位数字，例如 2026"))
    return int(raw)


# --- the year's plans --------------------------------------------------------------------------------------


@improvement_bp.get("/", endpoint="index")
@login_required
def index() -> Any:
    if not (authorize(current_user, Action.PLAN_VIEW) or Action.PLAN_VIEW in _scoped()):
        abort(403)
    session = db()
    years = queries.plan_years(session)
    year = _year_arg(years[0] if years else today().year)
    plans = queries.plans_of_year(session, year, today(), scope=plan_scope(current_user))
    missing: list[BranchRound] = []
    can_create = authorize(current_user, Action.PLAN_REVIEW)
    if can_create:
        with_plans = select(ImprovementPlan.round_id).distinct()
        missing = list(
            session.scalars(
                select(BranchRound)
                .where(BranchRound.state == BranchRoundState.FINALISED, BranchRound.id.not_in(with_plans))
                .order_by(BranchRound.year.desc())
            )
        )
    return render_template(
        "improvement/index.html",
        year=year,
        years=sorted(set(years) | {year}, reverse=True),
        plans=plans,
        missing=missing,
        can_create=can_create,
        form=ConfirmForm(),
        state_label=workflow.state_label,
        outcome_label=acceptance.outcome_label,
    )


def _scoped() -> frozenset[Action]:
    return scoped_actions(current_user)


@improvement_bp.post("/rounds/<int:round_id>/plans", endpoint="create_plans")
@login_required
def create_plans(round_id: int) -> Any:
    """The committee creates the missing plans of a year finalised before plans existed."""
    if not authorize(current_user, Action.PLAN_REVIEW):
        abort(403)
    session = db()
    branch_round = session.scalar(select(BranchRound).where(BranchRound.id == round_id))
    if branch_round is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        created = services.create_plans_for_round(session, branch_round)
        session.commit()
    except ServiceError as error:
        refuse(error)
        return redirect(url_for(".index"), 303)
    flash(_("已为 %(year)d 年度定星结果生成 %(n)d 份整改提升计划。", year=branch_round.year, n=len(created)), "success")
    return redirect(url_for(".index", year=branch_round.year + 1), 303)


# --- one plan ------------------------------------------------------------------------------------------------


def render_plan(plan: ImprovementPlan, status: int = 200, **extra: Any) -> Any:
    session = db()
    items = services.items_of(session, plan.id)
    now_day = today()
    review, findings = acceptance.review_of(session, plan.id)
    goal_form = extra.pop("goal_form", None) or GoalForm(formdata=None, goal=plan.goal)
    if not goal_form.version.data:
        opened_version(goal_form, plan)
    can_edit = authorize(current_user, Action.PLAN_EDIT, plan)
    return render_template(
        "improvement/plan.html",
        plan=plan,
        items=items,
        files=files.files_of(session, plan.id),
        overdue={i.id for i in items if services.is_overdue(i, now_day)},
        today=now_day,
        can_write=can_edit and plan.state is PlanState.DRAFT,
        can_progress=can_edit and plan.state is PlanState.PUBLISHED,
        can_review=authorize(current_user, Action.PLAN_REVIEW, plan) and plan.state is PlanState.PUBLISHED,
        review=review,
        findings=findings,
        goal_form=goal_form,
        new_item=extra.pop("new_item", None) or ItemForm(formdata=None),
        status_form=StatusForm,
        state_label=workflow.state_label,
        outcome_label=acceptance.outcome_label,
        verdict_label=acceptance.verdict_label,
        max_files=files.MAX_FILES,
        level_label=level_label,
        **extra,
    ), status


@improvement_bp.get("/plans/<int:plan_id>", endpoint="plan")
@login_required
def plan_page(plan_id: int) -> Any:
    return render_plan(load_plan(plan_id))


@improvement_bp.post("/plans/<int:plan_id>/goal", endpoint="goal")
@login_required
def goal(plan_id: int) -> Any:
    plan = load_plan(plan_id, Action.PLAN_EDIT)
    form = GoalForm()
    if not form.validate_on_submit():
        return render_plan(plan, 400, goal_form=form)
    try:
        services.update_goal(db(), plan, form.goal.data, version=form.version.data)
        db().commit()
    except ServiceError as error:
        status, plan = refuse_edit(error, form, lambda: load_plan(plan_id))
        return render_plan(plan, status, goal_form=form)
    flash(_("已保存争创目标。"), "success")
    return redirect(url_for(".plan", plan_id=plan_id), 303)


def _item_values(form: ItemForm) -> dict[str, object]:
    return {
        "problem": form.problem.data,
        "measure": form.measure.data,
        "owner": form.owner.data,
        "deadline": form.deadline.data,
        "status": form.status.data,
    }


@improvement_bp.post("/plans/<int:plan_id>/items", endpoint="add_item")
@login_required
def add_item(plan_id: int) -> Any:
    plan = load_plan(plan_id, Action.PLAN_EDIT)
    form = ItemForm()
    if not form.validate_on_submit():
        return render_plan(plan, 400, new_item=form)
    try:
        services.add_item(db(), plan, _item_values(form))
        db().commit()
    except ServiceError as error:
        status = refuse(error, form)
        return render_plan(load_plan(plan_id), status, new_item=form)
    flash(_("已添加整改事项。"), "success")
    return redirect(url_for(".plan", plan_id=plan_id), 303)


@improvement_bp.route("/plans/<int:plan_id>/items/<int:item_id>/edit", methods=["GET", "POST"], endpoint="item_edit")
@login_required
def item_edit(plan_id: int, item_id: int) -> Any:
    plan = load_plan(plan_id, Action.PLAN_EDIT)
    item = _item(plan, item_id)
    status = 200
    if request.method == "POST":
        form = ItemForm()
        if form.validate_on_submit():
            values = _item_values(form) if plan.state is PlanState.DRAFT else {"status": form.status.data}
            try:
                services.update_item(db(), plan, item, values, version=form.version.data)
                db().commit()
            except ServiceError as error:
                status, item = refuse_edit(error, form, lambda: _item(load_plan(plan_id), item_id))
                plan = load_plan(plan_id)
            else:
                flash(_("已保存整改事项。"), "success")
                return redirect(url_for(".plan", plan_id=plan_id) + f"#item-{item_id}", 303)
        else:
            status = 400
    else:
        form = ItemForm(
            formdata=None,
            problem=item.problem,
            measure=item.measure,
            owner=item.owner,
            deadline=item.deadline.isoformat() if item.deadline else "",
            status=item.status.value,
        )
        opened_version(form, item)
    return render_template(
        "improvement/item_edit.html", plan=plan, item=item, form=form, content=plan.state is PlanState.DRAFT
    ), status


@improvement_bp.post("/plans/<int:plan_id>/items/<int:item_id>/status", endpoint="item_status")
@login_required
def item_status(plan_id: int, item_id: int) -> Any:
    plan = load_plan(plan_id, Action.PLAN_EDIT)
    item = _item(plan, item_id)
    form = StatusForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.update_item(db(), plan, item, {"status": form.status.data}, version=form.version.data)
        db().commit()
    except ServiceError as error:
        status = refuse(error)
        return render_plan(load_plan(plan_id), status)
    flash(_("已更新进度：%(status)s。", status=status_label(form.status.data or "")), "success")
    return redirect(url_for(".plan", plan_id=plan_id) + f"#item-{item_id}", 303)


@improvement_bp.post("/plans/<int:plan_id>/items/<int:item_id>/remove", endpoint="remove_item")
@login_required
def remove_item(plan_id: int, item_id: int) -> Any:
    plan = load_plan(plan_id, Action.PLAN_EDIT)
    item = _item(plan, item_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        keys = services.remove_item(db(), plan, item)
        db().commit()
    except ServiceError as error:
        status = refuse(error)
        return render_plan(load_plan(plan_id), status)
    discard(files.paths_of(files_root(), plan.tenant_id, keys))
    flash(_("已删除整改事项。"), "success")
    return redirect(url_for(".plan", plan_id=plan_id), 303)


# --- publishing (a confirmation page) -------------------------------------------------------------------------


@improvement_bp.route("/plans/<int:plan_id>/publish", methods=["GET", "POST"], endpoint="publish")
@login_required
def publish(plan_id: int) -> Any:
    plan = load_plan(plan_id, Action.PLAN_EDIT)
    form = ConfirmForm()
    status = 200
    if request.method == "POST" and form.validate_on_submit():
        try:
            services.publish(db(), plan, version=form.version.data)
            db().commit()
        except ServiceError as error:
            status = refuse(error)
            plan = load_plan(plan_id)
        else:
            flash(_("整改提升计划已公布。"), "success")
            return redirect(url_for(".plan", plan_id=plan_id), 303)
    elif request.method == "POST":
        status = 400
    opened_version(form, plan)
    facts = services.publish_facts(db(), plan)
    return render_template(
        "improvement/publish.html",
        plan=plan,
        form=form,
        items=services.items_of(db(), plan.id),
        refused=workflow.refusal("publish", facts),
    ), status


# --- evidence files ----------------------------------------------------------------------------------------------


def read_uploads() -> list[Upload]:
    limit = int(current_app.config.get("EVIDENCE_MAX_FILE_BYTES", DEFAULT_FILE_BYTES))
    return [Upload(s.filename or "", s.stream.read(limit + 1)) for s in request.files.getlist("files")]


def store_uploads(plan: ImprovementPlan, item: PlanItem | None) -> tuple[int, int | None]:
    """Check and store the request's files for `item` (None: the acceptance review's evidence) and commit.
    Returns how many were stored and no status, or none and the refusal's status (nothing is kept:
    written files are removed again when the rows do not commit)."""
    paths: list[Path] = []
    try:
        rows, paths = files.store(
            db(),
            plan,
            item,
            read_uploads(),
            root=files_root(),
            file_bytes=int(current_app.config.get("EVIDENCE_MAX_FILE_BYTES", DEFAULT_FILE_BYTES)),
        )
        db().commit()
    except ServiceError as error:
        discard(paths)
        return 0, refuse(error)
    except BaseException:
        discard(paths)
        raise
    return len(rows), None


@improvement_bp.post("/plans/<int:plan_id>/items/<int:item_id>/files", endpoint="upload")
@login_required
def upload(plan_id: int, item_id: int) -> Any:
    plan = load_plan(plan_id, Action.PLAN_EDIT)
    item = _item(plan, item_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    stored, refused = store_uploads(plan, item)
    if refused is not None:
        return render_plan(load_plan(plan_id), refused)
    flash(_("已上传 %(n)d 个文件。", n=stored), "success")
    return redirect(url_for(".plan", plan_id=plan_id) + f"#item-{item_id}", 303)


def _file(file_id: int) -> Any:
    try:
        return files.load(db(), file_id)
    except NotFoundError:
        abort(404)


@improvement_bp.get("/files/<int:file_id>", endpoint="file")
@login_required
def file_download(file_id: int) -> Any:
    """A download only: the stored (sniffed) type, `nosniff`, a CSP that forbids everything."""
    row = _file(file_id)
    load_plan(row.plan_id)
    try:
        data = files.read(files_root(), row)
    except NotFoundError as error:
        raise user_error(404, error.message) from None
    return uploaded_file(data, files.download_name(row), row.content_type)


@improvement_bp.post("/files/<int:file_id>/delete", endpoint="delete_file")
@login_required
def delete_file(file_id: int) -> Any:
    row = _file(file_id)
    action = Action.PLAN_EDIT if row.item_id is not None else Action.PLAN_REVIEW
    plan = load_plan(row.plan_id, action)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        path = files.delete(db(), plan, row, root=files_root())
        db().commit()
    except ServiceError as error:
        status = refuse(error)
        return render_plan(load_plan(plan.id), status)
    discard([path])
    flash(_("已删除文件。"), "success")
    target = ".plan" if row.item_id is not None else "tenant.improvement_review.review"
    return redirect(url_for(target, plan_id=plan.id), 303)


__all__ = ["improvement_bp", "load_plan", "read_uploads", "render_plan", "today"]
