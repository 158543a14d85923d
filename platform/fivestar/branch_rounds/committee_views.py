"""The committee's side of the annual branch rating (`/t/<slug>/branch-rating/…`).

- `branch_rounds` (/branch-rating): the years' rounds (tenant admins open one and extend its
  deadlines), the committee's table of every branch with the rules' quota guidance, each branch's
  dossier with the decision (定星), and finalising the round in a committee meeting.
- `org_review` (/branch-rating/org-review): the 机关党委/党总支's queue; it forwards a branch's
  rating with its comments or returns it with a reason.
- `quarterly` (/branch-rating/quarterly): 一季一小评 — the branch's quarterly self-check and the
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
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from fivestar.accounts.policy import Action, authorize, require, scoped_actions
from fivestar.branch_rounds import ballot_meeting, committee, core, decision, org_review, quarterly, workflow
from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, RatingStep
from fivestar.branch_rounds.opening import default_deadlines, open_branch_round
from fivestar.enums import Role
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _, _l
from fivestar.orgs.models import Organisation
from fivestar.rules import LEVELS, level_label
from fivestar.tenants.models import RuleSetVersion
from fivestar.timekeeping import clock
from fivestar.web.refusals import refuse, require_on
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

branch_rounds_bp = Blueprint("branch_rating_committee", __name__, url_prefix="/branch-rating")
org_review_bp = Blueprint("branch_rating_org_review", __name__, url_prefix="/branch-rating/org-review")
quarterly_bp = Blueprint("branch_rating_quarterly", __name__, url_prefix="/branch-rating/quarterly")



# --- forms ---------------------------------------------------------------------------------------------


class OpenRoundForm(FlaskForm):
    year = StringField(_l("评定年度"), validators=[Length(max=4)], render_kw={"inputmode": "numeric"})
    self_report_due = StringField(_l("自评上报截止日"), validators=[Length(max=20)], render_kw={"type": "date"})
    committee_due = StringField(_l("工委定星截止日"), validators=[Length(max=20)], render_kw={"type": "date"})


class ExtendForm(FlaskForm):
    which = SelectField(_l("期限"), choices=[], validate_choice=False)
    new_day = StringField(_l("新的截止日期"), validators=[Length(max=20)], render_kw={"type": "date"})
    reason = TextAreaField(_l("延期原因"), validators=[Length(max=500, message=_l("原因最长 500 个字"))])
    version = HiddenField()


class FinaliseForm(FlaskForm):
    meeting_date = StringField(_l("工委会议日期"), validators=[Length(max=20)], render_kw={"type": "date"})
    participants = TextAreaField(
        _l("参会人员"), validators=[Length(max=2000, message=_l("参会人员最长 2000 个字"))]
    )
    version = HiddenField()


class DecideForm(FlaskForm):
    level = SelectField(_l("定星星级"), choices=[], validate_choice=False)
    reason = TextAreaField(_l("理由"), validators=[Length(max=2000, message=_l("理由最长 2000 个字"))])
    version = HiddenField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.level.choices = [("", _("请选择"))] + [(str(level), level_label(level)) for level in reversed(LEVELS)]


class ForwardForm(FlaskForm):
    comment = TextAreaField(_l("审核意见"), validators=[Length(max=2000, message=_l("最长 2000 个字"))])
    version = HiddenField()


class ReturnForm(FlaskForm):
    reason = TextAreaField(_l("退回原因"), validators=[Length(max=2000, message=_l("最长 2000 个字"))])
    version = HiddenField()


class QuarterlyForm(FlaskForm):
    summary = TextAreaField(_l("小结（选填）"), validators=[Length(max=2000, message=_l("小结最长 2000 个字"))])
    version = HiddenField()


class CommentForm(FlaskForm):
    comment = TextAreaField(_l("工委点评"), validators=[Length(max=2000, message=_l("点评最长 2000 个字"))])
    version = HiddenField()


# --- helpers ---------------------------------------------------------------------------------------------


def _helpers() -> dict[str, Any]:
    return {
        "step_label": workflow.step_label,
        "level_label": _level_text,
        "round_state_label": committee.round_state_label,
        "deadline_label": committee.deadline_label,
        "group_label": _group_label,
        "quarter_label": quarterly.quarter_label,
        "RatingStep": RatingStep,
        "BranchRoundState": BranchRoundState,
    }


for _bp in (branch_rounds_bp, org_review_bp, quarterly_bp):
    _bp.context_processor(_helpers)


def _group_label(name: object) -> str:
    """The voter group's name (the ballot part's own words)."""
    return ballot_meeting.group_label(str(name))


def _level_text(level: int | None) -> str:
    return level_label(level) if level is not None else "—"


def _can_view_rounds() -> bool:
    """Tenant-wide readers, and anyone whose organisation-scoped role may view branch ratings."""
    return authorize(current_user, Action.ROUND_VIEW) or Action.ROUND_VIEW in scoped_actions(current_user)



def _round_or_404(branch_round_id: int) -> BranchRound:
    try:
        return core.load_round(db(), branch_round_id)
    except NotFoundError:
        abort(404)


def _rating_or_404(rating_id: int) -> BranchRating:
    try:
        return core.load_rating(db(), rating_id)
    except NotFoundError:
        abort(404)



def _parse_day(text: str | None, field: str, *, required: bool = True) -> dt.date | None:
    value = (text or "").strip()
    if not value and not required:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ServiceError(_("请填写日期，如 2026-04-30"), field=field) from None


def _rules_version_number(branch_round: BranchRound) -> int | None:
    return db().scalar(select(RuleSetVersion.version).where(RuleSetVersion.id == branch_round.rules_version_id))


# --- the rounds list, opening a round -------------------------------------------------------------------


def _open_form_defaults(form: OpenRoundForm) -> str | None:
    """Prefill the year (last year) and the rules' deadlines; say so when those are already past."""
    tenant = current_tenant()
    today = _today()
    if not form.year.data:
        form.year.data = str(today.year - 1)
    try:
        year = int(form.year.data)
        dates = default_deadlines(tenant, db(), year)
    except (ValueError, ServiceError):
        return None
    if not form.self_report_due.data:
        form.self_report_due.data = dates.self_report_due.isoformat()
    if not form.committee_due.data:
        form.committee_due.data = dates.committee_due.isoformat()
    if dates.self_report_due < today:
        return _("规则规定的自评上报截止日 %(day)s 已过，请另定今天以后的日期。", day=dates.self_report_due.isoformat())
    return None


