"""考核验收 on the web (`/t/<slug>/improvement/plans/<id>/review`): the committee's findings per
question, evidence files and outcome, with a confirmation page before anything is recorded; and the
public pages of published plans (`/t/<slug>/improvement/public/…`, no login).

Recording takes PLAN_REVIEW (the committee); another district's plan is a 404. The public pages read
only published (or reviewed) plans: a draft is a 404 there, whoever asks.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select

from fivestar.accounts.policy import Action, authorize
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.improvement import acceptance, files, public, services, workflow
from fivestar.improvement.forms import ConfirmForm
from fivestar.improvement.models import ImprovementPlan, Outcome, PlanState, Verdict
from fivestar.improvement.views import load_plan, store_uploads, today
from fivestar.orgs.models import Organisation
from fivestar.web.refusals import refuse
from fivestar.web.session import db

improvement_review_bp = Blueprint("improvement_review", __name__, url_prefix="/improvement")
improvement_public_bp = Blueprint("improvement_public", __name__, url_prefix="/improvement/public")

VERDICTS = [(v.value, acceptance.verdict_label(v)) for v in Verdict]
OUTCOMES = [(o.value, acceptance.outcome_label(o)) for o in Outcome]


def _entered(rules: Any) -> tuple[dict[str, tuple[object, object]], dict[str, str]]:
    """What the committee entered (question key → (verdict, text)) and the raw values for the page."""
    answers: dict[str, tuple[object, object]] = {}
    raw: dict[str, str] = {}
    for question in rules.improvement.questions:
        verdict = request.form.get(f"verdict_{question.key}", "")
        text = request.form.get(f"text_{question.key}", "")
        answers[question.key] = (verdict, text)
        raw[f"verdict_{question.key}"], raw[f"text_{question.key}"] = verdict, text
    for name in ("outcome", "rectify_by", "summary"):
        raw[name] = request.form.get(name, "")
    return answers, raw


def _render(plan: ImprovementPlan, status: int = 200, **values: Any) -> Any:
    session = db()
    rules = acceptance.plan_rules(session, plan)
    review, findings = acceptance.review_of(session, plan.id)
    items = services.items_of(session, plan.id)
    values.setdefault("raw", {})
    values.setdefault("error_field", None)
    form = values.pop("form", None) or ConfirmForm()
    if not form.version.data:
        form.version.data = str(plan.version)
    first, last = acceptance.due_window(rules, plan.year)
    return render_template(
        "improvement/review.html",
        plan=plan,
        rules=rules,
        review=review,
        findings=findings,
        items=items,
        overdue={i.id for i in items if services.is_overdue(i, today())},
        files=files.files_of(session, plan.id),
        verdicts=VERDICTS,
        outcomes=OUTCOMES,
        form=form,
        due_first=first,
        due_last=last,
        can_review=authorize(current_user, Action.PLAN_REVIEW, plan) and plan.state is PlanState.PUBLISHED,
        state_label=workflow.state_label,
        outcome_label=acceptance.outcome_label,
        verdict_label=acceptance.verdict_label,
        **values,
    ), status


@improvement_review_bp.route("/plans/<int:plan_id>/review", methods=["GET", "POST"], endpoint="review")
@login_required
def review(plan_id: int) -> Any:
    plan = load_plan(plan_id)
    if request.method == "GET":
        return _render(plan)
    plan = load_plan(plan_id, Action.PLAN_REVIEW)
    form = ConfirmForm()
    if not form.validate_on_submit():
        return _render(plan, 400, form=form)
    session = db()
    rules = acceptance.plan_rules(session, plan)
    answers, raw = _entered(rules)
    try:
        draft = acceptance.check_review(
            rules, answers, raw["outcome"], raw["rectify_by"], raw["summary"], today=today()
        )
    except ServiceError as error:
        flash(error.message, "error")
        return _render(plan, error.status, raw=raw, error_field=error.field, form=form)
    if request.form.get("confirmed") != "1":  # the confirmation step: show what will be recorded
        return _render(plan, 200, raw=raw, draft=draft, confirming=True, form=form)
    try:
        acceptance.record_review(session, plan, draft, version=form.version.data)
        session.commit()
    except ServiceError as error:
        status = refuse(error)
        return _render(load_plan(plan_id), status, raw=raw, form=form)
    flash(_("已记录考核验收结果：%(outcome)s。", outcome=acceptance.outcome_label(draft.outcome)), "success")
    return redirect(url_for(".review", plan_id=plan_id), 303)


@improvement_review_bp.post("/plans/<int:plan_id>/review/files", endpoint="upload")
@login_required
def upload(plan_id: int) -> Any:
    plan = load_plan(plan_id, Action.PLAN_REVIEW)
    if not FlaskForm().validate_on_submit():
        abort(400)
    stored, refused = store_uploads(plan, None)
    if refused is not None:
        return _render(load_plan(plan_id), refused)
    flash(_("已上传 %(n)d 个文件。", n=stored), "success")
    return redirect(url_for(".review", plan_id=plan_id), 303)


# --- public pages (no login) ------------------------------------------------------------------------------


@improvement_public_bp.get("/", endpoint="index")
def public_index() -> Any:
    """Every published plan of the district, newest year first (one query)."""
    rows = (
        db()
        .execute(
            select(ImprovementPlan.id, ImprovementPlan.year, ImprovementPlan.programme_label, Organisation.name)
            .join(
                Organisation,
                (Organisation.id == ImprovementPlan.branch_id) & (Organisation.tenant_id == ImprovementPlan.tenant_id),
            )
            .where(ImprovementPlan.state.in_(public.PUBLIC_STATES))
            .order_by(ImprovementPlan.year.desc(), Organisation.name)
        )
        .all()
    )
    years: dict[int, list[Any]] = {}
    for row in rows:
        years.setdefault(row.year, []).append(row)
    return render_template("improvement/public_index.html", years=years)


@improvement_public_bp.get("/plans/<int:plan_id>", endpoint="plan")
def public_plan(plan_id: int) -> Any:
    session = db()
    plan = public.load_public(session, plan_id)
    if plan is None:
        abort(404)
    items = services.items_of(session, plan.id)
    review, _findings = acceptance.review_of(session, plan.id)
    return render_template(
        "improvement/public_plan.html",
        plan=plan,
        items=items,
        today=today(),
        overdue={i.id for i in items if services.is_overdue(i, today())},
        review=review,
        outcome_label=acceptance.outcome_label,
    )


__all__ = ["improvement_public_bp", "improvement_review_bp"]
