"""Account operations: authentication, passwords, invitations, roles, activation.

Services flush, never commit, and refuse with `ServiceError`. Everything that changes who can log
in, or with which rights, ends the account's sessions (`revoke_account_sessions`) and writes an
audit event. Audit snapshots never contain password hashes, temporary passwords or link tokens.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.accounts.models import Account, Invitation, Operator, RoleGrant
from fivestar.accounts.passwords import hash_password, needs_rehash, password_problem, verify_password
from fivestar.accounts.sessions import hash_token, new_token, revoke_account_sessions
from fivestar.config import Settings
from fivestar.db import utcnow
from fivestar.enums import MemberStatus, OrgKind, Role
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.kernel.versioning import UNCHECKED, Submitted, expect_version, saving
from fivestar.labels import label
from fivestar.orgs.models import Organisation
from fivestar.outbox.services import normalise_recipient, queue_email
from fivestar.people.models import Member
from fivestar.tenants.models import Tenant

ACCOUNT_FIELDS = ("username", "display_name", "email", "member_id", "active", "must_change_password")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,59}$")
RESET_LINK_HOURS = 24  # a reset link is short-lived; invitations last settings.invitation_days
TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud or copied by hand

# Which organisations each scoped role may name (enums.Role.needs_organisation).
ROLE_ORG_KINDS: dict[Role, frozenset[OrgKind]] = {
    Role.ORG_STAFF: frozenset({OrgKind.PARTY_COMMITTEE, OrgKind.GENERAL_BRANCH}),
    Role.BRANCH_SECRETARY: frozenset({OrgKind.BRANCH, OrgKind.RETIREE_BRANCH}),
    Role.BRANCH_COMMITTEE: frozenset({OrgKind.BRANCH, OrgKind.RETIREE_BRANCH}),
}

# Builds the absolute link for a token (the view knows the URL map and the configured base URL).
LinkBuilder = Callable[[str], str]


# --- authentication ------------------------------------------------------------------------------


def authenticate_account(session: Session, username: str, password: str) -> Account | None:
    """The active account of the current tenant with this name and password, or None.

    Runs the same hash work whether or not the name exists, so timing reveals nothing.
    """
    account = session.scalar(select(Account).where(Account.username == username.strip()))
    if account is None or not account.active:
        verify_password(None, password)
        return None
    if not verify_password(account.password_hash, password):
        return None
    if account.password_hash and needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    return account


def authenticate_operator(session: Session, username: str, password: str) -> Operator | None:
    operator = session.scalar(select(Operator).where(Operator.username == username.strip()))
    if operator is None or not operator.active:
        verify_password(None, password)
        return None
    if not verify_password(operator.password_hash, password):
        return None
    return operator


# --- helpers -------------------------------------------------------------------------------------


def _snapshot(account: Account) -> dict[str, object]:
    return audit.snapshot(account, ACCOUNT_FIELDS)


def _check_new_password(account: Account, password: str, confirm: str | None = None) -> None:
    problem = password_problem(password, username=account.username)
    if problem:
        raise ServiceError(problem, field="new_password")
    if confirm is not None and confirm != password:
        raise ServiceError(_("两次输入的密码不一致"), field="confirm")


def _revoke_open_links(session: Session, account: Account) -> int:
    """Invalidate every unused link of the account (a new link, a reset or a deactivation)."""
    now = utcnow()
    result = session.execute(
        update(Invitation)
        .where(Invitation.account_id == account.id, Invitation.used_at.is_(None), Invitation.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _end_sessions(session: Session, account: Account, keep_token: str | None = None) -> int:
    return revoke_account_sessions(session, tenant_id=account.tenant_id, account_id=account.id, keep_token=keep_token)


def _active_admin_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count(func.distinct(RoleGrant.account_id)))
            .join(Account, Account.id == RoleGrant.account_id)
            .where(RoleGrant.role == Role.TENANT_ADMIN, Account.active.is_(True))
        )
        or 0
    )


def _is_admin(account: Account) -> bool:
    return any(grant.role is Role.TENANT_ADMIN for grant in account.grants)


# --- creating and editing ------------------------------------------------------------------------


def _clean_email(email: str | None) -> str | None:
    email = (email or "").strip()
    return normalise_recipient(email) if email else None


def _member_by_number(session: Session, member_no: str) -> Member:
    member = session.scalar(select(Member).where(Member.member_no == member_no.strip()))
    if member is None:
        raise ServiceError(_("找不到党员编号 %(no)s", no=member_no.strip()), field="member_no")
    if member.status is not MemberStatus.ACTIVE:
        raise ServiceError(_("党员 %(name)s 已转出，不能关联账号", name=member.name), field="member_no")
    taken = session.scalar(select(Account.username).where(Account.member_id == member.id))
    if taken is not None:
        raise ServiceError(
            _("党员 %(name)s 已关联账号 %(username)s", name=member.name, username=taken), field="member_no"
        )
    return member


def create_account(
    session: Session,
    *,
    username: str,
    display_name: str,
    email: str | None = None,
    member_no: str | None = None,
) -> Account:
    """A new account without a password: it logs in after an invitation or a reset by an administrator."""
    username = username.strip()
    if not USERNAME_PATTERN.fullmatch(username):
        raise ServiceError(_("用户名须为 3–60 个字母、数字或 . _ @ -，以字母或数字开头"), field="username")
    if session.scalar(select(Account.id).where(func.lower(Account.username) == username.lower())) is not None:
        raise ServiceError(_("用户名 %(username)s 已被使用", username=username), field="username")
    member = _member_by_number(session, member_no) if member_no and member_no.strip() else None
    display_name = display_name.strip() or (member.name if member else "")
    if not display_name:
        raise ServiceError(_("请填写姓名"), field="display_name")
    if len(display_name) > 60:
        raise ServiceError(_("姓名最多 60 个字符"), field="display_name")
    account = Account(
        username=username,
        display_name=display_name,
        email=_clean_email(email),
        password_hash=None,
        member_id=member.id if member else None,
        active=True,
        must_change_password=False,
    )
    session.add(account)
    session.flush()
    audit.record(session, "account.create", account, after=_snapshot(account))
    return account


def update_account(
    session: Session, account: Account, *, display_name: str, email: str | None, version: Submitted = UNCHECKED
) -> Account:
    """Correct the name or the e-mail address (where invitations and reset links go). `version` is what
    the edit form sent: a page opened before someone else's save is refused, nothing written."""
    expect_version(account, version)
    display_name = display_name.strip()
    if not display_name:
        raise ServiceError(_("请填写姓名"), field="display_name")
    if len(display_name) > 60:
        raise ServiceError(_("姓名最多 60 个字符"), field="display_name")
    new_email = _clean_email(email)
    if account.display_name == display_name and account.email == new_email:
        return account
    before = _snapshot(account)
    email_changed = account.email != new_email
    with saving(session):
        account.display_name = display_name
        account.email = new_email
    if email_changed:
        _revoke_open_links(session, account)  # a link mailed to the old address must not stay usable
    session.flush()
    audit.record(session, "account.update", account, before=before, after=_snapshot(account))
    return account


