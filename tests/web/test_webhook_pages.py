"""Group-robot pages (`/t/<slug>/webhooks/…`): only the tenant administrator; add, edit (the stored
address and secret kept unless retyped), switch off, delete, a test message to a real HTTP server
on loopback — and the robot's key and secret never in a page, an audit event or a log line."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.config import load_settings
from fivestar.enums import Role
from fivestar.notify.encryption import decrypt, encrypt
from fivestar.notify.models import Webhook, WebhookKind
from fivestar.notify.services import webhooks_for
from fivestar.tenancy import tenant_context
from tests.robot_support import ACCESS_TOKEN, KEY, SECRET, LoopbackRobot, expected_sign
from tests.support import count_queries

TEST_PASSWORD = "correct-horse-battery"  # what the conftest factories set
WECOM_URL = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"
DINGTALK_URL = f"https://oapi.dingtalk.com/robot/send?access_token={ACCESS_TOKEN}"
NEW_SECRET = "SECffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff0001"


@pytest.fixture
def browser(app: Flask, client: FlaskClient) -> Callable[[], FlaskClient]:
    """Independent browsers (the shared `client` keeps its request context)."""
    return app.test_client


def sign_in(browser: FlaskClient, tenant: Any, username: str) -> None:
    response = browser.post(f"/t/{tenant.slug}/login", data={"username": username, "password": TEST_PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


@pytest.fixture
def a(two_tenants: dict[str, Any]) -> dict[str, Any]:
    return two_tenants["a"]


@pytest.fixture
def admin(browser: Callable[[], FlaskClient], a: dict[str, Any]) -> FlaskClient:
    client = browser()
    sign_in(client, a["tenant"], "admin")
    return client


@pytest.fixture
def loopback_allowed(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app's settings with 127.0.0.1 among the webhook hosts (same secret key)."""
    settings = app.config["FIVESTAR_SETTINGS"]
    hosts = f"{settings.webhook_hosts},127.0.0.1"
    changed = load_settings(**{**settings.model_dump(), "webhook_hosts": hosts})
    monkeypatch.setitem(app.config, "FIVESTAR_SETTINGS", changed)
    return changed


@pytest.fixture
def robot() -> Iterator[LoopbackRobot]:
    with LoopbackRobot() as running:
        yield running


def url(tenant: Any, path: str = "/") -> str:
    return f"/t/{tenant.slug}/webhooks{path}"


def robots(session: Session, tenant: Any) -> list[Webhook]:
    session.expire_all()
    with tenant_context(tenant.id):
        return list(session.scalars(select(Webhook).order_by(Webhook.id)))


def add(session: Session, app: Flask, tenant: Any, **values: Any) -> Webhook:
    """A robot written directly (for pages that need one to exist)."""
    settings = app.config["FIVESTAR_SETTINGS"]
    secret = values.pop("secret", None)
    with tenant_context(tenant.id):
        row = Webhook(
            name=values.pop("name", "工委通知群"),
            kind=values.pop("kind", WebhookKind.WECOM),
            url_encrypted=encrypt(settings, values.pop("url", WECOM_URL)),
            secret_encrypted=encrypt(settings, secret) if secret else None,
            created_by="test",
            **values,
        )
        session.add(row)
        session.flush()
    return row


def audit_events(session: Session, tenant: Any, prefix: str = "webhook.") -> list[AuditEvent]:
    with tenant_context(tenant.id):
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id)
            )
        )


def assert_no_secret(text: str) -> None:
    for secret in (KEY, ACCESS_TOKEN, SECRET, NEW_SECRET):
        assert secret not in text
        assert secret[4:-4] not in text


# --- who may open the pages ----------------------------------------------------------------------


