"""上报上级 pages (`/t/<slug>/exports/…`): only the tenant administrator (403 for anyone else, 404
for another district's targets and deliveries); a bad form answers 400 in Chinese and writes
nothing; the stored secret is kept unless retyped and never shown; switch off, delete, and
"重新发送" of a failed delivery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.config import load_settings
from fivestar.enums import Role
from fivestar.exports.models import ExportDelivery, ExportMethod, ExportState, ExportTarget, ExportTrigger
from fivestar.notify.encryption import decrypt, encrypt
from fivestar.reports.jobs.models import ReportFormat, ReportKind
from fivestar.tenancy import tenant_context

TEST_PASSWORD = "correct-horse-battery"  # what the conftest factories set
KEY = "hmac-key-agreed-with-the-superior-4242"
NEW_KEY = "another-hmac-key-agreed-later-0000"


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


@pytest.fixture(autouse=True)
def loopback_allowed(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app's settings with report.example.gov.cn and 127.0.0.1 allowed for exports."""
    settings = app.config["FIVESTAR_SETTINGS"]
    changed = load_settings(**{**settings.model_dump(), "export_hosts": "report.example.gov.cn,127.0.0.1"})
    monkeypatch.setitem(app.config, "FIVESTAR_SETTINGS", changed)
    return changed


def url(tenant: Any, path: str = "/") -> str:
    return f"/t/{tenant.slug}/exports{path}"


def add(session: Session, settings: Any, tenant: Any, **values: Any) -> ExportTarget:
    """A target written directly (for pages that need one)."""
    with tenant_context(tenant.id):
        target = ExportTarget(
            name=values.pop("name", "报市委组织部"),
            report_kind=ReportKind.MEMBER_RESULTS,
            report_format=ReportFormat.XLSX,
            method=values.pop("method", ExportMethod.HTTPS),
            destination=values.pop("destination", "https://report.example.gov.cn/in"),
            secret_encrypted=encrypt(settings, values.pop("secret", KEY)),
            trigger=ExportTrigger.ON_FINALISE,
            created_by="test",
            **values,
        )
        session.add(target)
        session.flush()
    return target


def add_delivery(session: Session, tenant: Any, target: ExportTarget, state: ExportState,
                 round_id: int = 1) -> ExportDelivery:
    with tenant_context(tenant.id):
        delivery = ExportDelivery(target_id=target.id, trigger=ExportTrigger.ON_FINALISE, round_type="member",
                                  round_id=round_id, round_key="2026Q1", state=state, attempts=8,
                                  last_error="接收服务器应答 HTTP 503")
        session.add(delivery)
        session.flush()
    return delivery


def targets(session: Session, tenant: Any) -> list[ExportTarget]:
    session.expire_all()
    with tenant_context(tenant.id):
        return list(session.scalars(select(ExportTarget).order_by(ExportTarget.id)))


FORM = {
    "name": "报市委组织部",
    "report_kind": "member_results",
    "report_format": "xlsx",
    "method": "https",
    "destination": "https://report.example.gov.cn/fivestar/in",
    "secret": KEY,
    "trigger": "on_finalise",
    "active": "y",
}


# --- who may open the pages ---------------------------------------------------------------------


def test_only_tenant_administrators(
    browser: Callable[[], FlaskClient], a: dict[str, Any], session: Session, loopback_allowed: Any,
    create_account: Any,
) -> None:
    tenant = a["tenant"]
    target = add(session, loopback_allowed, tenant)
    delivery = add_delivery(session, tenant, target, ExportState.FAILED)
    anonymous = browser().get(url(tenant))
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    create_account(tenant, roles=[(Role.COMMITTEE_MEMBER, None)], username="weiyuan")
    create_account(tenant, roles=[(Role.INSPECTOR, None)], username="inspector")
    create_account(tenant, roles=[(Role.ORG_STAFF, a["party"])], username="orgstaff")
    for username in ("secretary", "weiyuan", "inspector", "orgstaff"):
        client = browser()
        sign_in(client, tenant, username)
        for path in ("/", "/new", f"/{target.id}/edit", f"/{target.id}/delete"):
            assert client.get(url(tenant, path)).status_code == 403, (username, path)
        for path in ("/new", f"/{target.id}/edit", f"/{target.id}/delete", f"/{target.id}/active",
                     f"/deliveries/{delivery.id}/resend"):
            assert client.post(url(tenant, path), data={**FORM, "version": "1"}).status_code == 403, (username, path)
        assert "上报上级" not in client.get(f"/t/{tenant.slug}/").get_data(as_text=True)
    (row,) = targets(session, tenant)
    assert row.active and row.name == "报市委组织部"


