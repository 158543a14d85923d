"""Server-side login sessions: start, load, revoke.

The cookie holds a random token; only its SHA-256 is stored. A session belongs either to an
operator (no tenant) or to an account of exactly one tenant, and `load_principal` refuses a token
presented under any other tenant — a cookie from district A is worth nothing under district B.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fivestar.accounts.models import Account, AuthSession, Operator
from fivestar.accounts.principal import Grant, Principal
from fivestar.db import utcnow
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.tenancy import tenant_context

LAST_SEEN_RESOLUTION = dt.timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def start_session(
    session: Session,
    *,
    hours: int,
    account: Account | None = None,
    operator: Operator | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
) -> str:
    """Create a session row and return the token for the cookie (a new one at every login)."""
    if (account is None) == (operator is None):
        raise ValueError("a session belongs to exactly one account or one operator")
    token = new_token()
    now = utcnow()
    session.add(
        AuthSession(
            token_hash=hash_token(token),
            operator_id=operator.id if operator else None,
            tenant_id=account.tenant_id if account else None,
            account_id=account.id if account else None,
            created_at=now,
            last_seen_at=now,
            expires_at=now + dt.timedelta(hours=hours),
            ip_address=(ip_address or "")[:64] or None,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    if account is not None:
        # A plain UPDATE: signing in is not an edit, so it must neither move the account's version
        # (an administrator's open edit page stays current) nor collide with a concurrent edit. As the
        # account's own tenant, whoever calls (a login request has that tenant set already).
        with tenant_context(account.tenant_id):
            session.execute(
                update(Account)
                .where(Account.tenant_id == account.tenant_id, Account.id == account.id)
                .values(last_login_at=now)
            )
    elif operator is not None:
        operator.last_login_at = now
    return token


def revoke_session(session: Session, token: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == hash_token(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def revoke_account_sessions(session: Session, *, tenant_id: int, account_id: int, keep_token: str | None = None) -> int:
    """End every session of an account (password reset, role change, deactivation)."""
    statement = update(AuthSession).where(
        AuthSession.tenant_id == tenant_id,
        AuthSession.account_id == account_id,
        AuthSession.revoked_at.is_(None),
    )
    if keep_token is not None:
        statement = statement.where(AuthSession.token_hash != hash_token(keep_token))
    return session.execute(statement.values(revoked_at=utcnow())).rowcount  # type: ignore[attr-defined, no-any-return]


def revoke_operator_sessions(session: Session, *, operator_id: int, keep_token: str | None = None) -> int:
    statement = update(AuthSession).where(AuthSession.operator_id == operator_id, AuthSession.revoked_at.is_(None))
    if keep_token is not None:
        statement = statement.where(AuthSession.token_hash != hash_token(keep_token))
    return session.execute(statement.values(revoked_at=utcnow())).rowcount  # type: ignore[attr-defined, no-any-return]


def _live_row(session: Session, token: str) -> AuthSession | None:
    row = session.scalar(select(AuthSession).where(AuthSession.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    return row


def _touch(row: AuthSession) -> None:
    now = utcnow()
    if now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
        row.last_seen_at = now


def load_principal(session: Session, token: str, *, tenant_id: int | None) -> Principal | None:
    """The principal for a cookie token within the current tenant (None for operator pages)."""
    row = _live_row(session, token)
    if row is None:
        return None
    if row.operator_id is not None:
        if tenant_id is not None:
            return None  # operators have no account inside a tenant
        operator = session.get(Operator, row.operator_id)
        if operator is None or not operator.active:
            return None
        _touch(row)
        return Principal(
            session_token=token,
            display_name=operator.display_name,
            operator_id=operator.id,
            username=operator.username,
        )
    if tenant_id is None or row.tenant_id != tenant_id or row.account_id is None:
        return None
    account = session.scalar(select(Account).where(Account.id == row.account_id))
    if account is None or not account.active:
        return None
    _touch(row)
    scope_ids = {grant.organisation_id for grant in account.grants if grant.organisation_id is not None}
    paths: dict[int, str] = {}
    if scope_ids:
        paths = {
            org_id: path
            for org_id, path in session.execute(
                select(Organisation.id, Organisation.path).where(Organisation.id.in_(scope_ids))
            )
        }
    member_branch_path = None
    if account.member_id is not None:
        member_branch_path = session.scalar(
            select(Organisation.path)
            .join(Member, Member.branch_id == Organisation.id)
            .where(Member.id == account.member_id)
        )
    grants = tuple(
        Grant(
            role=grant.role,
            organisation_id=grant.organisation_id,
            organisation_path=paths.get(grant.organisation_id) if grant.organisation_id else None,
        )
        for grant in account.grants
    )
    return Principal(
        session_token=token,
        display_name=account.display_name,
        tenant_id=account.tenant_id,
        account_id=account.id,
        member_id=account.member_id,
        member_branch_path=member_branch_path,
        username=account.username,
        must_change_password=account.must_change_password,
        grants=grants,
    )
