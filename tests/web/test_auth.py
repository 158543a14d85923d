"""Logging in and out, changing a password, invitation links and login throttling, through the app."""

from __future__ import annotations

import datetime as dt
import email
import re
import socket
from collections.abc import Iterator
from email import policy
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts.models import Account, AuthSession, Invitation
from fivestar.accounts.sessions import hash_token
from fivestar.db import utcnow
from fivestar.outbox.delivery import deliver_due
from fivestar.tenancy import tenant_context

TEST_PASSWORD = "correct-horse-battery"  # what the conftest factories set
NEW_PASSWORD = "a-much-better-passphrase"
COOKIE = "fivestar_session"
WRONG = "用户名或密码不正确"


# --- helpers -------------------------------------------------------------------------------------


def session_token(app: Flask, client: FlaskClient) -> str | None:
    """The server-side session token the (signed, readable) Flask cookie carries."""
    cookie = client.get_cookie(COOKIE)
    if cookie is None:
        return None
    data = app.session_interface.get_signing_serializer(app).loads(cookie.value)  # type: ignore[attr-defined]
    return data.get("_user_id")


def clone(app: Flask, client: FlaskClient) -> FlaskClient:
    """A second browser holding a copy of `client`'s cookie (a stolen or copied cookie)."""
    other = app.test_client()
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    other.set_cookie(COOKIE, cookie.value)
    return other


def home(client: FlaskClient, tenant: Any) -> Any:
    return client.get(f"/t/{tenant.slug}/")


def is_login_redirect(response: Any) -> bool:
    return response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.fixture
def browser(app: Flask, client: FlaskClient) -> Any:
    """A factory of independent browsers, for tests that need several at once.

    The shared `client` fixture keeps its last request context pushed (`with app.test_client()`);
    a second client's request would then reuse that app context and its `g` (tenant, DB session).
    So multi-browser tests make every request through these non-preserving clients, and take
    `client` only for its set-up (the test connection and a reset limiter).
    """
    return app.test_client