def _today() -> dt.date:
    return clock.today_in(current_tenant().timezone)


@branch_rounds_bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> Any:
    tenant = current_tenant()
    require(current_user, Action.TENANT_VIEW, tenant)
    if not _can_view_rounds():
        abort(403)
    can_manage = authorize(current_user, Action.ROUND_MANAGE)
    form = OpenRoundForm()
    status = 200
    if request.method == "POST":
        require(current_user, Action.ROUND_MANAGE)
        if form.validate_on_submit():
            try:
                year_text = (form.year.data or "").strip()
                try:
                    year = int(year_text) if year_text else None
                except ValueError:
                    raise ServiceError(_("请填写评定年度，如 2025"), field="year") from None
                opened = open_branch_round(
                    db(),
                    tenant,
                    year=year,
                    self_report_due=_parse_day(form.self_report_due.data, "self_report_due", required=False),
                    committee_due=_parse_day(form.committee_due.data, "committee_due", required=False),
                )
                new_id = opened.round.id
                db().commit()
            except ServiceError as error:
                status = refuse(error, form)
            else:
                flash(
                    _("已开启 %(year)d 年度党支部星级评定：%(n)d 个党支部参评。", year=opened.round.year,
                      n=opened.branches),
                    "success",
                )
                return redirect(url_for(".detail", branch_round_id=new_id))
        else:
            status = 400
    past_hint = _open_form_defaults(form) if can_manage else None
    session = db()
    tenant_wide = authorize(current_user, Action.ROUND_VIEW)
    return (
        render_template(
            "branch/committee/index.html",
            rows=committee.rounds_overview(session, current_user),
            steps=committee.STEPS,
            form=form,
            can_manage=can_manage,
            past_hint=past_hint,
            tenant_wide=tenant_wide,
            mine=committee.my_ratings(session, current_user),
            org_staff=Action.BRANCH_FORWARD in scoped_actions(current_user),
            can_decide=authorize(current_user, Action.BRANCH_DECIDE),
        ),
        status,
    )


# --- one round: the committee's table -------------------------------------------------------------------


def _require_tenant_wide() -> None:
    """The table of every branch (with the quota over all of them) is for tenant-wide readers:
    administrators, committee members and inspectors."""
    if not authorize(current_user, Action.ROUND_VIEW):
        abort(403)


