"""Account services against a real database: passwords, links, roles, activation, audit hygiene."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts import services
from fivestar.accounts.models import Account, AuthSession, Invitation
from fivestar.accounts.passwords import verify_password
from fivestar.accounts.sessions import hash_token, start_session
from fivestar.audit.models import AuditEvent
from fivestar.db import utcnow
from fivestar.enums import OrgKind, Role
from fivestar.errors import NotFoundError, ServiceError
from fivestar.outbox.models import DeliveryState, OutboxMessage
from fivestar.tenancy import tenant_context

TEST_PASSWORD = "correct-horse-battery"  # what the conftest factories set
NEW_PASSWORD = "a-much-better-passphrase"
LINK_BASE = "http://fivestar.test/t/x/invite/"


class Links:
    """A link builder that remembers the tokens it was given (the e-mail is the only other copy)."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def __call__(self, token: str) -> str:
        self.tokens.append(token)
        return LINK_BASE + token


@pytest.fixture
def world(two_tenants: dict[str, Any], session: Session) -> Iterator[dict[str, Any]]:
    """District A, entered as its tenant for the whole test."""
    a = two_tenants["a"]
    with tenant_context(a["tenant"].id):
        yield a


def _live_sessions(session: Session, account: Account) -> set[str]:
    return set(
        session.scalars(
            select(AuthSession.token_hash).where(AuthSession.account_id == account.id, AuthSession.revoked_at.is_(None))
        )
    )


def _audit(session: Session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _all_audit_text(session: Session) -> str:
    events = session.scalars(select(AuditEvent))
    return "\n".join(json.dumps([e.before, e.after, e.reason], ensure_ascii=False) for e in events)


# --- authentication ------------------------------------------------------------------------------


def test_authenticate_is_the_same_refusal_for_unknown_and_wrong(world: dict[str, Any], session: Session) -> None:
    admin = world["admin"]
    assert services.authenticate_account(session, "admin", TEST_PASSWORD) is admin
    assert services.authenticate_account(session, "admin", "wrong-password") is None
    assert services.authenticate_account(session, "nobody", TEST_PASSWORD) is None


# --- creating ------------------------------------------------------------------------------------


def test_create_account_links_a_member_and_audits_without_secrets(world: dict[str, Any], session: Session) -> None:
    member = world["members"][1]
    account = services.create_account(
        session, username="li.si", display_name="", email=" Li.Si@Example.ORG ", member_no=member.member_no
    )
    assert account.member_id == member.id
    assert account.display_name == member.name  # taken from the member when left empty
    assert account.email == "Li.Si@example.org"  # domain normalised
    assert account.password_hash is None
    assert services.authenticate_account(session, "li.si", "") is None
    event = _audit(session, "account.create")[-1]
    assert event.object_id == str(account.id)
    assert event.after is not None and event.after["username"] == "li.si"
    assert "password_hash" not in event.after


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"username": "ADMIN"}, "username"),  # taken, whatever the case
        ({"username": "a"}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "new.user", "email": "not-an-address"}, "email"),
        ({"username": "new.user", "member_no": "NO999"}, "member_no"),
        ({"username": "new.user", "member_no": "NO001"}, "member_no"),  # already the secretary's member
        ({"username": "new.user", "display_name": ""}, "display_name"),
    ],
)
def test_create_account_refusals_name_the_field(
    world: dict[str, Any], session: Session, kwargs: dict[str, str], field: str
) -> None:
    arguments = {"display_name": "新用户", **kwargs}
    before = session.scalar(select(Account.id).order_by(Account.id.desc()).limit(1))
    with pytest.raises(ServiceError) as caught:
        services.create_account(session, **arguments)
    assert caught.value.field == field
    assert session.scalar(select(Account.id).order_by(Account.id.desc()).limit(1)) == before


def test_usernames_are_per_tenant(two_tenants: dict[str, Any], session: Session) -> None:
    for key in ("a", "b"):
        with tenant_context(two_tenants[key]["tenant"].id):
            services.create_account(session, username="same.name", display_name="同名")
    session.flush()


# --- passwords -----------------------------------------------------------------------------------