# --- passwords -----------------------------------------------------------------------------------


def change_password(
    session: Session,
    account: Account,
    *,
    current_password: str,
    new_password: str,
    confirm: str | None = None,
    keep_token: str | None = None,
) -> Account:
    """The account holder changes their own password; every other session of theirs ends."""
    if not verify_password(account.password_hash, current_password):
        raise ServiceError(_("当前密码不正确"), field="current_password")
    _check_new_password(account, new_password, confirm)
    if current_password == new_password:
        raise ServiceError(_("新密码不能与当前密码相同"), field="new_password")
    before = _snapshot(account)
    account.password_hash = hash_password(new_password)
    account.must_change_password = False
    ended = _end_sessions(session, account, keep_token=keep_token)
    session.flush()
    audit.record(
        session,
        "account.password_change",
        account,
        before=before,
        after={**_snapshot(account), "sessions_ended": ended},
    )
    return account


def generate_temporary_password() -> str:
    """Twelve random characters in three groups (about 59 bits), easy to read out and type."""
    while True:
        raw = "".join(secrets.choice(TEMPORARY_ALPHABET) for _ in range(12))
        candidate = f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
        if password_problem(candidate) is None:
            return candidate


def reset_password_temporary(session: Session, account: Account, *, reason: str | None = None) -> str:
    """An administrator sets a one-time password, shown once; the holder must change it at login.

    Returns the password: the caller shows it and forgets it. It is stored only as a hash.
    """
    if not account.active:
        raise ServiceError(_("账号已停用，请先启用"))
    temporary = generate_temporary_password()
    before = _snapshot(account)
    account.password_hash = hash_password(temporary)
    account.must_change_password = True
    _revoke_open_links(session, account)
    ended = _end_sessions(session, account)
    session.flush()
    audit.record(
        session,
        "account.password_reset",
        account,
        before=before,
        after={**_snapshot(account), "method": "temporary", "sessions_ended": ended},
        reason=reason,
    )
    return temporary


