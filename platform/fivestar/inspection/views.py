"""The inspectors' pages (`/t/<slug>/inspection/…`): audit trail, spot checks, anomaly report.

Readers are whoever holds `Action.AUDIT_VIEW` (督查组, 工委委员, administrators); anyone else gets 403,
and another district's event, draw, evaluation or branch id is not found (404). Everything is
read-only except drawing a spot check, which is recorded and audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fivestar.accounts.policy import Action, require
from fivestar.branch_rounds.models import BranchRating, BranchRound
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.inspection import anomalies, services, trail
from fivestar.inspection.forms import SpotCheckForm, TrailFilterForm
from fivestar.inspection.models import SpotCheck
from fivestar.member_rounds import core as member_core
from fivestar.member_rounds.models import (
    Evaluation,
    EvaluationStatus,
    MemberRound,
    Objection,
    RoundBranch,
    ScoreStage,
)
from fivestar.member_rounds.workflow import step_label
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.rules import InputError, RuleSet, level_label
from fivestar.tenancy import require_tenant_id
from fivestar.web.refusals import refuse
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

inspection_bp = Blueprint("inspection", __name__, url_prefix="/inspection")
T = TypeVar("T")


def _reader() -> None:
    """Only audit readers (督查组, 工委委员, administrators) open these pages: 403 for everyone else."""
    require(current_user, Action.AUDIT_VIEW)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _link(endpoint: str | None, values: dict[str, Any]) -> str | None:
    if endpoint is None or endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **values)


def _round_label(member_round_id: int | None, branch_round_id: int | None) -> str:
    if member_round_id is not None:
        period = db().scalar(select(MemberRound.period_key).where(MemberRound.id == member_round_id))
        return trail.member_round_label(period or "?")
    year = db().scalar(select(BranchRound.year).where(BranchRound.id == branch_round_id))
    return trail.branch_round_label(year or 0)


# --- hub -------------------------------------------------------------------------------------------


@inspection_bp.get("/")
@login_required
def index() -> Any:
    _reader()
    return render_template("inspection/index.html")


# --- audit trail --------------------------------------------------------------------------------


def _date(form_field: Any) -> dt.date | None:
    text = (form_field.data or "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        form_field.errors = [*form_field.errors, _("日期格式应为 2026-04-30")]
        return None


def _filters(form: TrailFilterForm, tenant_id: int) -> trail.TrailFilters:
    """The filters the form asks for; bad values get a message on their field (the page answers 400)."""
    session = db()
    orgs = list(
        session.execute(
            select(Organisation.id, Organisation.name, Organisation.path).order_by(Organisation.path)
        )
    )
    depth0 = min((path.count("/") for _i, _n, path in orgs), default=0)
    form.actor.choices = [("", _("全部")), *trail.actor_choices(session, tenant_id)]
    form.org.choices = [("", _("全部组织"))] + [
        (str(ident), "\u3000" * (path.count("/") - depth0) + name) for ident, name, path in orgs
    ]
    form.round.choices = [("", _("全部轮次"))] + [(c.value, c.label) for c in trail.round_choices(session, tenant_id)]
    form.family.choices = [("", _("全部事项")), *trail.family_choices()]
    for select_field in (form.actor, form.org, form.round, form.family):
        if select_field.data and select_field.data not in {value for value, _label in select_field.choices}:
            select_field.errors = [*select_field.errors, _("请从列表中选择")]
    member_id = None
    wanted = (form.member.data or "").strip()
    if wanted:
        found = list(
            session.execute(
                select(Member.id, Member.member_no)
                .where(or_(Member.member_no == wanted, Member.name == wanted))
                .order_by(Member.id)
                .limit(5)
            )
        )
        by_number = [ident for ident, number in found if number == wanted]
        if by_number:
            member_id = by_number[0]
        elif len(found) == 1:
            member_id = found[0][0]
        elif found:
            form.member.errors = [*form.member.errors, _("有多名党员同名，请输入党员编号")]
        else:
            form.member.errors = [*form.member.errors, _("没有找到该党员")]
    org_path = None
    if form.org.data and not form.org.errors:
        org_path = next((path for ident, _n, path in orgs if str(ident) == form.org.data), None)
    chosen = trail.parse_round(form.round.data) if not form.round.errors else None
    date_from, date_to = _date(form.date_from), _date(form.date_to)
    if date_from and date_to and date_from > date_to:
        form.date_to.errors = [*form.date_to.errors, _("截止日期不能早于起始日期")]
    return trail.TrailFilters(
        actor=form.actor.data or None if not form.actor.errors else None,
        member_id=member_id,
        org_path=org_path,
        member_round_id=chosen[1] if chosen and chosen[0] == "member" else None,
        branch_round_id=chosen[1] if chosen and chosen[0] == "branch" else None,
        family=form.family.data or None if not form.family.errors else None,
        date_from=date_from,
        date_to=date_to,
    )


@inspection_bp.get("/audit")
@login_required
def audit_trail() -> Any:
    _reader()
    tenant = current_tenant()
    tenant_id = require_tenant_id()
    form = TrailFilterForm(formdata=request.args)
    filters = _filters(form, tenant_id)
    failed = any(f.errors for f in form)
    cursor = trail.decode_cursor(request.args.get("after"))
    if request.args.get("after") and cursor is None:
        failed = True
    page = None
    if not failed:
        page = trail.trail_page(db(), tenant_id, filters, zone=tenant.timezone, cursor=cursor)
    args = {key: value for key, value in request.args.items() if key != "after" and value}
    status = 400 if failed else 200
    return render_template("inspection/audit.html", form=form, page=page, args=args, failed=failed), status


@inspection_bp.get("/audit/<int:event_id>")
@login_required
def event(event_id: int) -> Any:
    _reader()
    tenant_id = require_tenant_id()
    found = trail.load_event(db(), tenant_id, event_id)
    if found is None:
        abort(404)
    entry = trail.describe(db(), tenant_id, [found])[0]
    return render_template("inspection/event.html", entry=entry)


# --- spot checks ----------------------------------------------------------------------------------


def _spot_form(form: SpotCheckForm) -> None:
    form.round.choices = [("", _("请选择"))] + [
        (c.value, c.label) for c in trail.round_choices(db(), require_tenant_id())
    ]


def _recent() -> list[tuple[SpotCheck, str]]:
    checks = services.recent_spot_checks(db())
    labels = {c.value: c.label for c in trail.round_choices(db(), require_tenant_id())}
    return [
        (check, labels.get(f"m{check.member_round_id}" if check.member_round_id else f"b{check.branch_round_id}", ""))
        for check in checks
    ]


@inspection_bp.route("/spot-checks", methods=["GET", "POST"])
@login_required
def spot_checks() -> Any:
    _reader()
    form = SpotCheckForm()
    _spot_form(form)
    status = 200
    if form.validate_on_submit():
        chosen = trail.parse_round(form.round.data)
        try:
            if chosen is None:
                raise ServiceError(_("请选择评定轮次"), field="round")
            check = services.draw_spot_check(
                db(),
                round_kind=chosen[0],
                round_id=chosen[1],
                branches=form.branches.data,
                members=form.members.data,
                seed=form.seed.data,
                account_id=getattr(current_user, "account_id", None),
            )
            new_id = check.id
            db().commit()
        except ServiceError as error:
            status = refuse(error, form)
            if isinstance(error, NotFoundError):
                status = 400  # a stale or forged choice in the form, not a missing page
        else:
            return redirect(url_for(".spot_check", check_id=new_id))
    elif request.method == "POST":
        status = 400
    return render_template("inspection/spot_checks.html", form=form, recent=_recent()), status


@inspection_bp.get("/spot-checks/<int:check_id>")
@login_required
def spot_check(check_id: int) -> Any:
    _reader()
    session = db()
    check = services.load_spot_check(session, check_id)
    if check is None:
        abort(404)
    branches: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    if check.member_round_id is not None:
        found_branches = {
            branch_id: (ident, name)
            for ident, branch_id, name in session.execute(
                select(RoundBranch.id, RoundBranch.branch_id, Organisation.name)
                .join(Organisation, Organisation.id == RoundBranch.branch_id)
                .where(RoundBranch.round_id == check.member_round_id, RoundBranch.branch_id.in_(check.branch_ids))
            )
        }
        for branch_id in check.branch_ids:
            ident, name = found_branches.get(branch_id, (None, str(branch_id)))
            branches.append(
                {"name": name, "url": url_for(".round_branch", round_branch_id=ident) if ident else None}
            )
        found_members = {
            member_id: (ident, name, number, branch)
            for ident, member_id, name, number, branch in session.execute(
                select(Evaluation.id, Evaluation.member_id, Member.name, Member.member_no, Organisation.name)
                .join(Member, Member.id == Evaluation.member_id)
                .join(Organisation, Organisation.id == Evaluation.branch_id)
                .where(Evaluation.round_id == check.member_round_id, Evaluation.member_id.in_(check.member_ids))
            )
        }
        for member_id in check.member_ids:
            ident, name, number, branch = found_members.get(member_id, (None, str(member_id), "", ""))
            members.append(
                {
                    "name": name,
                    "number": number,
                    "branch": branch,
                    "url": url_for(".evaluation", evaluation_id=ident) if ident else None,
                }
            )
    else:
        found_ratings = {
            branch_id: (ident, name)
            for ident, branch_id, name in session.execute(
                select(BranchRating.id, BranchRating.branch_id, Organisation.name)
                .join(Organisation, Organisation.id == BranchRating.branch_id)
                .where(BranchRating.round_id == check.branch_round_id, BranchRating.branch_id.in_(check.branch_ids))
            )
        }
        for branch_id in check.branch_ids:
            ident, name = found_ratings.get(branch_id, (None, str(branch_id)))
            branches.append(
                {
                    "name": name,
                    "url": _link("tenant.branch_rating_committee.dossier", {"rating_id": ident}) if ident else None,
                }
            )
    _again_branches, _again_members, same = services.repeat(session, check)
    return render_template(
        "inspection/spot_check.html",
        check=check,
        round_label=_round_label(check.member_round_id, check.branch_round_id),
        branches=branches,
        members=members,
        same=same,
    )


# --- anomalies ------------------------------------------------------------------------------------


@inspection_bp.get("/anomalies")
@login_required
def anomaly_report() -> Any:
    _reader()
    session = db()
    tenant_id = require_tenant_id()
    choices = trail.round_choices(session, tenant_id)
    wanted = request.args.get("round") or (choices[0].value if choices else "")
    chosen = trail.parse_round(wanted)
    if wanted and (chosen is None or wanted not in {c.value for c in choices}):
        abort(404)
    report = None
    if chosen is not None:
        if chosen[0] == "member":
            member_round = session.scalar(select(MemberRound).where(MemberRound.id == chosen[1]))
            if member_round is None:
                abort(404)
            report = anomalies.member_round_report(session, tenant_id, member_round)
        else:
            branch_round = session.scalar(select(BranchRound).where(BranchRound.id == chosen[1]))
            if branch_round is None:
                abort(404)
            report = anomalies.branch_round_report(session, tenant_id, branch_round)
    for line in report.lines if report else []:
        line.url = _link(line.endpoint, line.values)
    return render_template(
        "inspection/anomalies.html",
        choices=choices,
        chosen=wanted,
        report=report,
        kinds=anomalies.KINDS,
    )


# --- the records a draw or an anomaly links to -------------------------------------------------------


def _total(rules: Any, scores: dict[Any, Decimal]) -> Decimal | None:
    if not scores:
        return None
    try:
        return member_core.evaluate(rules, scores).scheme_total
    except InputError:
        return None


def _or_404(load: Callable[[Session, int], T], object_id: int) -> T:
    """A member round's object by id within the district, or 404 (another district's id too)."""
    try:
        return load(db(), object_id)
    except NotFoundError:
        abort(404)


def _round_and_rules(round_id: int) -> tuple[MemberRound, RuleSet]:
    member_round = member_core.load_round(db(), round_id)
    return member_round, member_core.round_rules(db(), member_round)


@inspection_bp.get("/evaluations/<int:evaluation_id>")
@login_required
def evaluation(evaluation_id: int) -> Any:
    """A member's result record in one round: scores per stage, totals, level, objections."""
    _reader()
    session = db()
    found = _or_404(member_core.load_evaluation, evaluation_id)
    member_round, rules = _round_and_rules(found.round_id)
    stages = (ScoreStage.SELF, ScoreStage.JOINT, ScoreStage.FINAL)
    scores = member_core.read_scores(session, [found.id], stages)
    fields = member_core.score_fields(rules) + member_core.bonus_fields(rules)
    rows = [
        {"label": f.label, "cells": [scores.get((found.id, stage), {}).get(f.key) for stage in stages]}
        for f in fields
    ]
    totals = [
        _total(rules, {k: v for k, v in scores.get((found.id, stage), {}).items() if k[0].value != "bonus"})
        for stage in stages
    ]
    objections = list(
        session.scalars(select(Objection).where(Objection.evaluation_id == found.id).order_by(Objection.filed_at))
    )
    return render_template(
        "inspection/evaluation.html",
        evaluation=found,
        member=found.member,
        branch=found.branch,
        round_label=trail.member_round_label(member_round.period_key),
        round_value=f"m{member_round.id}",
        rows=rows,
        totals=totals,
        level=level_label(found.level, "member", rules.member.below_label) if found.total is not None else "—",
        tolerance=rules.member.joint_tolerance,
        objections=objections,
    )


