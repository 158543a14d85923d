"""一季一小评 (`/t/<slug>/branch-rating/quarterly/…`): the branch's quarterly self-check and the
committee's comment.

Each view loads its object within the tenant (another district's id: 404), authorizes, calls one
service and commits once. Refusals come back on the page with a 4xx and the person's input kept;
a form someone else saved first answers 409.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, TextAreaField
from wtforms.validators import Length

from fivestar.accounts.policy import Action, authorize, require
from fivestar.branch_rounds import quarterly
from fivestar.branch_rounds.committee_views import template_helpers
from fivestar.enums import Role
from fivestar.errors import ServiceError
from fivestar.i18n import _, _l
from fivestar.orgs.models import Organisation
from fivestar.timekeeping import clock
from fivestar.web import round_pages
from fivestar.web.refusals import refuse, require_on
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

branch_rating_quarterly_bp = Blueprint("branch_rating_quarterly", __name__, url_prefix="/branch-rating/quarterly")
branch_rating_quarterly_bp.context_processor(template_helpers)


class QuarterlyForm(FlaskForm):
    summary = TextAreaField(_l("小结（选填）"), validators=[Length(max=2000, message=_l("小结最长 2000 个字"))])
    version = HiddenField()


class CommentForm(FlaskForm):
    comment = TextAreaField(_l("工委点评"), validators=[Length(max=2000, message=_l("点评最长 2000 个字"))])
    version = HiddenField()


def _today() -> dt.date:
    return clock.today_in(current_tenant().timezone)


def _quarter_choices(today: dt.date) -> list[tuple[int, int]]:
    return quarterly.started_quarters(today)


def _requested_quarter(today: dt.date) -> tuple[int, int]:
    """The quarter asked for in the query string, if it is a started one; else the current one."""
    try:
        return quarterly.checked_quarter(request.args.get("year"), request.args.get("quarter"), today)
    except ServiceError:
        return quarterly.quarter_of(today)


def _my_branches() -> list[Organisation]:
    """The rated branches this person leads (secretary, branch committee), one query."""
    paths = current_user.scoped_paths(Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE)
    if not paths:
        return []
    return [
        org
        for org in db().scalars(select(Organisation).where(Organisation.path.in_(paths)).order_by(Organisation.name))
        if quarterly.is_rated_branch(org)
    ]


@branch_rating_quarterly_bp.get("/", endpoint="index")
@login_required
def quarterly_index() -> Any:
    round_pages.require_view_rounds()
    session = db()
    tenant = current_tenant()
    rules = quarterly.tenant_rules(session, tenant)
    today = _today()
    year, quarter = _requested_quarter(today)
    overview = None
    if authorize(current_user, Action.ROUND_VIEW) or current_user.has_role(Role.ORG_STAFF):
        overview = quarterly.quarter_overview(session, current_user, year, quarter)
    return render_template(
        "branch/quarterly/index.html",
        enabled=quarterly.enabled(rules),
        year=year,
        quarter=quarter,
        quarters=_quarter_choices(today),
        overview=overview,
        mine=_my_branches(),
        can_comment=authorize(current_user, Action.BRANCH_DECIDE),
    )


def _branch_or_404(branch_id: int) -> Organisation:
    found = db().scalar(select(Organisation).where(Organisation.id == branch_id))
    if found is None:
        abort(404)
    return found


@branch_rating_quarterly_bp.route("/branch/<int:branch_id>", methods=["GET", "POST"])
@login_required
def edit(branch_id: int) -> Any:
    branch = _branch_or_404(branch_id)
    require(current_user, Action.BRANCH_RATE, branch)
    session = db()
    tenant = current_tenant()
    rules = quarterly.tenant_rules(session, tenant)
    today = _today()
    form = QuarterlyForm()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        raw_year, raw_quarter = request.form.get("year"), request.form.get("quarter")
        try:
            year, quarter = quarterly.checked_quarter(raw_year, raw_quarter, today)
        except ServiceError:
            year, quarter = quarterly.quarter_of(today)
    else:
        year, quarter = _requested_quarter(today)
    existing = quarterly.find_review(session, branch.id, year, quarter) if quarterly.enabled(rules) else None
    values: dict[str, str] = {}
    if request.method == "POST":
        values = {name: str(value) for name, value in request.form.items()}
        if form.validate_on_submit():
            try:
                quarterly.save_review(
                    session,
                    tenant,
                    rules,
                    branch,
                    raw_year,
                    raw_quarter,
                    request.form,
                    form.summary.data,
                    version=form.version.data,
                )
                session.commit()
            except quarterly.InvalidReviewError as error:
                session.rollback()
                errors = error.errors
                flash(error.message, "error")
                status = 400
            except ServiceError as error:
                status = refuse(error, form)
            else:
                flash(_("已提交%(quarter)s的季度小评。", quarter=quarterly.quarter_label(year, quarter)), "success")
                return redirect(url_for(".edit", branch_id=branch.id, year=year, quarter=quarter))
        else:
            status = 400
        branch = _branch_or_404(branch_id)
        existing = quarterly.find_review(session, branch.id, year, quarter) if quarterly.enabled(rules) else None
        form.version.data = str(existing.version) if existing is not None else ""
    elif existing is not None:
        values = {quarterly.check_field(key): str(text) for key, text in (existing.checks or {}).items()}
        form.summary.data = existing.summary or ""
    if request.method == "GET":
        form.version.data = str(existing.version) if existing is not None else ""
    return (
        render_template(
            "branch/quarterly/edit.html",
            enabled=quarterly.enabled(rules),
            rules=rules,
            branch=branch,
            year=year,
            quarter=quarter,
            quarters=_quarter_choices(today),
            review=existing,
            history=quarterly.branch_reviews(session, branch.id),
            form=form,
            values=values,
            errors=errors,
            check_field=quarterly.check_field,
            locked=existing is not None and bool(existing.committee_comment),
        ),
        status,
    )


def _review_or_404(review_id: int) -> Any:
    return round_pages.or_404(quarterly.load_review, review_id)


@branch_rating_quarterly_bp.route("/<int:review_id>", methods=["GET", "POST"])
@login_required
def comment(review_id: int) -> Any:
    review = _review_or_404(review_id)
    require_on(Action.ROUND_VIEW, review)
    session = db()
    rules = quarterly.tenant_rules(session, current_tenant())
    form = CommentForm()
    status = 200
    if request.method == "POST":
        require_on(Action.BRANCH_DECIDE, review)
        if form.validate_on_submit():
            try:
                quarterly.comment(session, rules, review, form.comment.data, version=form.version.data)
                session.commit()
            except ServiceError as error:
                status = refuse(error, form)
                review = _review_or_404(review_id)
            else:
                flash(_("已点评。"), "success")
                return redirect(url_for(".index", year=review.year, quarter=review.quarter))
        else:
            status = 400
    else:
        form.comment.data = review.committee_comment or ""
    if request.method == "GET" or not form.version.data:
        form.version.data = str(review.version)
    labels = {indicator.key: indicator.label for indicator in rules.branch.indicators} if rules else {}
    return (
        render_template(
            "branch/quarterly/comment.html",
            enabled=quarterly.enabled(rules),
            review=review,
            labels=labels,
            form=form,
            can_comment=authorize(current_user, Action.BRANCH_DECIDE, review) and quarterly.enabled(rules),
        ),
        status,
    )


__all__ = ["branch_rating_quarterly_bp"]