# --- links (invitations and reset links) --------------------------------------------------------


@dataclass(frozen=True)
class IssuedLink:
    invitation: Invitation
    url: str


def _issue_link(session: Session, account: Account, lifetime: dt.timedelta, link_for: LinkBuilder) -> IssuedLink:
    _revoke_open_links(session, account)
    token = new_token()
    now = utcnow()
    invitation = Invitation(
        account_id=account.id, token_hash=hash_token(token), created_at=now, expires_at=now + lifetime
    )
    session.add(invitation)
    session.flush()
    return IssuedLink(invitation, link_for(token))


def _mail_context(session: Session, account: Account, issued: IssuedLink) -> dict[str, object]:
    """What both link e-mails show: who, for which committee, the link and its end in local time."""
    row = session.execute(select(Tenant.name, Tenant.timezone).where(Tenant.id == account.tenant_id)).one()
    expires = issued.invitation.expires_at.astimezone(ZoneInfo(row.timezone))
    return {
        "display_name": account.display_name,
        "username": account.username,
        "tenant_name": row.name,
        "link": issued.url,
        "expires": f"{expires:%Y-%m-%d %H:%M} ({row.timezone})",
    }


def invite(session: Session, account: Account, *, settings: Settings, link_for: LinkBuilder) -> IssuedLink:
    """E-mail a single-use link that lets the account set its first password.

    A new invitation revokes the previous link, so only the latest e-mail works.
    """
    if not account.active:
        raise ServiceError(_("账号已停用，请先启用"))
    if account.password_hash:
        raise ServiceError(_("该账号已设置密码；如需重置，请使用“重置密码”"))
    if not account.email:
        raise ServiceError(_("该账号没有电子邮箱，请先填写"), field="email")
    issued = _issue_link(session, account, dt.timedelta(days=settings.invitation_days), link_for)
    queue_email(
        session,
        recipient=account.email,
        subject="【五星争创】账号邀请 / Your Fivestar account",
        template="invitation",
        context={**_mail_context(session, account, issued), "days": settings.invitation_days},
        dedupe_key=f"invitation:{issued.invitation.id}",
    )
    audit.record(
        session,
        "account.invite",
        account,
        after={
            "invitation_id": issued.invitation.id,
            "email": account.email,
            "expires_at": issued.invitation.expires_at,
        },
    )
    return issued


def invitation_url(settings: Settings, tenant_slug: str, token: str) -> str:
    """The link of an invitation or reset e-mail, on the configured base URL.

    Web views build the same URL with `url_for` (accounts.views.link_builder); this one serves the
    command line, which has no request. tests/integration/test_tenant_admin.py follows both.
    """
    return f"{str(settings.base_url).rstrip('/')}/t/{tenant_slug}/invite/{token}"


def create_tenant_admin(
    session: Session,
    *,
    username: str,
    display_name: str,
    email: str | None = None,
    password: str | None = None,
    settings: Settings | None = None,
    link_for: LinkBuilder | None = None,
) -> tuple[Account, IssuedLink | None]:
    """An administrator (工委工作人员) of the current tenant, made by the hosting operator.

    A new district has no accounts, so its first administrator comes from outside: with `password`
    (the command line) the account must change it at first login; without, an invitation goes to
    `email`, and the operator never learns a password of a tenant account.
    """
    account = create_account(session, username=username, display_name=display_name, email=email)
    grant_role(session, account, Role.TENANT_ADMIN)
    if password is not None:
        _check_new_password(account, password)
        account.password_hash = hash_password(password)
        account.must_change_password = True
        audit.record(session, "account.password_set", account, after={"must_change_password": True})
        return account, None
    if settings is None or link_for is None:
        raise ValueError("an invitation needs settings and a link builder")
    return account, invite(session, account, settings=settings, link_for=link_for)