def test_change_password_keeps_current_session_and_ends_the_others(world: dict[str, Any], session: Session) -> None:
    account = world["secretary"]
    current = start_session(session, hours=1, account=account)
    other = start_session(session, hours=1, account=account)
    session.flush()
    with pytest.raises(ServiceError) as wrong:
        services.change_password(session, account, current_password="nope", new_password=NEW_PASSWORD)
    assert wrong.value.field == "current_password"
    with pytest.raises(ServiceError) as weak:
        services.change_password(session, account, current_password=TEST_PASSWORD, new_password="short")
    assert weak.value.field == "new_password"
    with pytest.raises(ServiceError) as mismatch:
        services.change_password(
            session, account, current_password=TEST_PASSWORD, new_password=NEW_PASSWORD, confirm="different-one!"
        )
    assert mismatch.value.field == "confirm"
    assert _live_sessions(session, account) == {hash_token(current), hash_token(other)}

    services.change_password(
        session, account, current_password=TEST_PASSWORD, new_password=NEW_PASSWORD, keep_token=current
    )
    assert _live_sessions(session, account) == {hash_token(current)}
    assert verify_password(account.password_hash, NEW_PASSWORD)
    assert not verify_password(account.password_hash, TEST_PASSWORD)
    event = _audit(session, "account.password_change")[-1]
    assert event.after is not None and event.after["sessions_ended"] == 1


def test_argon2id_parameters_in_the_stored_hash(world: dict[str, Any], session: Session) -> None:
    account = world["secretary"]
    services.change_password(session, account, current_password=TEST_PASSWORD, new_password=NEW_PASSWORD)
    session.flush()
    stored = session.scalar(select(Account.password_hash).where(Account.id == account.id))
    match = re.fullmatch(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[^$]+\$[^$]+", stored or "")
    assert match, stored
    memory, time_cost, parallelism = (int(part) for part in match.groups())
    assert memory >= 19456 and time_cost >= 2 and parallelism == 1


def test_temporary_password_forces_a_change_and_ends_every_session(world: dict[str, Any], session: Session) -> None:
    account = world["secretary"]
    start_session(session, hours=1, account=account)
    link = Invitation(  # an open link must end too
        account_id=account.id, token_hash=hash_token("open-link"), expires_at=utcnow() + dt.timedelta(days=1)
    )
    session.add(link)
    session.flush()

    temporary = services.reset_password_temporary(session, account, reason="忘记密码")
    assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", temporary)
    assert account.must_change_password is True
    assert _live_sessions(session, account) == set()
    assert services.authenticate_account(session, account.username, TEST_PASSWORD) is None
    assert services.authenticate_account(session, account.username, temporary) is account
    session.refresh(link)
    assert link.revoked_at is not None
    event = _audit(session, "account.password_reset")[-1]
    assert event.after is not None and event.after["method"] == "temporary" and event.reason == "忘记密码"
    everything = _all_audit_text(session)
    assert temporary not in everything and "$argon2" not in everything


def test_temporary_passwords_differ() -> None:
    assert len({services.generate_temporary_password() for _ in range(20)}) == 20


# --- links ---------------------------------------------------------------------------------------


def test_invitation_writes_one_email_and_a_reinvite_revokes_the_first_link(
    world: dict[str, Any], session: Session, settings: Any
) -> None:
    account = services.create_account(session, username="wang.wu", display_name="王五", email="wang@example.org")
    links = Links()
    first = services.invite(session, account, settings=settings, link_for=links)
    second = services.invite(session, account, settings=settings, link_for=links)
    session.refresh(first.invitation)
    assert first.invitation.revoked_at is not None and second.invitation.revoked_at is None
    lifetime = second.invitation.expires_at - second.invitation.created_at
    assert lifetime == dt.timedelta(days=settings.invitation_days)
    messages = list(session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "wang@example.org")))
    assert len(messages) == 2
    latest = max(messages, key=lambda m: m.id)
    assert latest.state is DeliveryState.PENDING
    assert second.url in latest.body_text and "wang.wu" in latest.body_text
    assert latest.body_html is not None and second.url in latest.body_html
    assert latest.body_text.index("您好") < latest.body_text.index("Hello")  # Chinese first, English beneath
    with pytest.raises(services.LinkGoneError):
        services.find_link(session, links.tokens[0])
    assert services.find_link(session, links.tokens[1])[1] is account
    everything = _all_audit_text(session)
    assert all(token not in everything for token in links.tokens)
    assert all(hash_token(token) not in everything for token in links.tokens)