def sign_in(browser: FlaskClient, tenant: Any, username: str, password: str = TEST_PASSWORD) -> Any:
    response = browser.post(f"/t/{tenant.slug}/login", data={"username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


@pytest.fixture
def a(two_tenants: dict[str, Any]) -> dict[str, Any]:
    return two_tenants["a"]


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """Tasks the web layer sent to the broker (after commit), recorded instead of sent."""
    calls: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr("fivestar.broker.enqueue", lambda settings, name, *args, **kw: calls.append((name, args)))
    return calls


# --- login and logout ----------------------------------------------------------------------------


def test_login_success_opens_the_home_page(client: FlaskClient, a: dict[str, Any]) -> None:
    response = client.post(f"/t/{a['tenant'].slug}/login", data={"username": "admin", "password": TEST_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/t/{a['tenant'].slug}/")
    page = home(client, a["tenant"])
    assert page.status_code == 200 and "我的待办" in page.get_data(as_text=True)  # the home is a work list
    tree = client.get(f"/t/{a['tenant'].slug}/orgs/")  # and the organisation tree one tap away
    assert tree.status_code == 200 and "财政局机关党委" in tree.get_data(as_text=True)


def test_unknown_user_and_wrong_password_get_the_same_answer(
    client: FlaskClient, a: dict[str, Any], session: Session
) -> None:
    slug = a["tenant"].slug
    wrong = client.post(f"/t/{slug}/login", data={"username": "admin", "password": "not-the-password"})
    unknown = client.post(f"/t/{slug}/login", data={"username": "nobody", "password": TEST_PASSWORD})
    assert wrong.status_code == unknown.status_code == 200
    assert WRONG in wrong.get_data(as_text=True) and WRONG in unknown.get_data(as_text=True)
    strip = re.compile(r'name="csrf_token"[^>]*>|value="[^"]*"')
    assert strip.sub("", wrong.get_data(as_text=True)) == strip.sub("", unknown.get_data(as_text=True))
    assert session_token(client.application, client) is None
    assert is_login_redirect(home(client, a["tenant"]))


def test_logout_really_ends_the_session(app: Flask, browser: Any, a: dict[str, Any], session: Session) -> None:
    client = browser()
    sign_in(client, a["tenant"], "admin")
    assert home(client, a["tenant"]).status_code == 200
    token = session_token(app, client)
    copied = clone(app, client)  # the cookie jar as it was before logout
    assert home(copied, a["tenant"]).status_code == 200
    response = client.post(f"/t/{a['tenant'].slug}/logout")
    assert is_login_redirect(response)
    replay = home(copied, a["tenant"])
    assert is_login_redirect(replay)  # the old cookie is worth nothing
    followed = copied.get(replay.headers["Location"])
    assert followed.status_code == 200 and 'name="password"' in followed.get_data(as_text=True)
    assert is_login_redirect(home(client, a["tenant"]))
    row = session.scalar(select(AuthSession).where(AuthSession.token_hash == hash_token(token or "")))
    assert row is not None and row.revoked_at is not None


def test_each_login_gets_a_new_session_token(
    app: Flask, client: FlaskClient, a: dict[str, Any], login: Any, session: Session
) -> None:
    client.get(f"/t/{a['tenant'].slug}/login")  # an anonymous session exists before login
    login(a["tenant"], a["admin"])
    first = session_token(app, client)
    login(a["tenant"], a["admin"])  # logging in again, without logging out
    second = session_token(app, client)
    assert first and second and first != second
    hashes = set(session.scalars(select(AuthSession.token_hash).where(AuthSession.account_id == a["admin"].id)))
    assert {hash_token(first), hash_token(second)} <= hashes


def test_a_cookie_of_one_district_is_nothing_in_another(
    client: FlaskClient, two_tenants: dict[str, Any], login: Any
) -> None:
    login(two_tenants["a"]["tenant"], two_tenants["a"]["admin"])
    assert home(client, two_tenants["a"]["tenant"]).status_code == 200
    assert is_login_redirect(home(client, two_tenants["b"]["tenant"]))


def test_deactivated_account_cannot_log_in(client: FlaskClient, a: dict[str, Any], session: Session) -> None:
    with tenant_context(a["tenant"].id):
        a["secretary"].active = False
        session.flush()
    response = client.post(f"/t/{a['tenant'].slug}/login", data={"username": "secretary", "password": TEST_PASSWORD})
    assert response.status_code == 200 and WRONG in response.get_data(as_text=True)


# --- changing one's password ---------------------------------------------------------------------


def test_password_change_ends_other_sessions_and_keeps_this_one(browser: Any, a: dict[str, Any]) -> None:
    tenant = a["tenant"]
    client, other_browser = browser(), browser()
    sign_in(other_browser, tenant, "secretary")
    sign_in(client, tenant, "secretary")
    page = client.get(f"/t/{tenant.slug}/password")
    assert page.status_code == 200 and 'name="current_password"' in page.get_data(as_text=True)
    response = client.post(
        f"/t/{tenant.slug}/password",
        data={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert home(client, tenant).status_code == 200  # this session lives on
    assert is_login_redirect(home(other_browser, tenant))  # the other one ended
    fresh = browser()
    old = fresh.post(f"/t/{tenant.slug}/login", data={"username": "secretary", "password": TEST_PASSWORD})
    assert old.status_code == 200
    new = fresh.post(f"/t/{tenant.slug}/login", data={"username": "secretary", "password": NEW_PASSWORD})
    assert new.status_code == 302


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"current_password": "wrong-password", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            "当前密码不正确",
        ),
        ({"current_password": TEST_PASSWORD, "new_password": "short", "confirm": "short"}, "密码至少 10 个字符"),
        ({"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD, "confirm": "other-passphrase"}, "两次输入"),
        ({"current_password": TEST_PASSWORD, "new_password": "", "confirm": ""}, "请输入新密码"),
    ],
)
def test_password_change_refusals(browser: Any, a: dict[str, Any], data: dict[str, str], message: str) -> None:
    client = browser()
    sign_in(client, a["tenant"], "secretary")
    response = client.post(f"/t/{a['tenant'].slug}/password", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    sign_in(browser(), a["tenant"], "secretary")  # the old password still works


def test_guessing_the_current_password_is_throttled(browser: Any, a: dict[str, Any], settings: Any) -> None:
    client = browser()
    sign_in(client, a["tenant"], "secretary")
    limit = int(settings.login_limit.split()[0])
    guess = {"current_password": "guess-guess", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    for _ in range(limit):
        assert client.post(f"/t/{a['tenant'].slug}/password", data=guess).status_code == 400
    blocked = client.post(f"/t/{a['tenant'].slug}/password", data=guess)
    assert blocked.status_code == 429 and "尝试次数过多" in blocked.get_data(as_text=True)


def test_password_page_needs_a_login(client: FlaskClient, a: dict[str, Any]) -> None:
    assert is_login_redirect(client.get(f"/t/{a['tenant'].slug}/password"))


# --- invitations, end to end with a real SMTP server ---------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.received: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()
        controller.loop.close()


def _link_in(message: Any) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    match = re.search(r"https?://\S+/invite/[A-Za-z0-9_-]+", body)
    assert match, body
    return match.group(0)


def test_invitation_end_to_end(
    app: Flask,
    browser: Any,
    a: dict[str, Any],
    settings: Any,
    smtp: tuple[Mailbox, int],
    enqueued: list[tuple[str, tuple[Any, ...]]],
) -> None:
    mailbox, port = smtp
    tenant = a["tenant"]
    client = browser()
    sign_in(client, tenant, "admin")
    response = client.post(
        f"/t/{tenant.slug}/accounts/new",
        data={"username": "liu.yi", "display_name": "刘一", "email": "liu.yi@example.org", "send_invitation": "yes"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:800]
    assert ("fivestar.deliver_outbox", ()) in enqueued  # the worker is asked only after the commit

    report = deliver_due(app.extensions["fivestar.sessionmaker"], settings.model_copy(update={"mail_port": port}))
    assert report.sent == 1
    (message,) = mailbox.received
    assert str(message["To"]) == "liu.yi@example.org"
    link = _link_in(message)
    assert link.startswith(settings.base_url + f"/t/{tenant.slug}/invite/")  # the configured base, not the Host
    path = urlsplit(link).path

    visitor = browser()
    page = visitor.get(path)
    assert page.status_code == 200 and "liu.yi" in page.get_data(as_text=True)
    weak = visitor.post(path, data={"new_password": "short", "confirm": "short"})
    assert weak.status_code == 400 and "密码至少 10 个字符" in weak.get_data(as_text=True)
    done = visitor.post(path, data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/t/{tenant.slug}/login")
    logged_in = visitor.post(f"/t/{tenant.slug}/login", data={"username": "liu.yi", "password": NEW_PASSWORD})
    assert logged_in.status_code == 302

    again = browser().get(path)
    assert again.status_code == 410 and "已使用" in again.get_data(as_text=True)


def _invite(client: FlaskClient, tenant: Any, account_id: int) -> None:
    response = client.post(f"/t/{tenant.slug}/accounts/{account_id}/invite")
    assert response.status_code == 302, response.get_data(as_text=True)[:800]


def _token_of_latest_mail(session: Session, tenant: Any) -> str:
    from fivestar.outbox.models import OutboxMessage

    with tenant_context(tenant.id):
        body = session.scalar(select(OutboxMessage.body_text).order_by(OutboxMessage.id.desc()).limit(1))
    match = re.search(r"/invite/([A-Za-z0-9_-]+)", body or "")
    assert match, body
    return match.group(1)


def test_expired_used_and_revoked_links_give_clear_pages(
    browser: Any,
    a: dict[str, Any],
    session: Session,
    create_account: Any,
    enqueued: list[Any],
) -> None:
    tenant = a["tenant"]
    invitee = create_account(tenant, username="zhou.jiu", password_hash=None, email="zj@example.org")
    client = browser()
    sign_in(client, tenant, "admin")
    _invite(client, tenant, invitee.id)
    first = _token_of_latest_mail(session, tenant)
    _invite(client, tenant, invitee.id)  # re-invite: the first link is revoked
    second = _token_of_latest_mail(session, tenant)
    visitor = browser()

    revoked = visitor.get(f"/t/{tenant.slug}/invite/{first}")
    assert revoked.status_code == 410 and "已失效" in revoked.get_data(as_text=True)
    chosen = {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    posted = visitor.post(f"/t/{tenant.slug}/invite/{first}", data=chosen)
    assert posted.status_code == 410

    unknown = visitor.get(f"/t/{tenant.slug}/invite/not-a-real-token")
    assert unknown.status_code == 404 and "链接无效" in unknown.get_data(as_text=True)
    foreign = visitor.get(f"/t/district-b/invite/{second}")
    assert foreign.status_code == 404

    with tenant_context(tenant.id):
        row = session.scalar(select(Invitation).where(Invitation.token_hash == hash_token(second)))
        assert row is not None
        row.expires_at = utcnow() - dt.timedelta(minutes=1)
        session.flush()
    expired = visitor.get(f"/t/{tenant.slug}/invite/{second}")
    assert expired.status_code == 410 and "已过期" in expired.get_data(as_text=True)
    with tenant_context(tenant.id):
        assert session.scalar(select(Account.password_hash).where(Account.id == invitee.id)) is None


# --- throttling ----------------------------------------------------------------------------------


def _attempt(client: FlaskClient, tenant: Any, username: str, password: str, address: str) -> Any:
    return client.post(
        f"/t/{tenant.slug}/login",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_login_is_throttled_per_account(client: FlaskClient, a: dict[str, Any], settings: Any) -> None:
    limit = int(settings.login_limit.split()[0])
    for i in range(limit):
        assert _attempt(client, a["tenant"], "admin", "wrong-password", f"10.0.0.{i + 1}").status_code == 200
    blocked = _attempt(client, a["tenant"], "admin", TEST_PASSWORD, "10.0.1.1")  # even the right password
    assert blocked.status_code == 429
    assert "尝试次数过多" in blocked.get_data(as_text=True)
    other = _attempt(client, a["tenant"], "secretary", TEST_PASSWORD, "10.0.1.2")  # another account is not locked
    assert other.status_code == 302


def test_login_is_throttled_per_address(client: FlaskClient, a: dict[str, Any], settings: Any) -> None:
    limit = int(settings.login_limit.split()[0])
    for i in range(limit):
        assert _attempt(client, a["tenant"], f"guess{i}", "wrong-password", "10.9.9.9").status_code == 200
    blocked = _attempt(client, a["tenant"], "admin", TEST_PASSWORD, "10.9.9.9")
    assert blocked.status_code == 429 and "尝试次数过多" in blocked.get_data(as_text=True)
    elsewhere = _attempt(client, a["tenant"], "admin", TEST_PASSWORD, "10.9.9.10")
    assert elsewhere.status_code == 302


def test_successful_logins_are_not_counted(client: FlaskClient, a: dict[str, Any], settings: Any) -> None:
    limit = int(settings.login_limit.split()[0])
    for _ in range(limit + 2):
        assert _attempt(client, a["tenant"], "admin", TEST_PASSWORD, "10.8.8.8").status_code == 302


def test_throttle_state_is_isolated_between_tests(client: FlaskClient, a: dict[str, Any]) -> None:
    # The limiter is reset by the `client` fixture: the tests above leave nothing behind.
    assert _attempt(client, a["tenant"], "admin", TEST_PASSWORD, "10.9.9.9").status_code == 302
