"""Organisation pages (`/t/<slug>/orgs/…`): the tree, one organisation, and changes to the tree.

Each view loads the object within the current tenant (another tenant's id is simply not found:
404), calls `require`, calls one service, commits once and redirects. A refused change is shown
on the form with the service's message and a 4xx; the transaction is rolled back.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from fivestar.accounts.policy import Action, require
from fivestar.accounts.visibility import branch_roll, org_choices, org_overview, visible_tree
from fivestar.enums import MemberStatus, OrgKind
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.labels import label
from fivestar.orgs import services
from fivestar.orgs.forms import OrgCreateForm, OrgEditForm, OrgMoveForm, OrgReasonForm
from fivestar.orgs.models import Organisation
from fivestar.orgs.queries import choice_label, load_org
from fivestar.orgs.structure import ALLOWED_PARENTS
from fivestar.web.editing import opened_version, refuse_edit
from fivestar.web.refusals import refuse
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

orgs_bp = Blueprint("orgs", __name__, url_prefix="/orgs")


def _org_or_404(org_id: int) -> Organisation:
    org = load_org(db(), org_id)
    if org is None:
        abort(404)
    return org


def _child_kinds(parent: Organisation) -> list[OrgKind]:
    return [kind for kind, parents in ALLOWED_PARENTS.items() if parent.kind in parents]


def _kind_choices(kinds: list[OrgKind]) -> list[tuple[str, str]]:
    return [(kind.value, label(kind)) for kind in kinds]


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@orgs_bp.get("/")
@login_required
def index() -> Any:
    require(current_user, Action.TENANT_VIEW, current_tenant())
    show_inactive = request.args.get("inactive") == "1"
    tree = visible_tree(db(), current_user, include_inactive=show_inactive)
    return render_template("orgs/index.html", tree=tree, show_inactive=show_inactive)


@orgs_bp.get("/<int:org_id>")
@login_required
def detail(org_id: int) -> Any:
    org = _org_or_404(org_id)
    require(current_user, Action.ORG_VIEW, org)
    return _render_detail(org)


def _render_detail(org: Organisation, status: int = 200) -> Any:
    overview = org_overview(db(), current_user, org)
    members = branch_roll(db(), current_user, [org.id], status=MemberStatus.ACTIVE) if org.kind.holds_members else []
    page = render_template(
        "orgs/detail.html",
        org=org,
        overview=overview,
        members=members,
        child_kinds=_child_kinds(org),
        reason_form=OrgReasonForm(),
    )
    return page, status


@orgs_bp.route("/<int:org_id>/new", methods=["GET", "POST"])
@login_required
def create(org_id: int) -> Any:
    """A new organisation under `org_id` (the parent is part of the address, so it is authorized)."""
    parent = _org_or_404(org_id)
    require(current_user, Action.ORG_MANAGE, parent)
    kinds = _child_kinds(parent)
    if not kinds:
        flash(_("%(kind)s之下不能再设组织", kind=label(parent.kind)), "error")
        return redirect(url_for(".detail", org_id=parent.id))
    form = OrgCreateForm()
    form.kind.choices = _kind_choices(kinds)
    if request.method == "GET":
        wanted = request.args.get("kind")
        form.kind.data = wanted if wanted in {kind.value for kind in kinds} else kinds[0].value
    status = 200
    if form.validate_on_submit():
        try:
            kind = OrgKind(form.kind.data)
        except ValueError:
            form.kind.errors = [_("请选择组织类型")]
            return render_template("orgs/form.html", form=form, parent=parent, org=None, mode="create"), 400
        try:
            org = services.create_org(
                db(),
                kind=kind,
                parent=parent,
                name=form.name.data or "",
                code=form.code.data,
                sort_order=form.sort_order.data or 0,
            )
            org_id_new = org.id
            db().commit()
        except ServiceError as error:
            status = refuse(error, form)
            parent = _org_or_404(org_id)
        else:
            flash(_("已新建组织。"), "success")
            return redirect(url_for(".detail", org_id=org_id_new))
    elif request.method == "POST":
        status = 400
    return render_template("orgs/form.html", form=form, parent=parent, org=None, mode="create"), status


@orgs_bp.route("/<int:org_id>/edit", methods=["GET", "POST"])
@login_required
def edit(org_id: int) -> Any:
    org = _org_or_404(org_id)
    require(current_user, Action.ORG_MANAGE, org)
    parent = load_org(db(), org.parent_id) if org.parent_id is not None else None
    if org.kind is OrgKind.COMMITTEE:
        kinds = [OrgKind.COMMITTEE]
    else:
        kinds = [kind for kind in OrgKind if parent is not None and parent.kind in ALLOWED_PARENTS[kind]]
    form = OrgEditForm(obj=org) if request.method == "GET" else OrgEditForm()  # GET: `version` from the org too
    form.kind.choices = _kind_choices(kinds)
    if request.method == "GET":
        form.kind.data = org.kind.value
    status = 200
    if form.validate_on_submit():
        try:
            kind = OrgKind(form.kind.data)
        except ValueError:
            kind = org.kind
        try:
            services.update_org(
                db(),
                org,
                name=form.name.data or "",
                code=form.code.data,
                sort_order=form.sort_order.data,
                kind=kind,
                version=form.version.data,
            )
            db().commit()
        except ServiceError as error:
            status, org = refuse_edit(error, form, lambda: _org_or_404(org_id))
        else:
            flash(_("已保存。"), "success")
            return redirect(url_for(".detail", org_id=org.id))
    elif request.method == "POST":
        status = 400
    return render_template("orgs/form.html", form=form, parent=parent, org=org, mode="edit"), status


@orgs_bp.route("/<int:org_id>/move", methods=["GET", "POST"])
@login_required
def move(org_id: int) -> Any:
    org = _org_or_404(org_id)
    require(current_user, Action.ORG_MANAGE, org)
    if org.kind is OrgKind.COMMITTEE:
        flash(_("工委是组织树的根，不能新建或移动"), "error")
        return redirect(url_for(".detail", org_id=org.id))
    candidates = org_choices(
        db(), current_user, Action.ORG_MANAGE, ALLOWED_PARENTS[org.kind], exclude_path=org.path
    )
    names = {candidate.id: candidate.name for candidate in candidates}
    by_id = {candidate.id: candidate for candidate in candidates if candidate.id != org.parent_id}
    form = OrgMoveForm()
    if request.method == "GET":
        opened_version(form, org)
    form.parent_id.choices = [("", _("请选择"))] + [
        (str(candidate.id), choice_label(candidate, names)) for candidate in by_id.values()
    ]
    status = 200
    if form.validate_on_submit():
        new_parent = by_id.get(_int_or_none(form.parent_id.data) or 0)
        if new_parent is None:
            form.parent_id.errors = [_("请选择新的上级组织")]
            status = 400
        else:
            require(current_user, Action.ORG_MANAGE, new_parent)
            try:
                services.move_org(db(), org, new_parent, reason=form.reason.data, version=form.version.data)
                db().commit()
            except ServiceError as error:
                status, org = refuse_edit(error, form, lambda: _org_or_404(org_id))
            else:
                flash(_("已调整上级组织。"), "success")
                return redirect(url_for(".detail", org_id=org.id))
    elif request.method == "POST":
        status = 400
    return render_template("orgs/move.html", form=form, org=org, has_choices=bool(by_id)), status


@orgs_bp.route("/<int:org_id>/deactivate", methods=["GET", "POST"])
@login_required
def deactivate(org_id: int) -> Any:
    org = _org_or_404(org_id)
    require(current_user, Action.ORG_MANAGE, org)
    form = OrgReasonForm()
    if request.method == "GET":
        opened_version(form, org)
    status = 200
    if form.validate_on_submit():
        try:
            services.deactivate_org(db(), org, reason=form.reason.data, version=form.version.data)
            db().commit()
        except ServiceError as error:
            status, org = refuse_edit(error, form, lambda: _org_or_404(org_id))
        else:
            flash(_("已停用该组织。"), "success")
            return redirect(url_for(".detail", org_id=org.id))
    elif request.method == "POST":
        status = 400
    overview = org_overview(db(), current_user, org)
    return render_template("orgs/deactivate.html", form=form, org=org, overview=overview), status


@orgs_bp.post("/<int:org_id>/reactivate")
@login_required
def reactivate(org_id: int) -> Any:
    org = _org_or_404(org_id)
    require(current_user, Action.ORG_MANAGE, org)
    form = OrgReasonForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.reactivate_org(db(), org, reason=form.reason.data, version=form.version.data)
        db().commit()
    except ServiceError as error:
        db().rollback()
        flash(error.message, "error")
        return _render_detail(_org_or_404(org_id), error.status)
    flash(_("已重新启用该组织。"), "success")
    return redirect(url_for(".detail", org_id=org_id))


__all__ = ["orgs_bp"]