def test_only_tenant_administrators(
    browser: Callable[[], FlaskClient], a: dict[str, Any], session: Session, app: Flask, create_account: Any
) -> None:
    tenant = a["tenant"]
    row = add(session, app, tenant)
    anonymous = browser().get(url(tenant))
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    create_account(tenant, roles=[(Role.COMMITTEE_MEMBER, None)], username="weiyuan")
    create_account(tenant, roles=[(Role.INSPECTOR, None)], username="inspector")
    create_account(tenant, roles=[(Role.ORG_STAFF, a["party"])], username="orgstaff")
    for username in ("secretary", "weiyuan", "inspector", "orgstaff"):
        client = browser()
        sign_in(client, tenant, username)
        for path in ("/", "/new", f"/{row.id}/edit", f"/{row.id}/delete"):
            assert client.get(url(tenant, path)).status_code == 403, (username, path)
        for path in ("/new", f"/{row.id}/edit", f"/{row.id}/delete", f"/{row.id}/active", f"/{row.id}/test"):
            assert client.post(url(tenant, path), data={"version": "1"}).status_code == 403, (username, path)
        home = client.get(f"/t/{tenant.slug}/").get_data(as_text=True)
        assert "群机器人" not in home
    assert [r.active for r in robots(session, tenant)] == [True]


def test_menu_and_empty_list_for_the_administrator(admin: FlaskClient, a: dict[str, Any]) -> None:
    home = admin.get(f"/t/{a['tenant'].slug}/").get_data(as_text=True)
    assert f'href="{url(a["tenant"])}"' in home and "群机器人" in home
    page = admin.get(url(a["tenant"]))
    assert page.status_code == 200 and "还没有群机器人" in page.get_data(as_text=True)


# --- adding --------------------------------------------------------------------------------------


def test_add_a_wecom_robot_for_the_district(
    app: Flask, admin: FlaskClient, a: dict[str, Any], session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = a["tenant"]
    admin_name = a["admin"].display_name
    form = admin.get(url(tenant, "/new")).get_data(as_text=True)
    assert "全区（所有组织）" in form and "第一党支部" in form and "企业微信" in form and "钉钉" in form
    response = admin.post(
        url(tenant, "/new"),
        data={"name": " 工委通知群 ", "kind": "wecom", "organisation_id": "", "url": f" {WECOM_URL} ", "active": "y"},
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(url(tenant))
    (row,) = robots(session, tenant)
    assert (row.name, row.kind, row.organisation_id, row.active, row.secret_encrypted) == (
        "工委通知群", WebhookKind.WECOM, None, True, None,
    )
    assert KEY not in row.url_encrypted and "qyapi" not in row.url_encrypted
    assert decrypt(app.config["FIVESTAR_SETTINGS"], row.url_encrypted) == WECOM_URL
    assert row.created_by == admin_name  # who added it, as the audit names people
    page = admin.get(url(tenant)).get_data(as_text=True)
    assert "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=••••beef" in page
    assert "工委通知群" in page and "全区" in page and "发送测试消息" in page
    assert_no_secret(page)
    (event,) = audit_events(session, tenant)
    assert event.action == "webhook.create"
    expected = {"name": "工委通知群", "kind": "wecom", "organisation_id": None, "active": True, "signed": False}
    assert event.after == expected
    assert_no_secret(str(event.after))
    assert_no_secret(caplog.text)


def test_add_a_signed_dingtalk_robot_for_one_organisation(
    app: Flask, admin: FlaskClient, a: dict[str, Any], session: Session
) -> None:
    tenant = a["tenant"]
    response = admin.post(
        url(tenant, "/new"),
        data={
            "name": "第一党支部群",
            "kind": "dingtalk",
            "organisation_id": str(a["branch"].id),
            "url": DINGTALK_URL,
            "secret": SECRET,
            "active": "y",
        },
    )
    assert response.status_code == 302
    (row,) = robots(session, tenant)
    assert row.organisation_id == a["branch"].id and row.secret_encrypted is not None
    assert decrypt(app.config["FIVESTAR_SETTINGS"], row.secret_encrypted) == SECRET
    page = admin.get(url(tenant)).get_data(as_text=True)
    assert "第一党支部" in page and "加签" in page and f"access_token=••••{ACCESS_TOKEN[-4:]}" in page
    assert_no_secret(page)


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"url": WECOM_URL.replace("https", "http")}, "Webhook 地址必须以 https:// 开头"),
        ({"url": f"https://evil.example.com/cgi-bin/webhook/send?key={KEY}"}, "不能发送到 evil.example.com"),
        ({"url": ""}, "请填写 Webhook 地址"),
        ({"url": DINGTALK_URL}, "这是钉钉群机器人的地址"),
        ({"secret": SECRET}, "企业微信群机器人没有加签密钥"),
        ({"kind": "dingtalk", "url": DINGTALK_URL, "secret": "not-a-secret"}, "以 SEC 开头"),
        ({"name": ""}, "请填写名称"),
        ({"name": "名" * 61}, "名称最多 60 个字"),
        ({"kind": "slack"}, "Not a valid choice"),
    ],
)
def test_bad_input_is_refused_in_chinese_and_nothing_written(
    admin: FlaskClient, a: dict[str, Any], session: Session, data: dict[str, str], field_error: str
) -> None:
    tenant = a["tenant"]
    values = {"name": "工委通知群", "kind": "wecom", "organisation_id": "", "url": WECOM_URL, "active": "y", **data}
    response = admin.post(url(tenant, "/new"), data=values)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert field_error in page or (field_error == "Not a valid choice" and "class=\"error\"" in page)
    assert robots(session, tenant) == []
    assert audit_events(session, tenant) == []


