"""What a member does and sees in a round (`/t/<slug>/rounds/…`): the self-assessment on a phone,
their levels over time, the honour roll, and the desk card PDF.

Each view loads within the current tenant (another tenant's id is simply not found: 404), checks
`authorize`/`require`, calls one service, commits once and redirects. A member only ever reaches
their own evaluation: anyone else's answers 404, as if it did not exist. A refused save shows the
page again with everything typed kept, the reason, and a 4xx.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, TextAreaField

from fivestar.accounts.policy import Action, authorize, require
from fivestar.documents import desk_card as desk_card_report
from fivestar.errors import ConflictError, NotFoundError, ServiceError
from fivestar.i18n import _, _l
from fivestar.member_rounds import core, honour, self_assessment
from fivestar.member_rounds.core import ScoreField
from fivestar.member_rounds.models import Evaluation, EvaluationStatus, RoundState, SelfState
from fivestar.member_rounds.self_assessment import FieldGroup
from fivestar.member_rounds.workflow import EDITABLE_SELF, step_label
from fivestar.rules import level_label
from fivestar.standing import queries as standing_queries
from fivestar.tenants.models import RuleSetVersion
from fivestar.web.downloads import download
from fivestar.web.errors import user_error
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

self_assessment_bp = Blueprint("member_round_self_assessment", __name__, url_prefix="/rounds/self")
my_ratings_bp = Blueprint("member_round_my_ratings", __name__, url_prefix="/rounds/mine")
honour_bp = Blueprint("member_round_honour", __name__, url_prefix="/rounds/honour")
desk_card_bp = Blueprint("member_round_desk_card", __name__, url_prefix="/rounds/card")

MEMBER_BLUEPRINTS = [self_assessment_bp, my_ratings_bp, honour_bp, desk_card_bp]


@self_assessment_bp.app_template_global("has_endpoint")
def has_endpoint(endpoint: str) -> bool:
    """Whether a page exists in this build (parts of a round are built by different people; a page
    links to another only once it exists)."""
    return endpoint in current_app.view_functions


class SelfAssessmentForm(FlaskForm):
    """CSRF, the two texts and the version; the score inputs follow the rules and are read from
    the request by name (ScoreField.name)."""

    pledge = TextAreaField(_l("承诺践诺情况"))
    summary = TextAreaField(_l("个人总结"))
    version = HiddenField()


def _evaluation_or_404(evaluation_id: int) -> Evaluation:
    try:
        return core.load_evaluation(db(), evaluation_id)
    except NotFoundError:
        abort(404)


def _own_evaluation(evaluation_id: int) -> Evaluation:
    evaluation = _evaluation_or_404(evaluation_id)
    require(current_user, Action.SELF_ASSESS, evaluation)  # someone else's: 404
    return evaluation


def _member_id() -> int | None:
    return getattr(current_user, "member_id", None)


# --- 我的评定: the member's evaluations -------------------------------------------------------------


@self_assessment_bp.get("/")
@login_required
def mine() -> Any:
    require(current_user, Action.TENANT_VIEW, current_tenant())
    member_id = _member_id()
    ratings = honour.member_ratings(db(), member_id) if member_id is not None else []
    # the current (open) round first, then the others newest first
    ratings.sort(key=lambda rating: rating.round.state is not RoundState.OPEN)
    return render_template(
        "rounds/member/mine.html",
        ratings=ratings,
        has_member=member_id is not None,
        period_label=honour.period_label,
        state_label=self_assessment.state_label,
        step_label=step_label,
        editable_states=EDITABLE_SELF,
        SelfState=SelfState,
        RoundState=RoundState,
        EvaluationStatus=EvaluationStatus,
    )


# --- 个人自评 ------------------------------------------------------------------------------------------


def _num(number: Decimal | None) -> str:
    """A score as people write it: 20, 12.5 (not 20.00)."""
    if number is None:
        return ""
    return format(number.normalize(), "f") if number == number.to_integral_value() else format(number, "f").rstrip("0")


def _subtotal(group: FieldGroup, values: dict[str, str]) -> Decimal | None:
    """The sum of a group's inputs that read as numbers (as the page's script shows it)."""
    return _sum(group.fields, values)


def _sum(fields: Iterable[ScoreField], values: dict[str, str]) -> Decimal | None:
    total, seen = Decimal(0), False
    for field in fields:
        text = (values.get(field.name) or "").strip().replace("，", ".")
        if not text:
            continue
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
        if not number.is_finite():
            return None
        total, seen = total + number, True
    return total if seen else None


@self_assessment_bp.route("/<int:evaluation_id>", methods=["GET", "POST"])
@login_required
def edit(evaluation_id: int) -> Any:
    evaluation = _own_evaluation(evaluation_id)
    ctx = self_assessment.context(db(), evaluation)
    groups = self_assessment.field_groups(ctx.rules)
    form = SelfAssessmentForm()
    stored = self_assessment.stored_scores(db(), evaluation)
    values = self_assessment.as_form_values(stored)
    errors: dict[str, str] = {}
    conflict: dict[str, Any] | None = None
    status = 200
    if request.method == "GET":
        form.pledge.data = evaluation.pledge or ""
        form.summary.data = evaluation.summary or ""
        form.version.data = str(evaluation.version)
    else:
        values = {field.name: str(request.form.get(field.name, "")) for group in groups for field in group.fields}
        submit = request.form.get("action") == "submit"
        if not form.validate_on_submit():
            flash(_("表单已过期或来源无效，请刷新页面后重新提交。"), "error")
            status = 400
        else:
            try:
                self_assessment.save(
                    db(), evaluation, current_user, values, form.pledge.data, form.summary.data,
                    submit=submit, version=form.version.data,
                )
                db().commit()
            except ServiceError as error:
                db().rollback()
                status = error.status
                errors = getattr(error, "errors", {})
                flash(error.message, "error")
                evaluation = _own_evaluation(evaluation_id)
                ctx = self_assessment.context(db(), evaluation)
                if isinstance(error, ConflictError):
                    # Keep what the person typed; show what is stored now; a second save is deliberate.
                    now_stored = self_assessment.stored_scores(db(), evaluation)
                    conflict = {
                        "scores": self_assessment.as_form_values(now_stored),
                        "pledge": evaluation.pledge,
                        "summary": evaluation.summary,
                        "state": evaluation.self_state,
                    }
                    form.version.data = str(evaluation.version)
            else:
                flash(_("已提交自评。") if submit else _("已保存草稿。"), "success")
                return redirect(url_for(".edit", evaluation_id=evaluation_id))
    refused = self_assessment.refusal(evaluation, "save_draft", ctx.facts)
    preview = None
    if stored and len(stored) == sum(len(group.fields) for group in groups):
        preview = core.evaluate(ctx.rules, stored)
    return render_template(
        "rounds/member/edit.html",
        evaluation=evaluation,
        round=ctx.round,
        round_branch=ctx.round_branch,
        rules=ctx.rules,
        groups=groups,
        form=form,
        values=values,
        errors=errors,
        conflict=conflict,
        editable=refused is None,
        closed_reason=refused.message if refused is not None else None,
        preview=preview,
        subtotal=_subtotal,
        all_total=_sum((field for group in groups for field in group.fields), values),
        num=_num,
        kind_labels=self_assessment.KIND_LABELS,
        show_kinds=len({group.kind for group in groups}) > 1,
        sums_aspects=ctx.rules.member.scheme.type_name == "sum_of_aspects",
        period_label=honour.period_label,
        state_label=self_assessment.state_label,
        step_label=step_label,
        SelfState=SelfState,
    ), status


# --- 我的星级: levels over time ------------------------------------------------------------------------


@my_ratings_bp.get("/")
@login_required
def index() -> Any:
    require(current_user, Action.TENANT_VIEW, current_tenant())
    member_id = _member_id()
    ratings = honour.member_ratings(db(), member_id) if member_id is not None else []
    # one rule set per version (rounds usually share one): it names the levels, e.g. 不合格 for 0
    first_of_version = {rating.round.rules_version_id: rating.round for rating in ratings}
    rules_by_version = {version: core.round_rules(db(), rnd) for version, rnd in first_of_version.items()}
    current = standing_queries.current_member_levels(db(), [member_id]) if member_id is not None else {}
    return render_template(
        "rounds/member/ratings.html",
        ratings=ratings,
        has_member=member_id is not None,
        current=current.get(member_id) if member_id is not None else None,
        member_id=member_id,
        level_name=_member_level_name,
        rules_by_version=rules_by_version,
        period_label=honour.period_label,
        step_label=step_label,
    )


# --- 光荣榜 --------------------------------------------------------------------------------------------


@honour_bp.get("/", endpoint="index")
@login_required
def index_rounds() -> Any:
    require(current_user, Action.TENANT_VIEW, current_tenant())
    return render_template(
        "rounds/member/honour_index.html", rounds=honour.rounds_for_honour(db()), period_label=honour.period_label
    )


@honour_bp.get("/round/<int:round_id>", endpoint="round")
@login_required
def round_roll(round_id: int) -> Any:
    require(current_user, Action.TENANT_VIEW, current_tenant())
    try:
        member_round = core.load_round(db(), round_id)
    except NotFoundError:
        abort(404)
    roll = honour.honour_roll(db(), member_round)
    return render_template(
        "rounds/member/honour.html", roll=roll, single=None, period_label=honour.period_label, step_label=step_label,
        **_current_on_roll(roll),
    )


@honour_bp.get("/branch/<int:round_branch_id>", endpoint="branch")
@login_required
def branch_roll(round_branch_id: int) -> Any:
    require(current_user, Action.TENANT_VIEW, current_tenant())
    try:
        round_branch = core.load_round_branch(db(), round_branch_id)
        member_round = core.load_round(db(), round_branch.round_id)
    except NotFoundError:
        abort(404)
    roll = honour.honour_roll(db(), member_round, round_branch_id=round_branch.id)
    return render_template(
        "rounds/member/honour.html",
        roll=roll,
        single=roll.branches[0] if roll.branches else None,
        period_label=honour.period_label,
        step_label=step_label,
        **_current_on_roll(roll),
    )


def _member_level_name(level: int | None) -> str:
    return level_label(level, "member")


def _current_on_roll(roll: honour.HonourRoll) -> dict[str, Any]:
    """增星摘星: each honoured member's current level (one statement), to mark those adjusted since."""
    ids = [m.member_id for branch in roll.published for m in branch.members]
    return {
        "current": standing_queries.current_member_levels(db(), ids),
        "adjusted_since": standing_queries.adjusted_since,
        "level_name": _member_level_name,
    }


