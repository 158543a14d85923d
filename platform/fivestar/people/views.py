"""Member pages (`/t/<slug>/people/…`): search, one member, and changes to a member's record.

Each view loads the member with its branch within the current tenant (another tenant's id is not
found: 404), calls `require`, calls one service, commits once and redirects. A refused change
comes back on the form with the user's input kept, the service's message and a 4xx; a stale edit
(someone saved in between) answers 409 and shows the stored values beside the user's.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from fivestar.accounts.policy import Action, authorize, org_scope, require
from fivestar.accounts.visibility import MemberFilters, org_choices, search_members
from fivestar.audit.models import AuditEvent
from fivestar.enums import MemberStatus, OrgKind, Position, Standing
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.kernel.versioning import StaleEditError
from fivestar.orgs.models import Organisation
from fivestar.orgs.queries import choice_label
from fivestar.people import services
from fivestar.people.forms import (
    STATUS_ALL,
    MemberCreateForm,
    MemberForm,
    MemberMoveForm,
    MemberReactivateForm,
    MemberSearchForm,
    MemberTransferForm,
)
from fivestar.people.models import Member
from fivestar.people.queries import load_member
from fivestar.tenancy import require_tenant_id
from fivestar.web.editing import refuse_edit
from fivestar.web.refusals import refuse
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

people_bp = Blueprint("people", __name__, url_prefix="/people")

BRANCH_KINDS = frozenset({OrgKind.BRANCH, OrgKind.RETIREE_BRANCH})
HISTORY_LIMIT = 20


def _member_or_404(member_id: int) -> Member:
    member = load_member(db(), member_id)
    if member is None:
        abort(404)
    return member


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None



def _branches(action: Action) -> tuple[list[Organisation], list[tuple[str, str]]]:
    """Branches the user may act on, for a select field (two queries: branches, their parents)."""
    branches = org_choices(db(), current_user, action, BRANCH_KINDS)
    parent_ids = {branch.parent_id for branch in branches if branch.parent_id is not None}
    names: dict[int, str] = {}
    if parent_ids:
        rows = db().execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(parent_ids)))
        names = {row.id: row.name for row in rows}
    return branches, [(str(branch.id), choice_label(branch, names)) for branch in branches]


def _input(form: MemberForm) -> services.MemberInput:
    return services.MemberInput(
        name=form.name.data,
        gender=form.gender.data,
        member_no=form.member_no.data,
        phone=form.phone.data,
        joined_on=form.joined_on.data,
        standing=form.standing.data,
        position=form.position.data,
        note=form.note.data,
    )


# --- search -------------------------------------------------------------------------------------


@people_bp.get("/")
@login_required
def index() -> Any:
    require(current_user, Action.TENANT_VIEW, current_tenant())
    form = MemberSearchForm(formdata=request.args)
    orgs = list(
        db().scalars(
            select(Organisation)
            .where(org_scope(current_user, Action.MEMBER_VIEW), Organisation.active.is_(True))
            .order_by(Organisation.path)
        )
    )
    form.org.choices = [("", _("全部组织"))] + [
        (str(org.id), "\u3000" * max(0, org.depth - (orgs[0].depth if orgs else 0)) + org.name) for org in orgs
    ]
    chosen = {org.id: org for org in orgs}.get(_int_or_none(form.org.data) or 0)
    status: MemberStatus | None = MemberStatus.ACTIVE
    if form.status.data == STATUS_ALL:
        status = None
    elif form.status.data in set(MemberStatus):
        status = MemberStatus(form.status.data)
    filters = MemberFilters(
        q=form.q.data or "",
        org_path=chosen.path if chosen is not None else None,
        standing=Standing(form.standing.data) if form.standing.data in set(Standing) else None,
        position=Position(form.position.data) if form.position.data in set(Position) else None,
        status=status,
    )
    result = search_members(db(), current_user, filters, page=_int_or_none(request.args.get("page")) or 1)
    args = {key: value for key, value in request.args.items() if key != "page" and value}
    can_add = bool(org_choices(db(), current_user, Action.MEMBER_EDIT, BRANCH_KINDS)) if orgs else False
    return render_template("people/index.html", form=form, result=result, args=args, can_add=can_add)


# --- one member ---------------------------------------------------------------------------------


@people_bp.get("/<int:member_id>")
@login_required
def detail(member_id: int) -> Any:
    member = _member_or_404(member_id)
    require(current_user, Action.MEMBER_VIEW, member)
    return _render_detail(member)


def _render_detail(member: Member, status: int = 200) -> Any:
    history: list[AuditEvent] = []
    if authorize(current_user, Action.AUDIT_VIEW):
        # Audit events are not tenant-owned rows (the hook does not scope them): filter by hand.
        history = list(
            db().scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.tenant_id == require_tenant_id(),
                    AuditEvent.object_type == Member.__tablename__,
                    AuditEvent.object_id == str(member.id),
                )
                .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
                .limit(HISTORY_LIMIT)
            )
        )
    return render_template("people/detail.html", member=member, history=history), status


@people_bp.route("/new", methods=["GET", "POST"])
@login_required
def create() -> Any:
    require(current_user, Action.TENANT_VIEW, current_tenant())
    branches, branch_choices = _branches(Action.MEMBER_EDIT)
    if not branches:
        abort(403)
    form = MemberCreateForm()
    form.branch_id.choices = [("", _("请选择")), *branch_choices]
    if request.method == "GET":
        wanted = request.args.get("branch", "")
        form.branch_id.data = wanted if wanted in {str(branch.id) for branch in branches} else ""
        form.standing.data = Standing.FULL.value
        form.position.data = Position.MEMBER.value
    status = 200
    if form.validate_on_submit():
        branch = {branch.id: branch for branch in branches}.get(_int_or_none(form.branch_id.data) or 0)
        if branch is None:
            form.branch_id.errors = [_("请选择所在支部")]
            status = 400
        else:
            require(current_user, Action.MEMBER_EDIT, branch)
            try:
                member = services.create_member(db(), branch, _input(form))
                new_id = member.id
                db().commit()
            except ServiceError as error:
                status = refuse(error, form)
            else:
                flash(_("已添加党员。"), "success")
                return redirect(url_for(".detail", member_id=new_id))
    elif request.method == "POST":
        status = 400
    return render_template("people/form.html", form=form, member=None, current=None), status


@people_bp.route("/<int:member_id>/edit", methods=["GET", "POST"])
@login_required
def edit(member_id: int) -> Any:
    member = _member_or_404(member_id)
    require(current_user, Action.MEMBER_EDIT, member)
    form = MemberForm()
    if request.method == "GET":
        form.process(
            data={
                "name": member.name,
                "gender": member.gender.value,
                "member_no": member.member_no,
                "phone": member.phone or "",
                "joined_on": member.joined_on.isoformat() if member.joined_on else "",
                "standing": member.standing.value,
                "position": member.position.value,
                "note": member.note or "",
                "version": str(member.version),
            }
        )
    status = 200
    current = None
    if form.validate_on_submit():
        try:
            services.update_member(db(), member, _input(form), version=form.version.data)
            db().commit()
        except ServiceError as error:
            status, member = refuse_edit(error, form, lambda: _member_or_404(member_id))
            if isinstance(error, StaleEditError):
                current = member  # what is stored now, beside what the user typed
        else:
            flash(_("已保存。"), "success")
            return redirect(url_for(".detail", member_id=member_id))
    elif request.method == "POST":
        status = 400
    return render_template("people/form.html", form=form, member=member, current=current), status


@people_bp.route("/<int:member_id>/move", methods=["GET", "POST"])
@login_required
def move(member_id: int) -> Any:
    member = _member_or_404(member_id)
    require(current_user, Action.MEMBER_MOVE, member)
    branches, branch_choices = _branches(Action.MEMBER_MOVE)
    others = [(value, text) for value, text in branch_choices if value != str(member.branch_id)]
    form = MemberMoveForm()
    form.branch_id.choices = [("", _("请选择")), *others]
    if request.method == "GET":
        form.version.data = str(member.version)
    status = 200
    if form.validate_on_submit():
        target = {branch.id: branch for branch in branches}.get(_int_or_none(form.branch_id.data) or 0)
        if target is None:
            form.branch_id.errors = [_("请选择调入支部")]
            status = 400
        else:
            require(current_user, Action.MEMBER_MOVE, target)
            try:
                services.move_member(
                    db(), member, target, reason=form.reason.data, version=form.version.data
                )
                db().commit()
            except ServiceError as error:
                status, member = refuse_edit(error, form, lambda: _member_or_404(member_id))
            else:
                flash(_("已调整支部。"), "success")
                return redirect(url_for(".detail", member_id=member_id))
    elif request.method == "POST":
        status = 400
    return render_template("people/move.html", form=form, member=member, has_choices=bool(others)), status


@people_bp.route("/<int:member_id>/deactivate", methods=["GET", "POST"])
@login_required
def deactivate(member_id: int) -> Any:
    """Transfer out (组织关系转出): the record stays, marked as left on a date, with the reason."""
    member = _member_or_404(member_id)
    require(current_user, Action.MEMBER_DEACTIVATE, member)
    form = MemberTransferForm()
    if request.method == "GET":
        form.version.data = str(member.version)
    status = 200
    if form.validate_on_submit():
        try:
            services.transfer_out(
                db(),
                member,
                left_on=form.left_on.data,
                reason=form.reason.data,
                version=form.version.data,
            )
            db().commit()
        except ServiceError as error:
            status, member = refuse_edit(error, form, lambda: _member_or_404(member_id))
        else:
            flash(_("已办理转出。"), "success")
            return redirect(url_for(".detail", member_id=member_id))
    elif request.method == "POST":
        status = 400
    return render_template("people/deactivate.html", form=form, member=member), status


@people_bp.route("/<int:member_id>/reactivate", methods=["GET", "POST"])
@login_required
def reactivate(member_id: int) -> Any:
    member = _member_or_404(member_id)
    require(current_user, Action.MEMBER_DEACTIVATE, member)
    branches, branch_choices = _branches(Action.MEMBER_EDIT)
    form = MemberReactivateForm()
    form.branch_id.choices = branch_choices
    if request.method == "GET":
        form.version.data = str(member.version)
        form.branch_id.data = str(member.branch_id)
    status = 200
    if form.validate_on_submit():
        target = {branch.id: branch for branch in branches}.get(_int_or_none(form.branch_id.data) or 0)
        if target is None:
            form.branch_id.errors = [_("请选择支部")]
            status = 400
        else:
            require(current_user, Action.MEMBER_EDIT, target)
            try:
                services.reactivate_member(
                    db(), member, reason=form.reason.data, branch=target, version=form.version.data
                )
                db().commit()
            except ServiceError as error:
                status, member = refuse_edit(error, form, lambda: _member_or_404(member_id))
            else:
                flash(_("已恢复在册。"), "success")
                return redirect(url_for(".detail", member_id=member_id))
    elif request.method == "POST":
        status = 400
    return render_template("people/reactivate.html", form=form, member=member), status


__all__ = ["people_bp"]