def test_an_organisation_of_another_district_is_refused(
    admin: FlaskClient, two_tenants: dict[str, Any], session: Session
) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    response = admin.post(
        url(a["tenant"], "/new"),
        data={"name": "越界", "kind": "wecom", "organisation_id": str(b["branch"].id), "url": WECOM_URL},
    )
    assert response.status_code == 400
    assert robots(session, a["tenant"]) == [] and robots(session, b["tenant"]) == []


# --- editing -------------------------------------------------------------------------------------


def version_of(page: str) -> str:
    found = re.search(r'name="version" type="hidden" value="(\d+)"', page) or re.search(
        r'name="version" value="(\d+)"', page
    )
    assert found, page[:2000]
    return found.group(1)


def test_edit_keeps_the_stored_address_and_secret_unless_retyped(
    app: Flask, admin: FlaskClient, a: dict[str, Any], session: Session
) -> None:
    tenant = a["tenant"]
    settings = app.config["FIVESTAR_SETTINGS"]
    row = add(session, app, tenant, name="钉钉群", kind=WebhookKind.DINGTALK, url=DINGTALK_URL, secret=SECRET)
    page = admin.get(url(tenant, f"/{row.id}/edit")).get_data(as_text=True)
    assert "钉钉群" in page and f"access_token=••••{ACCESS_TOKEN[-4:]}" in page and "已保存加签密钥" in page
    assert_no_secret(page)
    base = {"kind": "dingtalk", "organisation_id": str(a["party"].id), "active": "y"}
    response = admin.post(
        url(tenant, f"/{row.id}/edit"), data={**base, "name": "机关党委群", "version": version_of(page)}
    )
    assert response.status_code == 302
    (saved,) = robots(session, tenant)
    assert (saved.name, saved.organisation_id, saved.version) == ("机关党委群", a["party"].id, 2)
    assert decrypt(settings, saved.url_encrypted) == DINGTALK_URL
    assert decrypt(settings, saved.secret_encrypted or "") == SECRET
    # a new secret replaces the stored one; a new address replaces the stored one
    other = DINGTALK_URL.replace(ACCESS_TOKEN, "f" * 64)
    response = admin.post(
        url(tenant, f"/{row.id}/edit"),
        data={**base, "name": "机关党委群", "url": other, "secret": NEW_SECRET, "version": "2"},
    )
    assert response.status_code == 302
    (saved,) = robots(session, tenant)
    assert decrypt(settings, saved.url_encrypted) == other
    assert decrypt(settings, saved.secret_encrypted or "") == NEW_SECRET
    # ticking "delete the stored secret" removes it
    response = admin.post(
        url(tenant, f"/{row.id}/edit"), data={**base, "name": "机关党委群", "clear_secret": "y", "version": "3"}
    )
    assert response.status_code == 302
    (saved,) = robots(session, tenant)
    assert saved.secret_encrypted is None
    events = audit_events(session, tenant)
    assert [event.action for event in events] == ["webhook.update"] * 3
    assert [(e.after or {})["url_changed"] for e in events] == [False, True, False]
    assert [(e.after or {})["secret_changed"] for e in events] == [False, True, True]
    for event in events:
        assert_no_secret(f"{event.before} {event.after}")
        assert "url_encrypted" not in str(event.after) and "secret_encrypted" not in str(event.before)