def test_invitation_needs_an_address_and_no_password(world: dict[str, Any], session: Session, settings: Any) -> None:
    bare = services.create_account(session, username="no.mail", display_name="无邮箱")
    with pytest.raises(ServiceError) as no_mail:
        services.invite(session, bare, settings=settings, link_for=Links())
    assert no_mail.value.field == "email"
    world["secretary"].email = "sec@example.org"
    with pytest.raises(ServiceError):
        services.invite(session, world["secretary"], settings=settings, link_for=Links())


def test_accepting_a_link_sets_the_password_once(world: dict[str, Any], session: Session, settings: Any) -> None:
    account = services.create_account(session, username="zhao.liu", display_name="赵六", email="zl@example.org")
    links = Links()
    services.invite(session, account, settings=settings, link_for=links)
    token = links.tokens[0]
    with pytest.raises(ServiceError) as weak:
        services.accept_link(session, token, new_password="zhao.liu-1234567")  # contains the user name
    assert weak.value.field == "new_password"
    services.accept_link(session, token, new_password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert services.authenticate_account(session, "zhao.liu", NEW_PASSWORD) is account
    with pytest.raises(services.LinkGoneError) as used:
        services.accept_link(session, token, new_password="another-passphrase")
    assert used.value.status == 410
    assert services.authenticate_account(session, "zhao.liu", NEW_PASSWORD) is account
    event = _audit(session, "account.password_set")[-1]
    assert event.actor_kind == "account" and event.actor_id == account.id


def test_expired_unknown_and_foreign_links(two_tenants: dict[str, Any], session: Session, settings: Any) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    links = Links()
    with tenant_context(a["tenant"].id):
        account = services.create_account(session, username="qian.qi", display_name="钱七", email="qq@example.org")
        issued = services.invite(session, account, settings=settings, link_for=links)
        with pytest.raises(NotFoundError) as unknown:
            services.find_link(session, "no-such-token")
        assert unknown.value.status == 404
    with tenant_context(b["tenant"].id), pytest.raises(NotFoundError):
        services.find_link(session, links.tokens[0])  # a link of district A is nothing in district B
    with tenant_context(a["tenant"].id):
        issued.invitation.expires_at = utcnow() - dt.timedelta(seconds=1)
        session.flush()
        with pytest.raises(services.LinkGoneError) as expired:
            services.accept_link(session, links.tokens[0], new_password=NEW_PASSWORD)
        assert "过期" in expired.value.message
        assert session.scalar(select(Account.password_hash).where(Account.id == account.id)) is None


def test_reset_link_ends_the_old_password_and_sessions(world: dict[str, Any], session: Session, settings: Any) -> None:
    account = world["secretary"]
    account.email = "sec@example.org"
    start_session(session, hours=1, account=account)
    links = Links()
    issued = services.send_reset_link(session, account, settings=settings, link_for=links)
    assert services.authenticate_account(session, account.username, TEST_PASSWORD) is None
    assert _live_sessions(session, account) == set()
    assert issued.invitation.expires_at - issued.invitation.created_at == dt.timedelta(hours=services.RESET_LINK_HOURS)
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key.startswith("password-reset:")))
    assert message is not None and issued.url in message.body_text
    services.accept_link(session, links.tokens[0], new_password=NEW_PASSWORD)
    assert services.authenticate_account(session, account.username, NEW_PASSWORD) is account


def test_reset_link_needs_an_address(world: dict[str, Any], session: Session, settings: Any) -> None:
    account = world["secretary"]
    with pytest.raises(ServiceError):
        services.send_reset_link(session, account, settings=settings, link_for=Links())
    assert services.authenticate_account(session, account.username, TEST_PASSWORD) is account