def test_another_districts_target_and_delivery_are_not_found(
    admin: FlaskClient, two_tenants: dict[str, Any], session: Session, loopback_allowed: Any
) -> None:
    a, b = two_tenants["a"]["tenant"], two_tenants["b"]["tenant"]
    theirs = add(session, loopback_allowed, b, name="乙区上报")
    delivery = add_delivery(session, b, theirs, ExportState.FAILED)
    for path in (f"/{theirs.id}/edit", f"/{theirs.id}/delete"):
        assert admin.get(url(a, path)).status_code == 404
    for path in (f"/{theirs.id}/edit", f"/{theirs.id}/delete", f"/{theirs.id}/active",
                 f"/deliveries/{delivery.id}/resend"):
        assert admin.post(url(a, path), data={**FORM, "version": "1"}).status_code == 404
    assert "乙区上报" not in admin.get(url(a)).get_data(as_text=True)
    (row,) = targets(session, b)
    assert row.active and row.name == "乙区上报"


def test_menu_and_empty_page_for_the_administrator(admin: FlaskClient, a: dict[str, Any]) -> None:
    home = admin.get(f"/t/{a['tenant'].slug}/").get_data(as_text=True)
    assert f'href="{url(a["tenant"])}"' in home and "上报上级" in home
    page = admin.get(url(a["tenant"]))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "还没有上报设置" in text and "暂无上报记录" in text


# --- adding and editing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"destination": "https://intranet.example.com/in"}, "只允许发送到这些服务器"),
        ({"destination": "ftp://report.example.gov.cn/in"}, "地址必须以 https:// 开头"),
        ({"method": "email", "destination": "zuzhibu-at-example"}, "请填写有效的电子邮箱地址"),
        ({"method": "sftp", "destination": "report.example.gov.cn:0", "username": "u"}, "端口应为"),
        ({"trigger": "on_date", "on_date": "02-30"}, "2月没有30日"),
        ({"trigger": "on_date", "on_date": ""}, "请按“月-日”填写日期"),
        ({"secret": "short"}, "签名密钥应为"),
        ({"name": ""}, "请填写名称"),
    ],
)
def test_a_bad_form_answers_400_in_chinese_and_writes_nothing(
    admin: FlaskClient, a: dict[str, Any], session: Session, changes: dict[str, str], message: str
) -> None:
    tenant = a["tenant"]
    response = admin.post(url(tenant, "/new"), data={**FORM, **changes})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert KEY not in page  # what was typed stays, except the secret
    if changes.get("destination"):
        assert changes["destination"] in page
    assert targets(session, tenant) == []
    with tenant_context(tenant.id):
        assert session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action.startswith("export_target."))) == 0


def test_add_edit_keep_the_secret_and_never_show_it(
    admin: FlaskClient, a: dict[str, Any], session: Session, loopback_allowed: Any
) -> None:
    tenant = a["tenant"]
    form = admin.get(url(tenant, "/new")).get_data(as_text=True)
    assert "党员星级评定结果（党员评定）" in form and "SFTP 目录" in form and "report.example.gov.cn" in form
    response = admin.post(url(tenant, "/new"), data=FORM)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    (row,) = targets(session, tenant)
    assert row.method is ExportMethod.HTTPS and KEY not in (row.secret_encrypted or "")
    assert decrypt(loopback_allowed, row.secret_encrypted or "") == KEY
    page = admin.get(url(tenant)).get_data(as_text=True)
    assert "报市委组织部" in page and "https://report.example.gov.cn/fivestar/in" in page and KEY not in page
    edit = admin.get(url(tenant, f"/{row.id}/edit")).get_data(as_text=True)
    assert KEY not in edit and "已保存（••••42）" in edit
    # saved again without retyping the key: kept
    response = admin.post(url(tenant, f"/{row.id}/edit"),
                          data={**FORM, "secret": "", "name": "报市委组织部（接口）", "version": str(row.version)})
    assert response.status_code == 303
    (row,) = targets(session, tenant)
    assert row.name == "报市委组织部（接口）" and decrypt(loopback_allowed, row.secret_encrypted or "") == KEY
    # an old page's save is refused (the version moved on)
    stale = admin.post(url(tenant, f"/{row.id}/edit"), data={**FORM, "name": "旧页面", "version": "1"})
    assert stale.status_code == 409 and "已被他人修改" in stale.get_data(as_text=True)
    # the method changes: the key must be typed again
    refused = admin.post(url(tenant, f"/{row.id}/edit"), data={
        **FORM, "secret": "", "method": "email", "destination": "zuzhibu@example.gov.cn",
        "version": str(row.version)})
    assert refused.status_code == 303  # e-mail needs no secret: the stored key is dropped
    (row,) = targets(session, tenant)
    assert row.method is ExportMethod.EMAIL and row.secret_encrypted is None
    refused = admin.post(url(tenant, f"/{row.id}/edit"), data={**FORM, "secret": "", "version": str(row.version)})
    assert refused.status_code == 400 and "请填写与接收方约定的签名密钥" in refused.get_data(as_text=True)
    with tenant_context(tenant.id):
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action.startswith("export_target."))
                                      .order_by(AuditEvent.id)))
    assert [event.action for event in events] == ["export_target.create", "export_target.update",
                                                  "export_target.update"]
    assert all(KEY not in str(event.after) and KEY not in str(event.before) for event in events)