def send_reset_link(
    session: Session, account: Account, *, settings: Settings, link_for: LinkBuilder, reason: str | None = None
) -> IssuedLink:
    """An administrator resets a password by e-mail: the old password stops working at once, every
    session ends, and a short-lived single-use link lets the holder choose a new one."""
    if not account.active:
        raise ServiceError(_("账号已停用，请先启用"))
    if not account.email:
        raise ServiceError(_("该账号没有电子邮箱，无法发送重置链接；请改用临时密码"), field="email")
    before = _snapshot(account)
    account.password_hash = None
    account.must_change_password = False
    ended = _end_sessions(session, account)
    issued = _issue_link(session, account, dt.timedelta(hours=RESET_LINK_HOURS), link_for)
    queue_email(
        session,
        recipient=account.email,
        subject="【五星争创】重置密码 / Reset your Fivestar password",
        template="password_reset",
        context={**_mail_context(session, account, issued), "hours": RESET_LINK_HOURS},
        dedupe_key=f"password-reset:{issued.invitation.id}",
    )
    session.flush()
    audit.record(
        session,
        "account.password_reset",
        account,
        before=before,
        after={**_snapshot(account), "method": "link", "invitation_id": issued.invitation.id, "sessions_ended": ended},
        reason=reason,
    )
    return issued


class LinkGoneError(ServiceError):
    """The link existed but can no longer be used (expired, used, replaced): 410 Gone."""

    status = 410


def find_link(session: Session, token: str) -> tuple[Invitation, Account]:
    """The usable link for `token` in the current tenant and its account, or a clear refusal."""
    invitation = session.scalar(select(Invitation).where(Invitation.token_hash == hash_token(token or "")))
    if invitation is None:
        raise NotFoundError(_("链接无效。请检查邮件中的链接是否完整，或联系管理员重新发送。"))
    if invitation.used_at is not None:
        raise LinkGoneError(_("此链接已使用过。如需重新设置密码，请联系管理员。"))
    if invitation.revoked_at is not None:
        raise LinkGoneError(_("此链接已失效（管理员已重新发送或撤销）。请使用最新的邮件。"))
    if invitation.expires_at <= utcnow():
        raise LinkGoneError(_("此链接已过期。请联系管理员重新发送。"))
    account = session.scalar(select(Account).where(Account.id == invitation.account_id))
    if account is None or not account.active:
        raise LinkGoneError(_("账号已停用，链接不可使用。"))
    return invitation, account


def accept_link(session: Session, token: str, *, new_password: str, confirm: str | None = None) -> Account:
    """Set the password through an invitation or reset link, which is then used up.

    The link is consumed by a conditional UPDATE, so two submissions racing each other cannot both
    set a password.
    """
    invitation, account = find_link(session, token)
    _check_new_password(account, new_password, confirm)
    consumed = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_at.is_(None), Invitation.revoked_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if consumed != 1:
        raise LinkGoneError(_("此链接已使用过。如需重新设置密码，请联系管理员。"))
    before = _snapshot(account)
    account.password_hash = hash_password(new_password)
    account.must_change_password = False
    ended = _end_sessions(session, account)
    session.flush()
    with audit.acting_as(audit.Actor("account", account.id, account.display_name)):
        audit.record(
            session,
            "account.password_set",
            account,
            before=before,
            after={**_snapshot(account), "invitation_id": invitation.id, "sessions_ended": ended},
        )
    return account


# --- roles ---------------------------------------------------------------------------------------