def _render_detail(branch_round: BranchRound, status: int = 200, **forms: Any) -> Any:
    session = db()
    rules = core.round_rules(session, branch_round)
    rows = committee.branch_table(session, current_user, branch_round)
    guidance = committee.table_guidance(rules, rows)
    steps = {step: 0 for step in committee.STEPS}
    for row in rows:
        steps[row.rating.step] += 1
    extend_form = forms.get("extend_form") or ExtendForm(formdata=None)
    extend_form.which.choices = [(which, committee.deadline_label(which)) for which in committee.DEADLINES]
    if not extend_form.version.data:
        extend_form.version.data = str(branch_round.version)
    finalise_form = forms.get("finalise_form") or FinaliseForm(formdata=None)
    if not finalise_form.version.data:
        finalise_form.version.data = str(branch_round.version)
    is_open = branch_round.state is BranchRoundState.OPEN
    return (
        render_template(
            "branch/committee/detail.html",
            branch_round=branch_round,
            rules=rules,
            rules_version=_rules_version_number(branch_round),
            rows=rows,
            guidance=guidance,
            steps=steps,
            extend_form=extend_form,
            finalise_form=finalise_form,
            can_extend=is_open and authorize(current_user, Action.ROUND_MANAGE),
            can_finalise=is_open and authorize(current_user, Action.BRANCH_DECIDE),
            finalise_refusal=workflow.round_refusal("finalise", branch_round.state, steps),
        ),
        status,
    )


@branch_rounds_bp.get("/<int:branch_round_id>")
@login_required
def detail(branch_round_id: int) -> Any:
    branch_round = _round_or_404(branch_round_id)
    _require_tenant_wide()
    return _render_detail(branch_round)


@branch_rounds_bp.post("/<int:branch_round_id>/extend")
@login_required
def extend(branch_round_id: int) -> Any:
    branch_round = _round_or_404(branch_round_id)
    require(current_user, Action.ROUND_MANAGE)
    form = ExtendForm()
    form.which.choices = [(which, committee.deadline_label(which)) for which in committee.DEADLINES]
    status = 400
    if form.validate_on_submit():
        try:
            new_day = _parse_day(form.new_day.data, "new_day")
            assert new_day is not None
            committee.extend_deadline(
                db(), branch_round, form.which.data or "", new_day, form.reason.data, version=form.version.data or 0
            )
            db().commit()
        except ServiceError as error:
            status = refuse(error, form)
            branch_round = _round_or_404(branch_round_id)
            form.version.data = str(branch_round.version)
        else:
            flash(_("已延长截止日期。"), "success")
            return redirect(url_for(".detail", branch_round_id=branch_round_id))
    return _render_detail(branch_round, status, extend_form=form)


@branch_rounds_bp.post("/<int:branch_round_id>/finalise")
@login_required
def finalise(branch_round_id: int) -> Any:
    branch_round = _round_or_404(branch_round_id)
    require(current_user, Action.BRANCH_DECIDE)
    form = FinaliseForm()
    status = 400
    if form.validate_on_submit():
        try:
            decision.finalise_round(
                db(),
                branch_round,
                meeting_date=_parse_day(form.meeting_date.data, "meeting_date", required=False),
                participants=form.participants.data,
                version=form.version.data,
            )
            from fivestar.branch_rounds.publication_views import notify_after_finalise  # 亮星 (publication part)

            notify_after_finalise(db(), branch_round)  # the result notice to every organisation, same transaction
            db().commit()
        except ServiceError as error:
            status = refuse(error, form)
            branch_round = _round_or_404(branch_round_id)
        else:
            flash(_("%(year)d 年度党支部星级评定结果已确定并公布。", year=branch_round.year), "success")
            return redirect(url_for(".detail", branch_round_id=branch_round_id))
    return _render_detail(branch_round, status, finalise_form=form)


# --- one branch: the dossier and the decision -------------------------------------------------------------


def _render_dossier(rating: BranchRating, status: int = 200, form: DecideForm | None = None,
                    template: str = "branch/committee/dossier.html", **extra: Any) -> Any:
    session = db()
    branch_round = _round_or_404(rating.round_id)
    found = decision.build_dossier(session, branch_round, rating)
    can_decide = (
        authorize(current_user, Action.BRANCH_DECIDE, rating)
        and branch_round.state is BranchRoundState.OPEN
        and rating.step in workflow.TRANSITIONS["decide"].sources
    )
    guidance = None
    if can_decide or authorize(current_user, Action.ROUND_VIEW):
        guidance = decision.round_guidance(session, found.rules, branch_round)
    if form is None:
        form = DecideForm(formdata=None)
        reference = rating.decided_level if rating.decided_level is not None else found.reference_level
        form.level.data = str(reference) if reference is not None else ""
        form.reason.data = rating.decision_reason or ""
    if not form.version.data:
        form.version.data = str(rating.version)
    return (
        render_template(
            template,
            dossier=found,
            rating=rating,
            branch_round=branch_round,
            form=form,
            can_decide=can_decide,
            guidance=guidance,
            tenant_wide=authorize(current_user, Action.ROUND_VIEW),
            **extra,
        ),
        status,
    )


@branch_rounds_bp.get("/dossier/<int:rating_id>")
@login_required
def dossier(rating_id: int) -> Any:
    rating = _rating_or_404(rating_id)
    require_on(Action.ROUND_VIEW, rating)
    return _render_dossier(rating)