def test_after_a_secret_key_change_the_address_must_be_typed_again(
    admin: FlaskClient, a: dict[str, Any], session: Session, app: Flask, tmp_path: Any
) -> None:
    tenant = a["tenant"]
    other = load_settings(env="test", data_dir=tmp_path, secret_key="an-older-secret-key-0123456789-abcdefgh")
    with tenant_context(tenant.id):
        row = Webhook(name="旧密钥的群", kind=WebhookKind.WECOM, url_encrypted=encrypt(other, WECOM_URL),
                      created_by="test")
        session.add(row)
        session.flush()
    assert "无法解密" in admin.get(url(tenant)).get_data(as_text=True)
    page = admin.get(url(tenant, f"/{row.id}/edit")).get_data(as_text=True)
    assert "无法解密" in page
    data = {"name": "旧密钥的群", "kind": "wecom", "organisation_id": "", "active": "y", "version": "1"}
    kept = admin.post(url(tenant, f"/{row.id}/edit"), data=data)
    assert kept.status_code == 400 and "FIVESTAR_SECRET_KEY" in kept.get_data(as_text=True)
    assert admin.post(url(tenant, f"/{row.id}/edit"), data={**data, "url": WECOM_URL}).status_code == 302
    (saved,) = robots(session, tenant)
    assert decrypt(app.config["FIVESTAR_SETTINGS"], saved.url_encrypted) == WECOM_URL


def test_a_stale_edit_answers_409_and_writes_nothing(
    admin: FlaskClient, a: dict[str, Any], session: Session, app: Flask
) -> None:
    tenant = a["tenant"]
    row = add(session, app, tenant)
    data = {"name": "改名", "kind": "wecom", "organisation_id": "", "active": "y", "version": "1"}
    assert admin.post(url(tenant, f"/{row.id}/edit"), data={**data, "name": "先改"}).status_code == 302
    response = admin.post(url(tenant, f"/{row.id}/edit"), data=data)
    assert response.status_code == 409 and "已被他人修改" in response.get_data(as_text=True)
    assert [r.name for r in robots(session, tenant)] == ["先改"]
    nothing = admin.post(url(tenant, f"/{row.id}/edit"), data={**data, "name": "先改", "version": "2"})
    assert nothing.status_code == 400 and "没有需要保存的修改" in nothing.get_data(as_text=True)


def test_switch_off_and_on_again(admin: FlaskClient, a: dict[str, Any], session: Session, app: Flask) -> None:
    tenant = a["tenant"]
    row = add(session, app, tenant)
    response = admin.post(url(tenant, f"/{row.id}/active"), data={"version": "1"})
    assert response.status_code == 303
    assert [r.active for r in robots(session, tenant)] == [False]
    with tenant_context(tenant.id):
        assert webhooks_for(session, [a["branch"].id]) == []
    assert "已停用" in admin.get(url(tenant)).get_data(as_text=True)
    stale = admin.post(url(tenant, f"/{row.id}/active"), data={"version": "1"})
    assert stale.status_code == 303 and [r.active for r in robots(session, tenant)] == [False]
    assert admin.post(url(tenant, f"/{row.id}/active"), data={"version": "2"}).status_code == 303
    assert [r.active for r in robots(session, tenant)] == [True]
    assert [e.action for e in audit_events(session, tenant)] == ["webhook.deactivate", "webhook.activate"]


def test_delete(admin: FlaskClient, a: dict[str, Any], session: Session, app: Flask) -> None:
    tenant = a["tenant"]
    row_id = add(session, app, tenant, name="要删除的群").id
    page = admin.get(url(tenant, f"/{row_id}/delete")).get_data(as_text=True)
    assert "要删除的群" in page and "key=••••beef" in page
    assert_no_secret(page)
    assert admin.post(url(tenant, f"/{row_id}/delete"), data={"version": "0"}).status_code == 409
    assert len(robots(session, tenant)) == 1
    response = admin.post(url(tenant, f"/{row_id}/delete"), data={"version": version_of(page)})
    assert response.status_code == 303
    assert robots(session, tenant) == []
    (event,) = audit_events(session, tenant)
    assert event.action == "webhook.delete" and (event.before or {})["name"] == "要删除的群"
    assert admin.get(url(tenant, f"/{row_id}/edit")).status_code == 404


