"""The committee's side of the annual branch rating (`/t/<slug>/branch-rating/…`).

- `branch_rounds` (/branch-rating): the years' rounds (tenant admins open one and extend its
  deadlines), the committee's table of every branch with the rules' quota guidance, each branch's
  dossier with the decision (定星), and finalising the round in a committee meeting.
- `org_review` (/branch-rating/org-review): the 机关党委/党总支's queue; it forwards a branch's
  rating with its comments or returns it with a reason.
- `quarterly` (/branch-rating/quarterly) is in quarterly_views.py.

Each view loads its object within the tenant (another district's id: 404), authorizes, calls one
service and commits once. Refusals come back on the page with a 4xx and the person's input kept;
a form someone else saved first answers 409.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from fivestar.accounts.policy import Action, authorize, require, scoped_actions
from fivestar.branch_rounds import ballot_meeting, committee, core, decision, org_review, quarterly, workflow
from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, RatingStep
from fivestar.branch_rounds.opening import default_deadlines, open_branch_round
from fivestar.errors import ServiceError
from fivestar.i18n import _, _l
from fivestar.rules import LEVELS, level_label
from fivestar.standing import queries as standing_queries
from fivestar.tenants.models import RuleSetVersion
from fivestar.timekeeping import clock
from fivestar.web import round_pages
from fivestar.web.refusals import require_on
from fivestar.web.round_pages import DeadlineForm, deadline_form, page, parse_day, submit, versioned, with_row
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

branch_rating_committee_bp = Blueprint("branch_rating_committee", __name__, url_prefix="/branch-rating")
branch_rating_org_review_bp = Blueprint("branch_rating_org_review", __name__, url_prefix="/branch-rating/org-review")


# --- forms ---------------------------------------------------------------------------------------------


class OpenRoundForm(FlaskForm):
    year = StringField(_l("评定年度"), validators=[Length(max=4)], render_kw={"inputmode": "numeric"})
    self_report_due = StringField(_l("自评上报截止日"), validators=[Length(max=20)], render_kw={"type": "date"})
    committee_due = StringField(_l("工委定星截止日"), validators=[Length(max=20)], render_kw={"type": "date"})


class ExtendForm(DeadlineForm):
    which = SelectField(_l("期限"), choices=[], validate_choice=False)


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


# --- helpers ---------------------------------------------------------------------------------------------


def template_helpers() -> dict[str, Any]:
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


for _bp in (branch_rating_committee_bp, branch_rating_org_review_bp):
    _bp.context_processor(template_helpers)


def _group_label(name: object) -> str:
    """The voter group's name (the ballot part's own words)."""
    return ballot_meeting.group_label(str(name))


def _level_text(level: int | None) -> str:
    return level_label(level) if level is not None else "—"


def _round_or_404(branch_round_id: int) -> BranchRound:
    return round_pages.or_404(core.load_round, branch_round_id)


def _rating_or_404(rating_id: int) -> BranchRating:
    return round_pages.or_404(core.load_rating, rating_id)


def _deadline_choices() -> list[tuple[str, str]]:
    return [(which, committee.deadline_label(which)) for which in committee.DEADLINES]


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


@branch_rating_committee_bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> Any:
    tenant = current_tenant()
    require(current_user, Action.TENANT_VIEW, tenant)
    round_pages.require_view_rounds()
    can_manage = authorize(current_user, Action.ROUND_MANAGE)
    form = OpenRoundForm()
    status = 200
    if request.method == "POST":
        require(current_user, Action.ROUND_MANAGE)

        def open_year() -> Any:
            year_text = (form.year.data or "").strip()
            try:
                year = int(year_text) if year_text else None
            except ValueError:
                raise ServiceError(_("请填写评定年度，如 2025"), field="year") from None
            return open_branch_round(
                db(),
                tenant,
                year=year,
                self_report_due=parse_day(form.self_report_due.data, "self_report_due", required=False),
                committee_due=parse_day(form.committee_due.data, "committee_due", required=False),
            )

        outcome = submit(
            form,
            open_year,
            done=lambda opened: (
                _(
                    "已开启 %(year)d 年度党支部星级评定：%(n)d 个党支部参评。",
                    year=opened.round.year, n=opened.branches,
                ),
                url_for(".detail", branch_round_id=opened.round.id),
            ),
        )
        if not isinstance(outcome, int):
            return outcome
        status = outcome
    past_hint = _open_form_defaults(form) if can_manage else None
    return page(
        "branch/committee/index.html", status, form=form, can_manage=can_manage, steps=committee.STEPS,
        rows=committee.rounds_overview(db(), current_user), past_hint=past_hint,
        tenant_wide=authorize(current_user, Action.ROUND_VIEW), mine=committee.my_ratings(db(), current_user),
        org_staff=Action.BRANCH_FORWARD in scoped_actions(current_user),
        can_decide=authorize(current_user, Action.BRANCH_DECIDE),
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
    deadline_form(extend_form, branch_round, _deadline_choices())
    finalise_form = versioned(forms.get("finalise_form") or FinaliseForm(formdata=None), branch_round)
    is_open = branch_round.state is BranchRoundState.OPEN
    return page(
        "branch/committee/detail.html", status, branch_round=branch_round, rules=rules,
        rules_version=_rules_version_number(branch_round), rows=rows, guidance=guidance, steps=steps,
        extend_form=extend_form, finalise_form=finalise_form,
        can_extend=is_open and authorize(current_user, Action.ROUND_MANAGE),
        can_finalise=is_open and authorize(current_user, Action.BRANCH_DECIDE),
        finalise_refusal=workflow.round_refusal("finalise", branch_round.state, steps),
        **_standing_of(branch_round, [row.rating.branch_id for row in rows]),
    )


def _standing_of(branch_round: BranchRound, branch_ids: list[int]) -> dict[str, Any]:
    """增星摘星: for a finalised year, each branch's current level (one statement), to show beside the
    decision where it was adjusted since; nothing for a year still open."""
    finalised = branch_round.state is BranchRoundState.FINALISED
    return {
        "current": standing_queries.current_branch_levels(db(), branch_ids) if finalised else {},
        "adjusted_since": standing_queries.adjusted_since,
    }


@branch_rating_committee_bp.get("/<int:branch_round_id>")
@login_required
@with_row(core.load_round)
def detail(branch_round: BranchRound) -> Any:
    _require_tenant_wide()
    return _render_detail(branch_round)


round_pages.add_extend_route(
    branch_rating_committee_bp, "/<int:branch_round_id>/extend", core.load_round, ExtendForm, _deadline_choices,
    committee.extend_deadline, render=_render_detail,
)


@branch_rating_committee_bp.post("/<int:branch_round_id>/finalise")
@login_required
@with_row(core.load_round)
def finalise(branch_round: BranchRound) -> Any:
    require(current_user, Action.BRANCH_DECIDE)
    branch_round_id = branch_round.id
    form = FinaliseForm()

    def finalise_and_notify() -> BranchRound:
        decision.finalise_round(
            db(),
            branch_round,
            meeting_date=parse_day(form.meeting_date.data, "meeting_date", required=False),
            participants=form.participants.data,
            version=form.version.data,
        )
        from fivestar.branch_rounds.publication_views import notify_after_finalise  # 亮星 (publication part)

        notify_after_finalise(db(), branch_round)  # the result notice to every organisation, same transaction
        return branch_round

    year = branch_round.year
    outcome = submit(
        form,
        finalise_and_notify,
        done=lambda _round: (
            _("%(year)d 年度党支部星级评定结果已确定并公布。", year=year),
            url_for(".detail", branch_round_id=branch_round_id),
        ),
        refused=lambda: _round_or_404(branch_round_id),
    )
    return _render_detail(branch_round, outcome, finalise_form=form) if isinstance(outcome, int) else outcome


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
    return page(
        template, status, dossier=found, rating=rating, branch_round=branch_round, form=versioned(form, rating),
        can_decide=can_decide, guidance=guidance, tenant_wide=authorize(current_user, Action.ROUND_VIEW),
        **_standing_of(branch_round, [rating.branch_id]), **extra,
    )


@branch_rating_committee_bp.get("/dossier/<int:rating_id>")
@login_required
@with_row(core.load_rating, Action.ROUND_VIEW)
def dossier(rating: BranchRating) -> Any:
    return _render_dossier(rating)


@branch_rating_committee_bp.post("/dossier/<int:rating_id>/decide")
@login_required
@with_row(core.load_rating, Action.BRANCH_DECIDE)
def decide(rating: BranchRating) -> Any:
    rating_id = rating.id
    branch_round = _round_or_404(rating.round_id)
    form = DecideForm()
    name = rating.branch.name

    def decided(result: decision.Decided) -> tuple[str, str]:
        for warning in result.warnings:
            flash(warning, "warning")
        level = _level_text(result.rating.decided_level)
        return _("已定星：%(branch)s %(level)s。", branch=name, level=level), url_for(
            ".detail", branch_round_id=branch_round.id
        )

    outcome = submit(
        form,
        lambda: decision.decide(
            db(), branch_round, rating, form.level.data, form.reason.data, version=form.version.data
        ),
        done=decided,
        # What they typed stays; the next save is on the current version.
        refused=lambda: setattr(form.version, "data", str(_rating_or_404(rating_id).version)),
    )
    return _render_dossier(rating, outcome, form) if isinstance(outcome, int) else outcome


# --- the middle level ------------------------------------------------------------------------------------


def _may_forward_somewhere() -> bool:
    return authorize(current_user, Action.BRANCH_FORWARD) or Action.BRANCH_FORWARD in scoped_actions(current_user)


@branch_rating_org_review_bp.get("/", endpoint="index")
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
    forward_form = versioned(forms.get("forward_form") or ForwardForm(formdata=None), rating)
    return_form = versioned(forms.get("return_form") or ReturnForm(formdata=None), rating)
    return _render_dossier(
        rating,
        status,
        template="branch/committee/org_review.html",
        forward_form=forward_form,
        return_form=return_form,
        can_act=rating.step is RatingStep.ORG_REVIEW,
    )


@branch_rating_org_review_bp.get("/<int:rating_id>")
@login_required
@with_row(core.load_rating, Action.BRANCH_FORWARD)
def review(rating: BranchRating) -> Any:
    return _render_review(rating)


def _org_decision(
    rating_id: int, form: ForwardForm | ReturnForm, service: Any, message: Callable[[str], str], *, field: str,
    form_name: str,
) -> Any:
    """Forward or return (the 机关党委/党总支's two answers): the same page, the same refusal handling."""
    rating = _rating_or_404(rating_id)
    require_on(Action.BRANCH_FORWARD, rating)
    branch_round = _round_or_404(rating.round_id)
    name = rating.branch.name
    outcome = submit(
        form,
        lambda: service(db(), branch_round, rating, form.data[field], version=form.version.data),
        done=lambda _rating: (message(name), url_for(".index")),
        refused=lambda: _rating_or_404(rating_id),
    )
    if isinstance(outcome, int):
        return _render_review(rating, outcome, **{form_name: form})
    return outcome


@branch_rating_org_review_bp.post("/<int:rating_id>/forward")
@login_required
def forward(rating_id: int) -> Any:
    return _org_decision(
        rating_id, ForwardForm(), org_review.forward, lambda name: _("已将“%(branch)s”的评定报送工委。", branch=name),
        field="comment", form_name="forward_form",
    )


@branch_rating_org_review_bp.post("/<int:rating_id>/return")
@login_required
def return_rating(rating_id: int) -> Any:
    return _org_decision(
        rating_id, ReturnForm(), org_review.org_return,
        lambda name: _("已将“%(branch)s”的评定退回支部。", branch=name), field="reason", form_name="return_form",
    )


__all__ = ["branch_rating_committee_bp", "branch_rating_org_review_bp"]
