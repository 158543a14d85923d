"""Signing in and out, shared by the tenant login and the operator login.

Both do the same few things in the same order — throttle failed attempts per address and per
account name, start a fresh server-side session (never reuse one: no fixation), hand Flask-Login a
principal — and on logout revoke the session row so a copied cookie stops working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, flash, request, session
from flask_login import current_user, login_user, logout_user

from fivestar.accounts.models import Account, Operator
from fivestar.accounts.sessions import load_principal, revoke_session, start_session
from fivestar.extensions import limiter
from fivestar.i18n import _
from fivestar.web.session import db

F = TypeVar("F", bound=Callable[..., Any])


def _limit() -> str:
    return str(current_app.config["FIVESTAR_SETTINGS"].login_limit)


def _failed(response: Any) -> bool:
    """Only failed attempts count against the limit (a successful login redirects)."""
    return bool(response.status_code != 302)


def throttled(account_key: Callable[[], str], *, per_address: bool = True) -> Callable[[F], F]:
    """Limit failed attempts per `account_key()` (e.g. tenant + user name) and per address, so that
    guessing one account's password from many addresses is slowed as much as many accounts from one."""

    def decorate(view: F) -> F:
        limited: Callable[..., Any] = limiter.limit(
            _limit, key_func=account_key, methods=["POST"], deduct_when=_failed
        )(view)
        if per_address:
            limited = limiter.limit(_limit, methods=["POST"], deduct_when=_failed)(limited)
        return limited  # type: ignore[return-value]

    return decorate


def submitted_username() -> str:
    return (request.form.get("username") or "").strip().lower()[:60]


def sign_in(*, account: Account | None = None, operator: Operator | None = None) -> None:
    """Start a new session for an authenticated account or operator, commit, and log it in."""
    session.clear()
    settings = current_app.config["FIVESTAR_SETTINGS"]
    token = start_session(
        db(),
        hours=settings.session_hours,
        account=account,
        operator=operator,
        ip_address=request.remote_addr,
        user_agent=request.user_agent.string,
    )
    db().flush()
    principal = load_principal(db(), token, tenant_id=account.tenant_id if account is not None else None)
    db().commit()
    if principal is None:  # pragma: no cover - the row was just written
        raise RuntimeError("a session that was just started could not be loaded")
    login_user(principal)
    session.permanent = True


def sign_out() -> None:
    """End the current session for good: the row is revoked, not just the cookie forgotten."""
    if current_user.is_authenticated:
        revoke_session(db(), current_user.get_id())
        db().commit()
    logout_user()
    session.clear()
    flash(_("您已退出登录。"), "info")