def test_the_list_runs_a_fixed_number_of_queries(
    app: Flask, admin: FlaskClient, a: dict[str, Any], session: Session, create_org: Any
) -> None:
    tenant = a["tenant"]
    engine = app.extensions["fivestar.engine"]
    add(session, app, tenant, organisation_id=a["branch"].id)
    admin.get(url(tenant))
    with count_queries(engine, exclude=("SAVEPOINT", "RELEASE", "ROLLBACK")) as few:
        assert admin.get(url(tenant)).status_code == 200
    for i in range(10):
        org = create_org(tenant, parent=a["party"], name=f"支部{i}", code=f"WB{i:03d}")
        add(session, app, tenant, name=f"群{i}", organisation_id=org.id)
    with count_queries(engine, exclude=("SAVEPOINT", "RELEASE", "ROLLBACK")) as many:
        page = admin.get(url(tenant))
    assert page.status_code == 200 and "群9" in page.get_data(as_text=True)
    assert len(many) == len(few), "\n".join(many)


# --- the test message ----------------------------------------------------------------------------


def test_send_a_test_message_to_a_real_robot(
    admin: FlaskClient,
    a: dict[str, Any],
    session: Session,
    app: Flask,
    loopback_allowed: Any,
    robot: LoopbackRobot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = a["tenant"]
    row = add(session, app, tenant, name="钉钉群", kind=WebhookKind.DINGTALK, url=robot.url(WebhookKind.DINGTALK),
              secret=SECRET)
    response = admin.post(url(tenant, f"/{row.id}/test"))
    assert response.status_code == 303
    page = admin.get(url(tenant)).get_data(as_text=True)
    assert "测试消息已发送到“钉钉群”" in page
    (received,) = robot.requests
    assert received.query["sign"] == expected_sign(SECRET, received.query["timestamp"])
    markdown = received.json["markdown"]
    assert received.json["msgtype"] == "markdown" and "测试消息" in markdown["title"]
    assert tenant.name in markdown["text"] and "钉钉群" in markdown["text"]
    # the vendor refuses: the reason is shown, the key is not
    robot.answer = {"errcode": 310000, "errmsg": f"sign not match, token {ACCESS_TOKEN}"}
    assert admin.post(url(tenant, f"/{row.id}/test")).status_code == 303
    page = admin.get(url(tenant)).get_data(as_text=True)
    assert "测试消息发送失败" in page and "errcode 310000" in page and "sign not match" in page
    assert_no_secret(page)
    # and when nobody answers at all
    robot.server.shutdown()
    robot.server.server_close()
    assert admin.post(url(tenant, f"/{row.id}/test")).status_code == 303
    page = admin.get(url(tenant)).get_data(as_text=True)
    assert "无法连接机器人服务器" in page
    assert_no_secret(page)
    assert_no_secret(caplog.text)
    assert str(robot.port) not in caplog.text
    assert audit_events(session, tenant) == []  # a test message changes nothing


def test_a_test_message_to_a_host_not_allowed_is_not_sent(
    admin: FlaskClient, a: dict[str, Any], session: Session, app: Flask, robot: LoopbackRobot
) -> None:
    """The app's settings do not list 127.0.0.1: the robot saved earlier is refused at sending."""
    tenant = a["tenant"]
    row = add(session, app, tenant, url=robot.url(WebhookKind.WECOM))
    assert admin.post(url(tenant, f"/{row.id}/test")).status_code == 303
    page = admin.get(url(tenant)).get_data(as_text=True)
    assert "测试消息发送失败" in page and "不被允许" in page
    assert robot.requests == []


def test_another_districts_robot_is_not_found(
    admin: FlaskClient, two_tenants: dict[str, Any], session: Session, app: Flask, robot: LoopbackRobot,
    loopback_allowed: Any,
) -> None:
    a, b = two_tenants["a"], two_tenants["b"]
    foreign = add(session, app, b["tenant"], name="乙区群", url=robot.url(WebhookKind.WECOM))
    for path in (f"/{foreign.id}/edit", f"/{foreign.id}/delete"):
        assert admin.get(url(a["tenant"], path)).status_code == 404
    for path in (f"/{foreign.id}/edit", f"/{foreign.id}/delete", f"/{foreign.id}/active", f"/{foreign.id}/test"):
        response = admin.post(url(a["tenant"], path), data={"version": "1", "name": "x", "kind": "wecom"})
        assert response.status_code == 404, path
    assert "乙区群" not in admin.get(url(a["tenant"])).get_data(as_text=True)
    assert robot.requests == []
    assert [(r.name, r.active) for r in robots(session, b["tenant"])] == [("乙区群", True)]
