"""Login, logout and passwords inside a tenant (`/t/<slug>/login`, `/password`, `/invite/<token>`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from fivestar.accounts.forms import ChangePasswordForm, LoginForm, SetPasswordForm
from fivestar.accounts.models import Account
from fivestar.accounts.services import accept_link, authenticate_account, change_password, find_link
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.web.core import _safe_next
from fivestar.web.login import sign_in, sign_out, submitted_username, throttled
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

auth_bp = Blueprint("auth", __name__)


def _login_key() -> str:
    return f"login:{current_tenant().slug}:{submitted_username()}"


@auth_bp.route("/login", methods=["GET", "POST"])
@throttled(_login_key)
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        account = authenticate_account(db(), form.username.data or "", form.password.data or "")
        if account is None:
            form.password.errors.append(_("用户名或密码不正确"))
            return render_template("auth/login.html", form=form), 200
        sign_in(account=account)
        if account.must_change_password:
            return redirect(url_for("tenant.auth.change_password"))
        target = request.args.get("next")
        return redirect(_safe_next(target) if target else url_for("tenant.home.index"))
    return render_template("auth/login.html", form=form)


@auth_bp.post("/logout")
def logout() -> Any:
    sign_out()
    return redirect(url_for("tenant.auth.login"))


# Pages a person who must change their password may still open.
_ALLOWED_WHILE_MUST_CHANGE = frozenset(
    {"tenant.auth.change_password", "tenant.auth.logout", "static", "core.set_language"}
)


@auth_bp.before_app_request
def _force_password_change() -> Any:
    """After a reset with a temporary password, nothing but the password page until it is changed."""
    if g.get("tenant") is None or request.endpoint in _ALLOWED_WHILE_MUST_CHANGE:
        return None
    if current_user.is_authenticated and not current_user.is_operator and current_user.must_change_password:
        return redirect(url_for("tenant.auth.change_password"))
    return None


def link_builder() -> Callable[[str], str]:
    """Absolute links for e-mails, built on the configured base URL, never on the request's Host
    header (a forged Host would otherwise send reset links to another site)."""
    base = str(current_app.config["FIVESTAR_SETTINGS"].base_url).rstrip("/")
    return lambda token: base + url_for("tenant.auth.accept_invitation", token=token)


def form_error(form: Any, error: ServiceError) -> None:
    """Show a service's refusal next to its field, or as a message above the form."""
    field = getattr(form, error.field, None) if error.field else None
    if field is None or not hasattr(field, "errors"):
        flash(error.message, "error")
        return
    field.errors = [*field.errors, error.message]


def _password_key() -> str:
    """Guessing the current password from a stolen session is throttled like a login."""
    who = current_user.account_id if current_user.is_authenticated else request.remote_addr
    return f"password:{current_tenant().slug}:{who}"


@auth_bp.route("/password", methods=["GET", "POST"], endpoint="change_password")
@throttled(_password_key, per_address=False)
@login_required
def change_password_page() -> Any:
    form = ChangePasswordForm()
    if form.validate_on_submit():
        account = db().scalar(select(Account).where(Account.id == current_user.account_id))
        if account is None:
            return redirect(url_for("tenant.auth.login"))
        try:
            change_password(
                db(),
                account,
                current_password=form.current_password.data or "",
                new_password=form.new_password.data or "",
                confirm=form.confirm.data or "",
                keep_token=current_user.get_id(),
            )
        except ServiceError as error:
            db().rollback()
            form_error(form, error)
            return render_template("auth/change_password.html", form=form), error.status
        db().commit()
        flash(_("密码已修改。您在其他设备上的登录已全部退出。"), "success")
        return redirect(url_for("tenant.home.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/change_password.html", form=form), status


def _link_refused(error: ServiceError) -> Any:
    return render_template("auth/link_invalid.html", message=error.message), error.status


@auth_bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> Any:
    """Set a password through an invitation or reset link (single use, time-limited)."""
    if len(token) > 100:
        return _link_refused(ServiceError(_("链接无效。请检查邮件中的链接是否完整，或联系管理员重新发送。")))
    try:
        _invitation, account = find_link(db(), token)
    except ServiceError as error:
        return _link_refused(error)
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            accept_link(db(), token, new_password=form.new_password.data or "", confirm=form.confirm.data or "")
        except ServiceError as error:
            db().rollback()
            if error.field is None:
                return _link_refused(error)
            form_error(form, error)
            return render_template("auth/set_password.html", form=form, account=account), error.status
        db().commit()
        flash(_("密码已设置，请用新密码登录。"), "success")
        return redirect(url_for("tenant.auth.login"))
    status = 400 if form.is_submitted() else 200
    return render_template("auth/set_password.html", form=form, account=account), status


__all__ = ["auth_bp", "form_error", "link_builder"]