@inspection_bp.get("/round-branches/<int:round_branch_id>")
@login_required
def round_branch(round_branch_id: int) -> Any:
    """A branch in one member round: its step, its meeting and every member's joint and final totals."""
    _reader()
    session = db()
    found = _or_404(member_core.load_round_branch, round_branch_id)
    member_round, rules = _round_and_rules(found.round_id)
    totals = anomalies.stage_totals(session, member_round, [Evaluation.round_branch_id == found.id])
    rows = []
    for ident, name, number, total, level, status in session.execute(
        select(Evaluation.id, Member.name, Member.member_no, Evaluation.total, Evaluation.level, Evaluation.status)
        .join(Member, Member.id == Evaluation.member_id)
        .where(Evaluation.round_branch_id == found.id)
        .order_by(Member.member_no, Evaluation.id)
    ):
        rows.append(
            {
                "id": ident,
                "name": name,
                "number": number,
                "joint": totals.get(ident, {}).get(ScoreStage.JOINT),
                "final": totals.get(ident, {}).get(ScoreStage.FINAL),
                "total": total,
                "level": level_label(level, "member", rules.member.below_label) if total is not None else "—",
                "active": status == EvaluationStatus.ACTIVE,
            }
        )
    return render_template(
        "inspection/round_branch.html",
        round_branch=found,
        branch=found.branch,
        step=step_label(found.step),
        round_label=trail.member_round_label(member_round.period_key),
        round_value=f"m{member_round.id}",
        rows=rows,
        objections_url=_link("tenant.member_round_committee.objections", {"round_branch_id": found.id}),
    )