def test_on_date_target_shows_its_next_instant(admin: FlaskClient, a: dict[str, Any], session: Session) -> None:
    tenant = a["tenant"]
    response = admin.post(url(tenant, "/new"), data={**FORM, "trigger": "on_date", "on_date": "3月31日"})
    assert response.status_code == 303
    (row,) = targets(session, tenant)
    assert (row.on_month, row.on_day) == (3, 31) and row.next_run_at is not None
    page = admin.get(url(tenant)).get_data(as_text=True)
    assert "每年 3月31日 09:00" in page and "下次" in page


# --- off, delete, send again -------------------------------------------------------------------------


def test_switch_off_and_delete(admin: FlaskClient, a: dict[str, Any], session: Session, loopback_allowed: Any) -> None:
    tenant = a["tenant"]
    target = add(session, loopback_allowed, tenant)
    add_delivery(session, tenant, target, ExportState.SENT)
    response = admin.post(url(tenant, f"/{target.id}/active"), data={"version": str(target.version)})
    assert response.status_code == 303
    (row,) = targets(session, tenant)
    assert not row.active
    page = admin.get(url(tenant, f"/{row.id}/delete")).get_data(as_text=True)
    assert "1 条" in page and "不能恢复" in page
    assert admin.post(url(tenant, f"/{row.id}/delete"), data={"version": "99"}).status_code == 409
    response = admin.post(url(tenant, f"/{row.id}/delete"), data={"version": str(row.version)})
    assert response.status_code == 303
    assert targets(session, tenant) == []
    with tenant_context(tenant.id):
        assert session.scalar(select(func.count()).select_from(ExportDelivery)) == 0
        (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "export_target.delete"))
    assert event.before is not None and event.before["deliveries"] == {"sent": 1} and KEY not in str(event.before)


def test_send_again_a_failed_delivery(
    admin: FlaskClient, a: dict[str, Any], session: Session, loopback_allowed: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fivestar.broker

    sent: list[str] = []
    monkeypatch.setattr(fivestar.broker, "enqueue", lambda _settings, name, *args, queue="default": sent.append(name))
    tenant = a["tenant"]
    target = add(session, loopback_allowed, tenant)
    failed = add_delivery(session, tenant, target, ExportState.FAILED)
    done = add_delivery(session, tenant, add(session, loopback_allowed, tenant, name="另一个"), ExportState.SENT)
    page = admin.get(url(tenant)).get_data(as_text=True)
    assert "发送失败" in page and "接收服务器应答 HTTP 503" in page and page.count("重新发送") >= 1
    response = admin.post(url(tenant, f"/deliveries/{failed.id}/resend"))
    assert response.status_code == 303
    assert sent == ["fivestar.exports.sweep"]  # after the commit
    session.expire_all()
    with tenant_context(tenant.id):
        row = session.scalar(select(ExportDelivery).where(ExportDelivery.id == failed.id))
        assert row is not None and (row.state, row.attempts, row.resends) == (ExportState.WAITING, 0, 1)
    refused = admin.post(url(tenant, f"/deliveries/{done.id}/resend"))
    assert refused.status_code == 409 and "只有发送失败的上报可以重新发送" in refused.get_data(as_text=True)
    assert sent == ["fivestar.exports.sweep"]


def test_the_list_fits_a_phone_and_loads_nothing_from_elsewhere(
    admin: FlaskClient, a: dict[str, Any], session: Session, loopback_allowed: Any
) -> None:
    tenant = a["tenant"]
    add_delivery(session, tenant, add(session, loopback_allowed, tenant), ExportState.FAILED)
    page = admin.get(url(tenant)).get_data(as_text=True)
    assert 'class="table responsive exports"' in page and 'class="table responsive export-deliveries"' in page
    assert "<script>" not in page and "<style>" not in page
    assert 'src="https://' not in page and 'href="https://' not in page


def test_the_list_runs_a_fixed_number_of_queries(
    admin: FlaskClient, a: dict[str, Any], session: Session, loopback_allowed: Any, engine: Any
) -> None:
    from tests.support import count_queries

    tenant = a["tenant"]
    first = add(session, loopback_allowed, tenant)
    add_delivery(session, tenant, first, ExportState.FAILED)
    with count_queries(engine, only=("SELECT",)) as small:
        assert admin.get(url(tenant)).status_code == 200
    for n in range(4):
        target = add(session, loopback_allowed, tenant, name=f"上报{n}")
        for number, state in enumerate(ExportState):
            add_delivery(session, tenant, target, state, round_id=number)
    with count_queries(engine, only=("SELECT",)) as large:
        page = admin.get(url(tenant)).get_data(as_text=True)
    assert page.count('class="delivery-') == 1 + 4 * len(ExportState)
    assert len(large) == len(small), large


def test_a_refused_form_does_not_echo_a_private_key(admin: FlaskClient, a: dict[str, Any], session: Session) -> None:
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    response = admin.post(url(a["tenant"], "/new"), data={
        **FORM, "method": "sftp", "destination": "report.example.gov.cn:2222", "username": "upload",
        "host_key": "not a key", "secret": "", "private_key": key})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "无法识别服务器公钥" in page
    assert key.splitlines()[1] not in page and "report.example.gov.cn:2222" in page
    assert targets(session, a["tenant"]) == []