# --- roles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "org_key", "ok"),
    [
        (Role.ORG_STAFF, "party", True),
        (Role.ORG_STAFF, "branch", False),
        (Role.ORG_STAFF, None, False),
        (Role.BRANCH_SECRETARY, "branch", True),
        (Role.BRANCH_COMMITTEE, "retirees", True),
        (Role.BRANCH_SECRETARY, "party", False),
        (Role.BRANCH_COMMITTEE, "root", False),
        (Role.INSPECTOR, None, True),
        (Role.COMMITTEE_MEMBER, "party", False),
        (Role.MEMBER, None, True),
    ],
)
def test_role_scope_must_match_the_organisation_kind(
    world: dict[str, Any], session: Session, role: Role, org_key: str | None, ok: bool
) -> None:
    from fivestar.orgs.models import Organisation

    account = services.create_account(session, username="role.test", display_name="角色测试")
    org = None
    if org_key == "root":
        org = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
    elif org_key:
        org = world[org_key]
    if ok:
        grant = services.grant_role(session, account, role, org)
        assert grant.id is not None and grant.role is role
    else:
        with pytest.raises(ServiceError) as refused:
            services.grant_role(session, account, role, org)
        assert refused.value.field == "organisation_id"
        assert account.grants == []


def test_role_changes_end_sessions_and_are_audited(world: dict[str, Any], session: Session) -> None:
    account = world["secretary"]
    start_session(session, hours=1, account=account)
    mine = start_session(session, hours=1, account=account)
    session.flush()
    grant = services.grant_role(session, account, Role.INSPECTOR, keep_token=mine)
    assert _live_sessions(session, account) == {hash_token(mine)}
    with pytest.raises(ServiceError):
        services.grant_role(session, account, Role.INSPECTOR)  # already held
    services.revoke_role(session, account, grant)
    assert _live_sessions(session, account) == set()
    assert [g.role for g in account.grants] == [Role.BRANCH_SECRETARY]
    granted = _audit(session, "account.role_grant")[-1]
    revoked = _audit(session, "account.role_revoke")[-1]
    assert granted.after is not None and granted.after["role"] == "inspector"
    assert revoked.before is not None and revoked.before["role"] == "inspector"


def test_the_last_administrator_keeps_the_role(world: dict[str, Any], session: Session) -> None:
    admin = world["admin"]
    only = admin.grants[0]
    with pytest.raises(ServiceError):
        services.revoke_role(session, admin, only)
    with pytest.raises(ServiceError):
        services.deactivate_account(session, admin)
    second = services.create_account(session, username="admin2", display_name="管理员二")
    services.grant_role(session, second, Role.TENANT_ADMIN)
    services.revoke_role(session, admin, only)
    assert admin.grants == []


# --- activation ----------------------------------------------------------------------------------


def test_deactivation_ends_sessions_links_and_logins(world: dict[str, Any], session: Session, settings: Any) -> None:
    admin, account = world["admin"], world["secretary"]
    with pytest.raises(ServiceError):
        services.deactivate_account(session, admin, acting_account_id=admin.id)
    start_session(session, hours=1, account=account)
    link = Invitation(account_id=account.id, token_hash=hash_token("t1"), expires_at=utcnow() + dt.timedelta(days=1))
    session.add(link)
    session.flush()
    services.deactivate_account(session, account, acting_account_id=admin.id, reason="调离")
    assert _live_sessions(session, account) == set()
    session.refresh(link)
    assert link.revoked_at is not None
    assert services.authenticate_account(session, account.username, TEST_PASSWORD) is None
    with pytest.raises(ServiceError):
        services.deactivate_account(session, account)
    with pytest.raises(ServiceError):
        services.reset_password_temporary(session, account)
    services.reactivate_account(session, account)
    assert services.authenticate_account(session, account.username, TEST_PASSWORD) is account
    assert [e.reason for e in _audit(session, "account.deactivate")] == ["调离"]
    assert len(_audit(session, "account.reactivate")) == 1


def test_changing_the_address_revokes_links_sent_to_the_old_one(
    world: dict[str, Any], session: Session, settings: Any
) -> None:
    account = services.create_account(session, username="sun.ba", display_name="孙八", email="old@example.org")
    issued = services.invite(session, account, settings=settings, link_for=Links())
    services.update_account(session, account, display_name="孙八", email="new@example.org")
    session.refresh(issued.invitation)
    assert issued.invitation.revoked_at is not None
    event = _audit(session, "account.update")[-1]
    assert event.before is not None and event.before["email"] == "old@example.org"
    assert event.after is not None and event.after["email"] == "new@example.org"
