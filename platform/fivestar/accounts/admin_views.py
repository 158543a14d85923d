"""Account administration for the tenant administrator (`/t/<slug>/accounts/…`).

List and search accounts, create them (optionally for a member), invite by e-mail, grant and
revoke roles, reset passwords (a temporary password shown once, or a link by e-mail), deactivate
and reactivate; and the outbox page where the administrator sees what was sent (e-mail, in-app, robots) and resends what
failed. Every page: load → `require(ACCOUNT_MANAGE)` → service → commit once → redirect or render.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import Select, func, or_, select

from fivestar.accounts import services
from fivestar.accounts.forms import AccountEditForm, AccountForm, GrantRoleForm, ResetPasswordForm
from fivestar.accounts.models import Account, Invitation, RoleGrant
from fivestar.accounts.policy import Action, require
from fivestar.accounts.views import form_error, link_builder
from fivestar.broker import enqueue_after_commit
from fivestar.db import utcnow
from fivestar.enums import OrgKind, Role
from fivestar.errors import ServiceError
from fivestar.i18n import _, _l
from fivestar.kernel import task_names
from fivestar.labels import choices, label
from fivestar.orgs.models import Organisation
from fivestar.outbox import services as outbox_services
from fivestar.outbox.models import Channel, DeliveryState, OutboxMessage
from fivestar.people.models import Member
from fivestar.web.editing import refuse_edit
from fivestar.web.session import db

accounts_bp = Blueprint("accounts", __name__, url_prefix="/accounts")

PAGE_SIZE = 50
STATE_LABELS = {
    DeliveryState.PENDING.value: _l("待发送"),
    DeliveryState.SENDING.value: _l("发送中"),
    DeliveryState.SENT.value: _l("已发送"),
    DeliveryState.FAILED.value: _l("发送失败"),
}
CHANNEL_LABELS = {
    Channel.EMAIL.value: _l("电子邮件"),
    Channel.INAPP.value: _l("站内消息"),
    Channel.WEBHOOK.value: _l("群机器人"),
}
SCOPED_KINDS = (OrgKind.PARTY_COMMITTEE, OrgKind.GENERAL_BRANCH, OrgKind.BRANCH, OrgKind.RETIREE_BRANCH)


# --- helpers -------------------------------------------------------------------------------------


def _settings() -> Any:
    return current_app.config["FIVESTAR_SETTINGS"]


def _page() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 100_000))
    except ValueError:
        return 1


def _load_account(account_id: int) -> Account:
    account = db().scalar(select(Account).where(Account.id == account_id))
    if account is None:
        abort(404)
    require(current_user, Action.ACCOUNT_MANAGE, account)
    return account


def _keep_token(account: Account) -> str | None:
    """Changing one's own roles keeps one's own session (the others still end)."""
    return current_user.get_id() if account.id == current_user.account_id else None


def _reason() -> str | None:
    return (request.form.get("reason") or "").strip()[:500] or None


def _deliver_after_commit() -> None:
    enqueue_after_commit(db(), _settings(), task_names.DELIVER_OUTBOX)


def _org_choices() -> list[tuple[str, str]]:
    orgs = db().execute(
        select(Organisation.id, Organisation.kind, Organisation.name)
        .where(Organisation.kind.in_(SCOPED_KINDS), Organisation.active.is_(True))
        .order_by(Organisation.path, Organisation.name)
    )
    return [("", _("（不限组织）"))] + [(str(org_id), f"{label(kind)} · {name}") for org_id, kind, name in orgs]


def _grant_form(formdata: Any = None) -> GrantRoleForm:
    form = GrantRoleForm(formdata=formdata) if formdata is not None else GrantRoleForm(formdata=None)
    form.role.choices = choices(Role)
    form.organisation_id.choices = _org_choices()
    return form


def _render_detail(account: Account, status: int = 200, **forms: Any) -> Any:
    """The account page: facts, roles with their organisations, open link, and the action forms."""
    org_ids = {grant.organisation_id for grant in account.grants if grant.organisation_id is not None}
    orgs = {org.id: org for org in db().scalars(select(Organisation).where(Organisation.id.in_(org_ids)))}
    member = (
        db().scalar(select(Member).where(Member.id == account.member_id)) if account.member_id is not None else None
    )
    open_link = db().scalar(
        select(Invitation)
        .where(
            Invitation.account_id == account.id,
            Invitation.used_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
        .order_by(Invitation.id.desc())
        .limit(1)
    )
    edit_form = forms.pop("edit_form", None) or AccountEditForm(
        formdata=None, display_name=account.display_name, email=account.email or "", version=str(account.version)
    )
    return (
        render_template(
            "accounts/detail.html",
            account=account,
            orgs=orgs,
            member=member,
            open_link=open_link,
            edit_form=edit_form,
            grant_form=forms.pop("grant_form", None) or _grant_form(),
            reset_form=forms.pop("reset_form", None) or ResetPasswordForm(formdata=None),
        ),
        status,
    )


def _refused(account: Account, error: ServiceError, **forms: Any) -> Any:
    db().rollback()
    if not forms:
        flash(error.message, "error")
    else:
        for form in forms.values():
            form_error(form, error)
    db().refresh(account)
    return _render_detail(account, error.status, **forms)


# --- list ----------------------------------------------------------------------------------------


def _filtered(q: str, role: str, status: str) -> Select[Any]:
    statement = select(Account)
    if q:
        statement = statement.where(
            or_(
                Account.username.icontains(q, autoescape=True),
                Account.display_name.icontains(q, autoescape=True),
                Account.email.icontains(q, autoescape=True),
            )
        )
    if role:
        statement = statement.where(Account.id.in_(select(RoleGrant.account_id).where(RoleGrant.role == Role(role))))
    if status == "active":
        statement = statement.where(Account.active.is_(True))
    elif status == "inactive":
        statement = statement.where(Account.active.is_(False))
    return statement


@accounts_bp.get("/")
@login_required
def index() -> Any:
    """Accounts with roles, searchable and paged: six queries whatever the page holds."""
    require(current_user, Action.ACCOUNT_MANAGE)
    q = (request.args.get("q") or "").strip()[:60]
    role = request.args.get("role", "")
    role = role if role in {r.value for r in Role} else ""
    status = request.args.get("status", "")
    status = status if status in ("active", "inactive") else ""
    page = _page()
    statement = _filtered(q, role, status)
    total = int(db().scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0)
    accounts: list[Account] = list(
        db().scalars(statement.order_by(Account.username).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
    )  # grants arrive with one more (selectin) query
    ids = [account.id for account in accounts]
    org_ids = {g.organisation_id for a in accounts for g in a.grants if g.organisation_id is not None}
    orgs = {
        org_id: name
        for org_id, name in db().execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(org_ids)))
    }
    member_ids = {a.member_id for a in accounts if a.member_id is not None}
    members = {
        member_id: (name, number)
        for member_id, name, number in db().execute(
            select(Member.id, Member.name, Member.member_no).where(Member.id.in_(member_ids))
        )
    }
    invited = set(
        db().scalars(
            select(Invitation.account_id).where(
                Invitation.account_id.in_(ids),
                Invitation.used_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
        )
    )
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template(
        "accounts/index.html",
        accounts=accounts,
        orgs=orgs,
        members=members,
        invited=invited,
        total=total,
        page=page,
        pages=pages,
        q=q,
        role=role,
        status=status,
        roles=choices(Role),
    )


# --- create and edit -----------------------------------------------------------------------------


@accounts_bp.route("/new", methods=["GET", "POST"])
@login_required
def create() -> Any:
    require(current_user, Action.ACCOUNT_MANAGE)
    form = AccountForm()
    if form.validate_on_submit():
        try:
            account = services.create_account(
                db(),
                username=form.username.data or "",
                display_name=form.display_name.data or "",
                email=form.email.data,
                member_no=form.member_no.data,
            )
            invited = False
            if form.send_invitation.data == "yes" and account.email:
                services.invite(db(), account, settings=_settings(), link_for=link_builder())
                _deliver_after_commit()
                invited = True
        except ServiceError as error:
            db().rollback()
            form_error(form, error)
            return render_template("accounts/new.html", form=form), error.status
        db().commit()
        if invited:
            flash(
                _(
                    "账号 %(username)s 已创建，邀请邮件已发往 %(email)s。",
                    username=account.username,
                    email=account.email,
                ),
                "success",
            )
        else:
            flash(_("账号 %(username)s 已创建。可在本页发送邀请或设置临时密码。", username=account.username), "success")
        return redirect(url_for("tenant.accounts.detail", account_id=account.id))
    status = 400 if form.is_submitted() else 200
    return render_template("accounts/new.html", form=form), status


@accounts_bp.get("/<int:account_id>")
@login_required
def detail(account_id: int) -> Any:
    return _render_detail(_load_account(account_id))


@accounts_bp.post("/<int:account_id>/edit")
@login_required
def edit(account_id: int) -> Any:
    account = _load_account(account_id)
    form = AccountEditForm()
    if not form.validate():
        return _render_detail(account, 400, edit_form=form)
    try:
        services.update_account(
            db(), account, display_name=form.display_name.data or "", email=form.email.data,
            version=form.version.data,
        )
    except ServiceError as error:
        status, account = refuse_edit(error, form, lambda: _load_account(account_id))
        return _render_detail(account, status, edit_form=form)
    db().commit()
    flash(_("账号信息已保存。"), "success")
    return redirect(url_for("tenant.accounts.detail", account_id=account.id))


# --- invitations and passwords -------------------------------------------------------------------


@accounts_bp.post("/<int:account_id>/invite")
@login_required
def invite(account_id: int) -> Any:
    account = _load_account(account_id)
    try:
        services.invite(db(), account, settings=_settings(), link_for=link_builder())
    except ServiceError as error:
        return _refused(account, error)
    _deliver_after_commit()
    db().commit()
    flash(_("邀请邮件已加入发送队列：%(email)s。之前发出的邀请链接已失效。", email=account.email), "success")
    return redirect(url_for("tenant.accounts.detail", account_id=account.id))


@accounts_bp.post("/<int:account_id>/reset")
@login_required
def reset_password(account_id: int) -> Any:
    account = _load_account(account_id)
    form = ResetPasswordForm()
    if not form.validate():
        return _render_detail(account, 400, reset_form=form)
    try:
        if form.method.data == "link":
            services.send_reset_link(db(), account, settings=_settings(), link_for=link_builder(), reason=_reason())
            _deliver_after_commit()
        else:
            temporary = services.reset_password_temporary(db(), account, reason=_reason())
    except ServiceError as error:
        return _refused(account, error, reset_form=form)
    db().commit()
    if form.method.data == "link":
        flash(
            _("重置链接已加入发送队列：%(email)s。原密码已失效，该账号的登录已全部退出。", email=account.email),
            "success",
        )
        return redirect(url_for("tenant.accounts.detail", account_id=account.id))
    # Shown once, in this response only: never flashed (the flash lives in the cookie) nor stored.
    return render_template("accounts/temporary_password.html", account=account, password=temporary)


# --- roles ---------------------------------------------------------------------------------------


@accounts_bp.post("/<int:account_id>/roles")
@login_required
def grant(account_id: int) -> Any:
    account = _load_account(account_id)
    form = _grant_form(request.form)
    if not form.validate():
        return _render_detail(account, 400, grant_form=form)
    organisation = None
    if form.organisation_id.data:
        organisation = db().scalar(select(Organisation).where(Organisation.id == int(form.organisation_id.data)))
    try:
        services.grant_role(db(), account, Role(form.role.data), organisation, keep_token=_keep_token(account))
    except ServiceError as error:
        return _refused(account, error, grant_form=form)
    db().commit()
    flash(_("已授予角色：%(role)s。该账号需重新登录。", role=label(Role(form.role.data))), "success")
    return redirect(url_for("tenant.accounts.detail", account_id=account.id))


@accounts_bp.post("/<int:account_id>/roles/<int:grant_id>/revoke")
@login_required
def revoke(account_id: int, grant_id: int) -> Any:
    account = _load_account(account_id)
    found = next((g for g in account.grants if g.id == grant_id), None)
    if found is None:
        abort(404)
    role = found.role
    try:
        services.revoke_role(db(), account, found, keep_token=_keep_token(account))
    except ServiceError as error:
        return _refused(account, error)
    db().commit()
    flash(_("已撤销角色：%(role)s。该账号需重新登录。", role=label(role)), "success")
    return redirect(url_for("tenant.accounts.detail", account_id=account.id))


# --- activation ----------------------------------------------------------------------------------


@accounts_bp.post("/<int:account_id>/deactivate")
@login_required
def deactivate(account_id: int) -> Any:
    account = _load_account(account_id)
    try:
        services.deactivate_account(db(), account, acting_account_id=current_user.account_id, reason=_reason())
    except ServiceError as error:
        return _refused(account, error)
    db().commit()
    flash(_("账号 %(username)s 已停用，其登录已全部退出。", username=account.username), "success")
    return redirect(url_for("tenant.accounts.detail", account_id=account.id))


@accounts_bp.post("/<int:account_id>/reactivate")
@login_required
def reactivate(account_id: int) -> Any:
    account = _load_account(account_id)
    try:
        services.reactivate_account(db(), account, reason=_reason())
    except ServiceError as error:
        return _refused(account, error)
    db().commit()
    flash(_("账号 %(username)s 已启用。", username=account.username), "success")
    return redirect(url_for("tenant.accounts.detail", account_id=account.id))


# --- outbox --------------------------------------------------------------------------------------


@accounts_bp.get("/outbox")
@login_required
def outbox() -> Any:
    """What was mailed for this tenant and how delivery went. Bodies are not shown (they hold links)."""
    require(current_user, Action.ACCOUNT_MANAGE)
    state = request.args.get("state", "")
    state = state if state in {s.value for s in DeliveryState} else ""
    page = _page()
    statement = select(OutboxMessage)
    if state:
        statement = statement.where(OutboxMessage.state == DeliveryState(state))
    total = int(db().scalar(select(func.count()).select_from(statement.subquery())) or 0)
    messages = list(
        db().scalars(
            statement.order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
    )
    return render_template(
        "accounts/outbox.html",
        messages=messages,
        state=state,
        states=list(DeliveryState),
        state_labels=STATE_LABELS,
        channel_labels=CHANNEL_LABELS,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        total=total,
    )


@accounts_bp.post("/outbox/<int:message_id>/resend")
@login_required
def resend(message_id: int) -> Any:
    message = db().scalar(select(OutboxMessage).where(OutboxMessage.id == message_id))
    if message is None:
        abort(404)
    require(current_user, Action.ACCOUNT_MANAGE, message)
    try:
        outbox_services.resend(db(), message)
    except ServiceError as error:
        db().rollback()
        flash(error.message, "error")
        return outbox(), error.status
    _deliver_after_commit()
    db().commit()
    flash(_("已重新加入发送队列：%(recipient)s", recipient=message.recipient), "success")
    return redirect(url_for("tenant.accounts.outbox"))


__all__ = ["accounts_bp"]