# --- 星级桌牌 -----------------------------------------------------------------------------------------


@desk_card_bp.get("/<int:evaluation_id>.pdf", endpoint="pdf")
@login_required
def card_pdf(evaluation_id: int) -> Any:
    """The member's own card, or — for the branch (and the committee) — any of its members'; only
    once the branch's results are final, and only for a member who has a level."""
    evaluation = _evaluation_or_404(evaluation_id)
    own = authorize(current_user, Action.SELF_ASSESS, evaluation)
    if not (own or authorize(current_user, Action.ROUND_VIEW, evaluation)):
        abort(404)
    member_round = core.load_round(db(), evaluation.round_id)
    round_branch = core.load_round_branch(db(), evaluation.round_branch_id)
    if not honour.results_published(member_round, round_branch.step):
        raise user_error(409, _("支部的评定结果上报后才能打印星级桌牌"))
    level = evaluation.level
    if evaluation.status is not EvaluationStatus.ACTIVE or level is None or evaluation.rated is False:
        raise user_error(409, _("本期没有评定星级，不能打印星级桌牌"))
    rules = core.round_rules(db(), member_round)
    version_number = db().scalar(
        select(RuleSetVersion.version).where(RuleSetVersion.id == member_round.rules_version_id)
    )
    # 增星摘星: a level adjusted since this period's result is what the card shows, and says so.
    now = standing_queries.current_member_levels(db(), [evaluation.member_id]).get(evaluation.member_id)
    adjusted_on = None
    if now is not None and now.adjusted and now.level is not None and now.level != level:
        level, adjusted_on = now.level, now.since
    label = rules.level_label(level, "member")
    card = desk_card_report.DeskCard(
        tenant_name=g.tenant.name,
        member_name=evaluation.member.name,
        branch_name=evaluation.branch.name,
        period_label=honour.period_label(member_round.period_key),
        level=level,
        title=_("%(level)s党员", level=label) if level > 0 else label,
        heading=_("党员星级评定"),
        provenance=_(
            "评定期次 %(period)s · 规则第 %(version)s 版 · 编号 %(id)d",
            period=member_round.period_key, version=version_number or "?", id=evaluation.id,
        )
        + (_(" · %(day)s 经工委调整", day=adjusted_on.date().isoformat()) if adjusted_on is not None else ""),
    )
    data = desk_card_report.render(card)
    filename = _("星级桌牌-%(name)s-%(period)s.pdf", name=evaluation.member.name, period=member_round.period_key)
    return download(data, filename)
