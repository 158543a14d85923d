"""Account administration pages: who may use them, the list, creating, inviting, roles, resets,
deactivation, the outbox page — and that each change ends the right sessions and is audited."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts.models import Account, Invitation, RoleGrant
from fivestar.audit.models import AuditEvent
from fivestar.enums import OrgKind, Role
from fivestar.outbox.models import DeliveryState, OutboxMessage
from fivestar.tenancy import tenant_context
from tests.support import count_queries

TEST_PASSWORD = "correct-horse-battery"  # what the conftest factories set
NEW_PASSWORD = "a-much-better-passphrase"


@pytest.fixture
def browser(app: Flask, client: FlaskClient) -> Callable[[], FlaskClient]:
    """Independent browsers (see tests/web/test_auth.py: the shared `client` preserves its request
    context, so tests that need several browsers make every request through these)."""
    return app.test_client


def sign_in(browser: FlaskClient, tenant: Any, username: str, password: str = TEST_PASSWORD) -> Any:
    response = browser.post(f"/t/{tenant.slug}/login", data={"username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


@pytest.fixture
def a(two_tenants: dict[str, Any]) -> dict[str, Any]:
    return two_tenants["a"]


@pytest.fixture
def admin(browser: Callable[[], FlaskClient], a: dict[str, Any]) -> FlaskClient:
    client = browser()
    sign_in(client, a["tenant"], "admin")
    return client


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr("fivestar.broker.enqueue", lambda settings, name, *args, **kw: calls.append(name))
    return calls


def url(tenant: Any, path: str) -> str:
    return f"/t/{tenant.slug}/accounts{path}"


def home_ok(client: FlaskClient, tenant: Any) -> bool:
    response = client.get(f"/t/{tenant.slug}/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    return False


def audit_actions(session: Session, tenant: Any) -> list[str]:
    with tenant_context(tenant.id):
        return list(
            session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.id).order_by(AuditEvent.id))
        )


def account_named(session: Session, tenant: Any, username: str) -> Account:
    session.expire_all()
    with tenant_context(tenant.id):
        found = session.scalar(select(Account).where(Account.username == username))
    assert found is not None
    return found


# --- who may open the pages ----------------------------------------------------------------------


def test_only_tenant_administrators_manage_accounts(
    browser: Callable[[], FlaskClient], a: dict[str, Any], create_account: Any
) -> None:
    tenant = a["tenant"]
    anonymous = browser().get(url(tenant, "/"))
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    create_account(tenant, roles=[(Role.INSPECTOR, None)], username="inspector")
    create_account(tenant, roles=[(Role.COMMITTEE_MEMBER, None)], username="weiyuan")
    for username in ("secretary", "inspector", "weiyuan"):
        client = browser()
        sign_in(client, tenant, username)
        assert client.get(url(tenant, "/")).status_code == 403
        assert client.get(url(tenant, "/outbox")).status_code == 403
        assert client.post(url(tenant, f"/{a['admin'].id}/deactivate")).status_code in (403, 404)
        assert client.get(url(tenant, f"/{a['admin'].id}")).status_code in (403, 404)


def test_another_districts_accounts_are_not_found(
    admin: FlaskClient, two_tenants: dict[str, Any], session: Session
) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    foreign = b["secretary"].id
    assert admin.get(url(a["tenant"], f"/{foreign}")).status_code == 404
    assert admin.post(url(a["tenant"], f"/{foreign}/deactivate")).status_code == 404
    assert account_named(session, b["tenant"], "secretary").active is True
    assert admin.get(url(b["tenant"], "/")).status_code == 302  # not logged in over there


def test_menu_shows_accounts_to_administrators(admin: FlaskClient, a: dict[str, Any]) -> None:
    page = admin.get(f"/t/{a['tenant'].slug}/").get_data(as_text=True)
    assert f'href="/t/{a["tenant"].slug}/accounts/"' in page


# --- the list ------------------------------------------------------------------------------------


def test_list_shows_roles_with_their_organisations_and_filters(admin: FlaskClient, a: dict[str, Any]) -> None:
    tenant = a["tenant"]
    page = admin.get(url(tenant, "/")).get_data(as_text=True)
    assert "secretary" in page and "支部书记 · 第一党支部" in page and "工委工作人员" in page
    assert "张1" in page  # the member the secretary's account belongs to
    only_secretaries = admin.get(url(tenant, "/?role=branch_secretary")).get_data(as_text=True)
    assert ">secretary<" in only_secretaries and ">admin<" not in only_secretaries
    searched = admin.get(url(tenant, "/?q=ADM")).get_data(as_text=True)
    assert ">admin<" in searched and ">secretary<" not in searched
    inactive = admin.get(url(tenant, "/?status=inactive")).get_data(as_text=True)
    assert ">admin<" not in inactive
    odd = admin.get(url(tenant, "/?role=pope&status=zzz&page=abc&q=%25"))
    assert odd.status_code == 200


def test_list_pages_through_many_accounts(admin: FlaskClient, a: dict[str, Any], create_account: Any) -> None:
    tenant = a["tenant"]
    for i in range(55):
        create_account(tenant, username=f"bulk{i:03d}")
    first = admin.get(url(tenant, "/?q=bulk")).get_data(as_text=True)
    second = admin.get(url(tenant, "/?q=bulk&page=2")).get_data(as_text=True)
    assert "bulk000" in first and "bulk049" in first and "bulk050" not in first
    assert "bulk050" in second and "bulk054" in second and "bulk000" not in second
    assert "共 55 个账号" in first



def test_list_runs_a_fixed_number_of_queries(
    app: Flask, admin: FlaskClient, a: dict[str, Any], create_account: Any, create_member: Any, create_org: Any
) -> None:
    tenant = a["tenant"]
    engine = app.extensions["fivestar.engine"]
    admin.get(url(tenant, "/"))  # warm up (nothing cached matters, but keep the runs alike)
    with count_queries(engine, exclude=("SAVEPOINT", "RELEASE", "ROLLBACK")) as few:
        assert admin.get(url(tenant, "/")).status_code == 200
    for i in range(30):
        branch = create_org(tenant, OrgKind.BRANCH, parent=a["party"], name=f"支部{i}", code=f"QB{i:03d}")
        member = create_member(tenant, branch, member_no=f"QM{i:03d}")
        create_account(tenant, roles=[(Role.BRANCH_COMMITTEE, branch), (Role.MEMBER, None)], member=member)
    with count_queries(engine, exclude=("SAVEPOINT", "RELEASE", "ROLLBACK")) as many:
        page = admin.get(url(tenant, "/"))
    assert page.status_code == 200 and "支部29" in page.get_data(as_text=True)
    assert len(many) == len(few), "\n".join(many)


# --- creating and inviting -----------------------------------------------------------------------


def test_create_an_account_for_a_member_and_invite(
    admin: FlaskClient, a: dict[str, Any], session: Session, enqueued: list[str]
) -> None:
    tenant = a["tenant"]
    member = a["members"][2]
    response = admin.post(
        url(tenant, "/new"),
        data={
            "username": "zhang3",
            "display_name": "",
            "email": "z3@example.org",
            "member_no": member.member_no,
            "send_invitation": "yes",
        },
    )
    assert response.status_code == 302
    account = account_named(session, tenant, "zhang3")
    assert account.member_id == member.id and account.display_name == member.name and account.password_hash is None
    assert response.headers["Location"].endswith(url(tenant, f"/{account.id}"))
    with tenant_context(tenant.id):
        message = session.scalar(select(OutboxMessage).where(OutboxMessage.recipient == "z3@example.org"))
    assert message is not None and message.state is DeliveryState.PENDING
    assert enqueued == ["fivestar.deliver_outbox"]
    assert audit_actions(session, tenant)[-2:] == ["account.create", "account.invite"]
    detail = admin.get(url(tenant, f"/{account.id}")).get_data(as_text=True)
    assert "有效至" in detail and "重新发送邀请" in detail


def test_create_refusals_keep_what_was_typed(admin: FlaskClient, a: dict[str, Any], session: Session) -> None:
    tenant = a["tenant"]
    before = audit_actions(session, tenant)
    form = admin.get(url(tenant, "/new"))
    assert form.status_code == 200 and 'name="member_no"' in form.get_data(as_text=True)
    taken = admin.post(
        url(tenant, "/new"), data={"username": "Admin", "display_name": "冒名", "email": "x@example.org"}
    )
    assert taken.status_code == 400
    page = taken.get_data(as_text=True)
    assert "已被使用" in page and 'value="x@example.org"' in page and 'value="冒名"' in page
    bad_member = admin.post(
        url(tenant, "/new"), data={"username": "someone", "display_name": "某人", "member_no": "X1"}
    )
    assert bad_member.status_code == 400 and "找不到党员编号 X1" in bad_member.get_data(as_text=True)
    assert audit_actions(session, tenant) == before


def test_reinvite_revokes_the_previous_link(
    admin: FlaskClient, a: dict[str, Any], session: Session, create_account: Any, enqueued: list[str]
) -> None:
    tenant = a["tenant"]
    invitee = create_account(tenant, username="wu.shi", password_hash=None, email="ws@example.org")
    for _ in range(2):
        assert admin.post(url(tenant, f"/{invitee.id}/invite")).status_code == 302
    with tenant_context(tenant.id):
        links = list(session.scalars(select(Invitation).where(Invitation.account_id == invitee.id)))
    assert len(links) == 2 and sum(link.revoked_at is None for link in links) == 1
    assert enqueued == ["fivestar.deliver_outbox"] * 2
    has_password = a["secretary"]
    refused = admin.post(url(tenant, f"/{has_password.id}/invite"))
    assert refused.status_code == 400 and "已设置密码" in refused.get_data(as_text=True)


# --- roles ---------------------------------------------------------------------------------------


def test_granting_and_revoking_roles_ends_the_accounts_sessions(
    browser: Callable[[], FlaskClient], admin: FlaskClient, a: dict[str, Any], session: Session
) -> None:
    tenant = a["tenant"]
    user = browser()
    sign_in(user, tenant, "secretary")
    account_id = a["secretary"].id
    granted = admin.post(
        url(tenant, f"/{account_id}/roles"), data={"role": "org_staff", "organisation_id": str(a["party"].id)}
    )
    assert granted.status_code == 302
    assert not home_ok(user, tenant)  # logged out by the role change
    assert home_ok(admin, tenant)
    account = account_named(session, tenant, "secretary")
    staff = next(g for g in account.grants if g.role is Role.ORG_STAFF)
    assert staff.organisation_id == a["party"].id

    sign_in(user, tenant, "secretary")
    assert admin.post(url(tenant, f"/{account_id}/roles/{staff.id}/revoke")).status_code == 302
    assert not home_ok(user, tenant)
    assert [g.role for g in account_named(session, tenant, "secretary").grants] == [Role.BRANCH_SECRETARY]
    assert audit_actions(session, tenant)[-2:] == ["account.role_grant", "account.role_revoke"]


def test_a_scoped_role_needs_an_organisation_of_the_right_kind(
    admin: FlaskClient, a: dict[str, Any], session: Session
) -> None:
    tenant = a["tenant"]
    account_id = a["secretary"].id
    wrong = admin.post(
        url(tenant, f"/{account_id}/roles"), data={"role": "org_staff", "organisation_id": str(a["branch"].id)}
    )
    assert wrong.status_code == 400 and "只能设在机关党委、党总支" in wrong.get_data(as_text=True)
    missing = admin.post(url(tenant, f"/{account_id}/roles"), data={"role": "branch_committee", "organisation_id": ""})
    assert missing.status_code == 400 and "须选择所属组织" in missing.get_data(as_text=True)
    retirees = admin.post(
        url(tenant, f"/{account_id}/roles"), data={"role": "branch_committee", "organisation_id": str(a["retirees"].id)}
    )
    assert retirees.status_code == 302
    with tenant_context(tenant.id):
        roles = set(session.scalars(select(RoleGrant.role).where(RoleGrant.account_id == account_id)))
    assert roles == {Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE}


def test_administrators_own_role_change_keeps_their_session(admin: FlaskClient, a: dict[str, Any]) -> None:
    tenant = a["tenant"]
    assert (
        admin.post(
            url(tenant, f"/{a['admin'].id}/roles"), data={"role": "inspector", "organisation_id": ""}
        ).status_code
        == 302
    )
    assert home_ok(admin, tenant)
    last_admin = admin.post(url(tenant, f"/{a['admin'].id}/roles/{a['admin'].grants[0].id}/revoke"))
    assert last_admin.status_code == 400 and "最后一位" in last_admin.get_data(as_text=True)


# --- resetting passwords -------------------------------------------------------------------------


def test_reset_with_a_temporary_password_forces_a_change(
    browser: Callable[[], FlaskClient], admin: FlaskClient, a: dict[str, Any], session: Session
) -> None:
    tenant = a["tenant"]
    user = browser()
    sign_in(user, tenant, "secretary")
    response = admin.post(url(tenant, f"/{a['secretary'].id}/reset"), data={"method": "temporary", "reason": "忘记"})
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    match = re.search(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>", response.get_data(as_text=True))
    assert match
    temporary = match.group(1)
    assert all(temporary not in header for header in response.headers.getlist("Set-Cookie"))
    assert temporary not in admin.get(url(tenant, f"/{a['secretary'].id}")).get_data(as_text=True)  # shown once
    assert not home_ok(user, tenant)  # every session of the account ended

    fresh = browser()
    old = fresh.post(f"/t/{tenant.slug}/login", data={"username": "secretary", "password": TEST_PASSWORD})
    assert old.status_code == 200
    logged_in = sign_in(fresh, tenant, "secretary", temporary)
    assert logged_in.headers["Location"].endswith(f"/t/{tenant.slug}/password")
    forced = fresh.get(f"/t/{tenant.slug}/")
    assert forced.status_code == 302 and forced.headers["Location"].endswith(f"/t/{tenant.slug}/password")
    changed = fresh.post(
        f"/t/{tenant.slug}/password",
        data={"current_password": temporary, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    assert home_ok(fresh, tenant)
    event = session.scalar(
        select(AuditEvent).where(AuditEvent.action == "account.password_reset").order_by(AuditEvent.id.desc())
    )
    assert event is not None and event.reason == "忘记" and temporary not in str(event.after)


def test_reset_by_link_mails_the_holder_and_ends_the_old_password(
    browser: Callable[[], FlaskClient], admin: FlaskClient, a: dict[str, Any], session: Session, enqueued: list[str]
) -> None:
    tenant = a["tenant"]
    assert (
        admin.post(
            url(tenant, f"/{a['secretary'].id}/edit"),
            data={"display_name": "张1", "email": "sec@example.org", "version": str(a["secretary"].version)},
        ).status_code
        == 302
    )
    user = browser()
    sign_in(user, tenant, "secretary")
    response = admin.post(url(tenant, f"/{a['secretary'].id}/reset"), data={"method": "link"})
    assert response.status_code == 302
    assert not home_ok(user, tenant)
    old = browser().post(f"/t/{tenant.slug}/login", data={"username": "secretary", "password": TEST_PASSWORD})
    assert old.status_code == 200
    with tenant_context(tenant.id):
        message = session.scalar(select(OutboxMessage).where(OutboxMessage.recipient == "sec@example.org"))
    assert message is not None and "/invite/" in message.body_text and "重置" in message.subject
    assert enqueued == ["fivestar.deliver_outbox"]


def test_reset_by_link_without_an_address_is_refused(
    admin: FlaskClient, a: dict[str, Any], browser: Callable[[], FlaskClient]
) -> None:
    tenant = a["tenant"]
    response = admin.post(url(tenant, f"/{a['secretary'].id}/reset"), data={"method": "link"})
    assert response.status_code == 400 and "没有电子邮箱" in response.get_data(as_text=True)
    sign_in(browser(), tenant, "secretary")  # nothing changed


# --- activation ----------------------------------------------------------------------------------


def test_deactivate_and_reactivate(
    browser: Callable[[], FlaskClient], admin: FlaskClient, a: dict[str, Any], session: Session
) -> None:
    tenant = a["tenant"]
    user = browser()
    sign_in(user, tenant, "secretary")
    assert admin.post(url(tenant, f"/{a['secretary'].id}/deactivate"), data={"reason": "调离"}).status_code == 302
    assert not home_ok(user, tenant)
    refused = browser().post(f"/t/{tenant.slug}/login", data={"username": "secretary", "password": TEST_PASSWORD})
    assert refused.status_code == 200 and "用户名或密码不正确" in refused.get_data(as_text=True)
    assert admin.post(url(tenant, f"/{a['secretary'].id}/reactivate")).status_code == 302
    sign_in(browser(), tenant, "secretary")
    assert audit_actions(session, tenant)[-2:] == ["account.deactivate", "account.reactivate"]


def test_administrators_cannot_deactivate_themselves(admin: FlaskClient, a: dict[str, Any]) -> None:
    response = admin.post(url(a["tenant"], f"/{a['admin'].id}/deactivate"))
    assert response.status_code == 400 and "不能停用自己的账号" in response.get_data(as_text=True)
    assert home_ok(admin, a["tenant"])


# --- the outbox page -----------------------------------------------------------------------------


def test_outbox_page_shows_delivery_and_resends_failures(
    admin: FlaskClient, a: dict[str, Any], session: Session, two_tenants: dict[str, Any], enqueued: list[str]
) -> None:
    from fivestar.outbox.services import queue_email

    tenant = a["tenant"]
    context = {
        "display_name": "x",
        "username": "x",
        "tenant_name": "x",
        "link": "SECRET-LINK",
        "expires": "x",
        "days": 1,
    }
    with tenant_context(tenant.id):
        ok = queue_email(
            session,
            recipient="ok@example.org",
            subject="已送达",
            template="invitation",
            context=context,
            dedupe_key="p:1",
        )
        bad = queue_email(
            session,
            recipient="bad@example.org",
            subject="失败了",
            template="invitation",
            context=context,
            dedupe_key="p:2",
        )
        assert ok is not None and bad is not None
        ok.state = DeliveryState.SENT
        bad.state, bad.attempts, bad.last_error = DeliveryState.FAILED, 8, "SMTP 550: mailbox unavailable"
        session.flush()
    with tenant_context(two_tenants["b"]["tenant"].id):
        queue_email(
            session,
            recipient="other-district@example.org",
            subject="别的区",
            template="invitation",
            context=context,
            dedupe_key="p:1",
        )
    page = admin.get(url(tenant, "/outbox")).get_data(as_text=True)
    assert "bad@example.org" in page and "SMTP 550: mailbox unavailable" in page and "发送失败" in page
    assert "SECRET-LINK" not in page  # bodies hold links: never shown
    assert "other-district@example.org" not in page
    assert page.count("重新发送") == 1
    failed_only = admin.get(url(tenant, "/outbox?state=failed")).get_data(as_text=True)
    assert "bad@example.org" in failed_only and "ok@example.org" not in failed_only

    assert admin.post(url(tenant, f"/outbox/{bad.id}/resend")).status_code == 302
    session.refresh(bad)
    assert bad.state is DeliveryState.PENDING and bad.attempts == 0
    assert enqueued == ["fivestar.deliver_outbox"]
    again = admin.post(url(tenant, f"/outbox/{ok.id}/resend"))
    assert again.status_code == 400 and "只有发送失败的消息" in again.get_data(as_text=True)
    assert "outbox.resend" in audit_actions(session, tenant)