def _check_scope(role: Role, organisation: Organisation | None) -> None:
    if not role.needs_organisation:
        if organisation is not None:
            raise ServiceError(_("%(role)s不限于某个组织，无需选择组织", role=label(role)), field="organisation_id")
        return
    if organisation is None:
        raise ServiceError(_("%(role)s须选择所属组织", role=label(role)), field="organisation_id")
    if not organisation.active:
        raise ServiceError(_("组织 %(name)s 已撤销", name=organisation.name), field="organisation_id")
    kinds = ROLE_ORG_KINDS[role]
    if organisation.kind not in kinds:
        allowed = "、".join(label(kind) for kind in sorted(kinds, key=list(OrgKind).index))
        raise ServiceError(_("%(role)s只能设在%(kinds)s", role=label(role), kinds=allowed), field="organisation_id")


def grant_role(
    session: Session,
    account: Account,
    role: Role,
    organisation: Organisation | None = None,
    *,
    keep_token: str | None = None,
) -> RoleGrant:
    """Give a role (scoped ones name their organisation); the account's sessions end.

    `keep_token` spares the acting administrator's own session when they change their own roles.
    """
    _check_scope(role, organisation)
    org_id = organisation.id if organisation is not None else None
    for grant in account.grants:
        if grant.role is role and grant.organisation_id == org_id:
            raise ServiceError(_("该账号已有此角色"), field="role")
    grant = RoleGrant(account_id=account.id, role=role, organisation_id=org_id)
    account.grants.append(grant)
    session.flush()
    ended = _end_sessions(session, account, keep_token=keep_token)
    audit.record(
        session,
        "account.role_grant",
        account,
        after={
            "grant_id": grant.id,
            "role": role,
            "organisation_id": org_id,
            "organisation": organisation.name if organisation is not None else None,
            "sessions_ended": ended,
        },
    )
    return grant


def revoke_role(session: Session, account: Account, grant: RoleGrant, *, keep_token: str | None = None) -> None:
    """Take a role away; the last active tenant administrator cannot lose theirs (no lock-out)."""
    if grant.account_id != account.id:
        raise NotFoundError(_("角色不存在"))
    if grant.role is Role.TENANT_ADMIN and account.active and _active_admin_count(session) <= 1:
        raise ServiceError(_("这是最后一位工委工作人员（管理员），不能撤销其角色"))
    before = {"grant_id": grant.id, "role": grant.role, "organisation_id": grant.organisation_id}
    account.grants.remove(grant)
    session.flush()
    ended = _end_sessions(session, account, keep_token=keep_token)
    audit.record(session, "account.role_revoke", account, before=before, after={"sessions_ended": ended})


# --- activation ----------------------------------------------------------------------------------


def deactivate_account(
    session: Session, account: Account, *, acting_account_id: int | None = None, reason: str | None = None
) -> Account:
    """Stop an account from logging in: its sessions and open links end at once."""
    if not account.active:
        raise ServiceError(_("账号已是停用状态"))
    if acting_account_id is not None and account.id == acting_account_id:
        raise ServiceError(_("不能停用自己的账号"))
    if _is_admin(account) and _active_admin_count(session) <= 1:
        raise ServiceError(_("这是最后一位工委工作人员（管理员），不能停用"))
    before = _snapshot(account)
    account.active = False
    ended = _end_sessions(session, account)
    _revoke_open_links(session, account)
    session.flush()
    audit.record(
        session,
        "account.deactivate",
        account,
        before=before,
        after={**_snapshot(account), "sessions_ended": ended},
        reason=reason,
    )
    return account


def reactivate_account(session: Session, account: Account, *, reason: str | None = None) -> Account:
    if account.active:
        raise ServiceError(_("账号已是启用状态"))
    before = _snapshot(account)
    account.active = True
    session.flush()
    audit.record(session, "account.reactivate", account, before=before, after=_snapshot(account), reason=reason)
    return account


__all__ = [
    "ACCOUNT_FIELDS",
    "ROLE_ORG_KINDS",
    "IssuedLink",
    "LinkGoneError",
    "accept_link",
    "authenticate_account",
    "authenticate_operator",
    "change_password",
    "create_account",
    "deactivate_account",
    "find_link",
    "generate_temporary_password",
    "grant_role",
    "invite",
    "reactivate_account",
    "reset_password_temporary",
    "revoke_role",
    "send_reset_link",
    "update_account",
]
