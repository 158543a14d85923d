"""Hosting operator accounts (平台运营方): create, reset a password, deactivate, reactivate.

Operators manage tenants and belong to none, so their audit events carry no tenant. Services
flush, never commit; a refused change raises `ServiceError` and writes nothing.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.accounts.models import Operator
from fivestar.accounts.passwords import hash_password, password_problem
from fivestar.accounts.sessions import revoke_operator_sessions
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _

USERNAME_PATTERN = r"^[A-Za-z][A-Za-z0-9._-]{2,59}$"
OPERATOR_FIELDS = ("username", "display_name", "email", "active")


def _end_sessions(session: Session, operator: Operator) -> int:
    return revoke_operator_sessions(session, operator_id=operator.id)


def _check_password(password: str, username: str) -> None:
    problem = password_problem(password, username=username)
    if problem:
        raise ServiceError(problem, field="password")


def get_operator(session: Session, username: str) -> Operator:
    operator = session.scalar(select(Operator).where(Operator.username == username.strip()))
    if operator is None:
        raise NotFoundError(_("没有用户名为 %(name)s 的运营人员", name=username.strip()), field="username")
    return operator


def list_operators(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.username)))


def create_operator(
    session: Session, *, username: str, display_name: str, password: str, email: str | None = None
) -> Operator:
    username = username.strip()
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise ServiceError(
            _("用户名须为 3–60 个字母、数字、点、下划线或连字符，以字母开头"), field="username"
        )
    display_name = display_name.strip()
    if not display_name or len(display_name) > 60:
        raise ServiceError(_("请填写姓名（最多 60 个字）"), field="display_name")
    email = (email or "").strip() or None
    if email is not None and (len(email) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email)):
        raise ServiceError(_("电子邮箱格式不正确"), field="email")
    if session.scalar(select(Operator.id).where(func.lower(Operator.username) == username.lower())) is not None:
        raise ServiceError(_("用户名 %(name)s 已被使用", name=username), field="username")
    _check_password(password, username)
    operator = Operator(
        username=username, display_name=display_name, email=email, password_hash=hash_password(password), active=True
    )
    session.add(operator)
    session.flush()
    audit.record(session, "operator.create", operator, after=audit.snapshot(operator, OPERATOR_FIELDS), tenant_id=None)
    return operator


def reset_operator_password(session: Session, operator: Operator, password: str) -> Operator:
    """Set a new password and end the operator's sessions (a stolen cookie stops working)."""
    _check_password(password, operator.username)
    operator.password_hash = hash_password(password)
    revoked = _end_sessions(session, operator)
    audit.record(session, "operator.password_reset", operator, after={"sessions_revoked": revoked}, tenant_id=None)
    session.flush()
    return operator


def deactivate_operator(session: Session, operator: Operator) -> Operator:
    """Stop an operator from logging in. The last active operator cannot be deactivated."""
    if not operator.active:
        raise ServiceError(_("该运营人员已停用"))
    others = session.scalar(
        select(func.count()).select_from(Operator).where(Operator.active.is_(True), Operator.id != operator.id)
    )
    if not others:
        raise ServiceError(_("不能停用最后一名在用的运营人员"))
    before = audit.snapshot(operator, OPERATOR_FIELDS)
    operator.active = False
    revoked = _end_sessions(session, operator)
    after = {**audit.snapshot(operator, OPERATOR_FIELDS), "sessions_revoked": revoked}
    audit.record(session, "operator.deactivate", operator, before=before, after=after, tenant_id=None)
    session.flush()
    return operator


def activate_operator(session: Session, operator: Operator) -> Operator:
    if operator.active:
        raise ServiceError(_("该运营人员已在用"))
    before = audit.snapshot(operator, OPERATOR_FIELDS)
    operator.active = True
    audit.record(
        session, "operator.activate", operator, before=before, after=audit.snapshot(operator, OPERATOR_FIELDS),
        tenant_id=None,
    )
    session.flush()
    return operator


__all__ = [
    "activate_operator",
    "create_operator",
    "deactivate_operator",
    "get_operator",
    "list_operators",
    "reset_operator_password",
]
