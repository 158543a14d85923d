"""群机器人 in a real browser at 375 px: the administrator adds a DingTalk robot with its 加签 secret,
sees it masked in the list, sends a test message to a robot on loopback (signature checked), and
nothing on the page is wider than the phone or comes from another host. CSRF and CSP are on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from fivestar.accounts.models import Account, RoleGrant
from fivestar.accounts.passwords import hash_password
from fivestar.config import load_settings
from fivestar.enums import OrgKind, Role
from fivestar.notify.models import Webhook, WebhookKind
from fivestar.orgs.models import Organisation
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import create_tenant
from tests.conftest import SAMPLE_RULES, TEST_PASSWORD
from tests.robot_support import ACCESS_TOKEN, SECRET, LoopbackRobot, expected_sign

PHONE = {"width": 375, "height": 812}
SLUG = "live-robots"


def _district(app: Any) -> None:
    """A small district of its own with one administrator (the demo districts are shared)."""
    session = app.extensions["fivestar.sessionmaker"]()
    try:
        tenant = create_tenant(session, slug=SLUG, name="群机器人演示工委", rules_toml=SAMPLE_RULES.read_text("utf-8"))
        session.flush()
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            assert root is not None
            party = Organisation(parent_id=root.id, kind=OrgKind.PARTY_COMMITTEE, name="区财政局机关党委", code="P01")
            session.add(party)
            session.flush()
            party.path = f"{root.path}{party.id}/"
            account = Account(username="gongwei", display_name="工委管理员", password_hash=hash_password(TEST_PASSWORD))
            session.add(account)
            session.flush()
            session.add(RoleGrant(account_id=account.id, role=Role.TENANT_ADMIN, organisation_id=None))
        session.commit()
    finally:
        session.close()


@pytest.fixture
def robot() -> Iterator[LoopbackRobot]:
    with LoopbackRobot() as running:
        yield running


@pytest.fixture
def loopback_allowed(live_app: tuple[Any, Any]) -> Iterator[None]:
    app, _server = live_app
    settings = app.config["FIVESTAR_SETTINGS"]
    app.config["FIVESTAR_SETTINGS"] = load_settings(
        **{**settings.model_dump(), "webhook_hosts": f"{settings.webhook_hosts},127.0.0.1"}
    )
    try:
        yield
    finally:
        app.config["FIVESTAR_SETTINGS"] = settings


def _no_wider_than_the_phone(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"page is {width}px wide at {PHONE['width']}px"


def test_add_a_robot_and_send_a_test_message_on_a_phone(
    browser: Any, live_app: tuple[Any, Any], loopback_allowed: None, robot: LoopbackRobot
) -> None:
    app, server = live_app
    _district(app)
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    foreign: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(server.url) else foreign.append(request.url))
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        page.goto(f"{server.url}/t/{SLUG}/login")
        page.fill("#username", "gongwei")
        page.fill("#password", TEST_PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{server.url}/t/{SLUG}/")
        page.goto(f"{server.url}/t/{SLUG}/webhooks/")
        assert "还没有群机器人" in page.inner_text("main")
        _no_wider_than_the_phone(page)

        page.click("text=添加群机器人")
        page.wait_for_url(f"{server.url}/t/{SLUG}/webhooks/new")
        _no_wider_than_the_phone(page)
        page.fill("#name", "财政局钉钉群")
        page.select_option("#kind", "dingtalk")
        page.select_option("#organisation_id", label="区财政局机关党委（机关党委）")
        page.fill("#url", robot.url(WebhookKind.DINGTALK))
        page.fill("#secret", SECRET)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{server.url}/t/{SLUG}/webhooks/")
        listing = page.inner_text("main")
        assert "已添加群机器人" in listing and "财政局钉钉群" in listing and "加签" in listing
        assert f"access_token=••••{ACCESS_TOKEN[-4:]}" in listing
        html = page.content()
        assert ACCESS_TOKEN not in html and SECRET not in html
        _no_wider_than_the_phone(page)

        page.click("button:has-text('发送测试消息')")
        page.wait_for_url(f"{server.url}/t/{SLUG}/webhooks/")
        assert "测试消息已发送到“财政局钉钉群”" in page.inner_text("main")
        (received,) = robot.requests
        assert received.query["sign"] == expected_sign(SECRET, received.query["timestamp"])
        assert "群机器人演示工委" in received.json["markdown"]["text"]
        _no_wider_than_the_phone(page)

        page.click("text=修改")
        page.wait_for_url(f"{server.url}/t/{SLUG}/webhooks/*/edit")
        assert page.input_value("#url") == "" and page.input_value("#secret") == ""
        assert "已保存加签密钥" in page.inner_text("main")
        _no_wider_than_the_phone(page)
    finally:
        context.close()
    assert not foreign, foreign
    assert not errors, errors
    session = app.extensions["fivestar.sessionmaker"]()
    try:
        with tenant_context(session.scalar(select(Webhook.tenant_id).execution_options(cross_tenant=True))):
            (row,) = session.scalars(select(Webhook))
            assert row.organisation_id is not None and row.secret_encrypted is not None
    finally:
        session.close()