@branch_rounds_bp.post("/dossier/<int:rating_id>/decide")
@login_required
def decide(rating_id: int) -> Any:
    rating = _rating_or_404(rating_id)
    require_on(Action.BRANCH_DECIDE, rating)
    branch_round = _round_or_404(rating.round_id)
    form = DecideForm()
    status = 400
    if form.validate_on_submit():
        try:
            decided = decision.decide(
                db(), branch_round, rating, form.level.data, form.reason.data, version=form.version.data
            )
            level = decided.rating.decided_level
            name = rating.branch.name
            db().commit()
        except ServiceError as error:
            status = refuse(error, form)
            rating = _rating_or_404(rating_id)
            form.version.data = str(rating.version)  # what they typed stays; the next save is on the current one
        else:
            flash(_("已定星：%(branch)s %(level)s。", branch=name, level=_level_text(level)), "success")
            for warning in decided.warnings:
                flash(warning, "warning")
            return redirect(url_for(".detail", branch_round_id=branch_round.id))
    return _render_dossier(rating, status, form)


# --- the middle level ------------------------------------------------------------------------------------


def _may_forward_somewhere() -> bool:
    return authorize(current_user, Action.BRANCH_FORWARD) or Action.BRANCH_FORWARD in scoped_actions(current_user)


@org_review_bp.get("/", endpoint="index")
@login_required
def org_queue() -> Any:
    if not _may_forward_somewhere():
        abort(403)
    session = db()
    return render_template(
        "branch/committee/org_queue.html",
        pending=org_review.queue(session, current_user),
        done=org_review.queue(session, current_user, pending=False),
    )


def _render_review(rating: BranchRating, status: int = 200, **forms: Any) -> Any:
    forward_form = forms.get("forward_form") or ForwardForm(formdata=None)
    return_form = forms.get("return_form") or ReturnForm(formdata=None)
    for form in (forward_form, return_form):
        if not form.version.data:
            form.version.data = str(rating.version)
    return _render_dossier(
        rating,
        status,
        template="branch/committee/org_review.html",
        forward_form=forward_form,
        return_form=return_form,
        can_act=rating.step is RatingStep.ORG_REVIEW,
    )


@org_review_bp.get("/<int:rating_id>")
@login_required
def review(rating_id: int) -> Any:
    rating = _rating_or_404(rating_id)
    require_on(Action.BRANCH_FORWARD, rating)
    return _render_review(rating)


@org_review_bp.post("/<int:rating_id>/forward")
@login_required
def forward(rating_id: int) -> Any:
    rating = _rating_or_404(rating_id)
    require_on(Action.BRANCH_FORWARD, rating)
    branch_round = _round_or_404(rating.round_id)
    form = ForwardForm()
    status = 400
    if form.validate_on_submit():
        try:
            org_review.forward(db(), branch_round, rating, form.comment.data, version=form.version.data)
            name = rating.branch.name
            db().commit()
        except ServiceError as error:
            status = refuse(error, form)
            rating = _rating_or_404(rating_id)
        else:
            flash(_("已将“%(branch)s”的评定报送工委。", branch=name), "success")
            return redirect(url_for(".index"))
    return _render_review(rating, status, forward_form=form)


@org_review_bp.post("/<int:rating_id>/return")
@login_required
def return_rating(rating_id: int) -> Any:
    rating = _rating_or_404(rating_id)
    require_on(Action.BRANCH_FORWARD, rating)
    branch_round = _round_or_404(rating.round_id)
    form = ReturnForm()
    status = 400
    if form.validate_on_submit():
        try:
            org_review.org_return(db(), branch_round, rating, form.reason.data, version=form.version.data)
            name = rating.branch.name
            db().commit()
        except ServiceError as error:
            status = refuse(error, form)
            rating = _rating_or_404(rating_id)
        else:
            flash(_("已将“%(branch)s”的评定退回支部。", branch=name), "success")
            return redirect(url_for(".index"))
    return _render_review(rating, status, return_form=form)


# --- 一季一小评 -------------------------------------------------------------------------------------------


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


@quarterly_bp.get("/", endpoint="index")
@login_required
def quarterly_index() -> Any:
    if not _can_view_rounds():
        abort(403)
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


@quarterly_bp.route("/branch/<int:branch_id>", methods=["GET", "POST"])
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
                    session, tenant, rules, branch, raw_year, raw_quarter, request.form, form.summary.data,
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
    try:
        return quarterly.load_review(db(), review_id)
    except NotFoundError:
        abort(404)


@quarterly_bp.route("/<int:review_id>", methods=["GET", "POST"])
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


__all__ = ["branch_rounds_bp", "org_review_bp", "quarterly_bp"]
