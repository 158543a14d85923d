"""The operator's tenant pages: list, create, detail, rules versions, suspend and resume.

Operators manage tenants but never see inside them; tenant accounts never reach these pages.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from fivestar.audit.models import AuditEvent
from fivestar.enums import Role, TenantStatus
from fivestar.tenancy import tenant_context
from fivestar.tenants.models import RuleSetVersion, Tenant
from tests.support import count_queries

REPO = Path(__file__).resolve().parents[2]
NOTICE = (REPO / "tenants" / "notice-illustrative.toml").read_text(encoding="utf-8")
SHIZHI = (REPO / "tenants" / "shizhi-110.toml").read_text(encoding="utf-8")
BROKEN = NOTICE.replace("quarterly_review = true", "quarterly_reveiw = true").replace(
    'name = "区直机关“五星争创”（通知示例）"', 'name = ""'
)


def _count(session: Any, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _tenant(session: Any, slug: str) -> Tenant | None:
    session.expire_all()
    return session.scalar(select(Tenant).where(Tenant.slug == slug))


def _versions(session: Any, tenant: Any) -> list[RuleSetVersion]:
    session.expire_all()
    with tenant_context(tenant.id):
        return list(session.scalars(select(RuleSetVersion).order_by(RuleSetVersion.version)))


def _last_event(session: Any, action: str) -> AuditEvent:
    statement = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())
    found = session.scalars(statement).first()
    assert found is not None, action
    return found



def _operator(create_operator: Any, login_operator: Any) -> Any:
    operator = create_operator("ops1")
    login_operator(operator)
    return operator


def _create(client: Any, **overrides: Any) -> Any:
    data = {
        "slug": "new-district",
        "name": "新区直机关工委",
        "committee_name": "",
        "timezone": "Asia/Shanghai",
        "locale": "zh",
        "rules_source": "notice-illustrative.toml",
    }
    data.update(overrides)
    return client.post("/ops/tenants/new", data=data, content_type="multipart/form-data")


# --- list ----------------------------------------------------------------------------------------


def test_list_shows_status_rules_version_and_member_counts(  # type: ignore[no-untyped-def]
    client, session, app, create_tenant, create_org, create_member, create_operator, login_operator,
) -> None:
    from fivestar.tenants.services import add_rules_version, suspend_tenant

    big = create_tenant(slug="big-one", name="甲区直机关工委")
    branch = create_org(big)
    for _ in range(3):
        create_member(big, branch, name="张秘密")
    small = create_tenant(slug="small-one", name="乙区直机关工委")
    add_rules_version(session, small, SHIZHI)
    suspend_tenant(session, small, "欠费")
    session.flush()
    _operator(create_operator, login_operator)

    response = client.get("/ops/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "甲区直机关工委" in page and "乙区直机关工委" in page
    assert "已暂停" in page and "正常" in page
    assert "第 2 版" in page  # small-one's rules
    big_row = page[page.index("big-one"):page.index("small-one")]
    assert ">3</td>" in big_row
    assert "张秘密" not in page  # counts only, never members


def test_list_runs_a_fixed_number_of_queries(  # type: ignore[no-untyped-def]
    client, app, create_tenant, create_org, create_member, create_operator, login_operator,
) -> None:
    engine = app.extensions["fivestar.engine"]
    first = create_tenant(slug="q-one")
    create_member(first, create_org(first))
    _operator(create_operator, login_operator)
    client.get("/ops/")  # warm up (templates, session touch)
    with count_queries(engine, only=("SELECT",)) as few:
        assert client.get("/ops/").status_code == 200
    for number in range(4):
        tenant = create_tenant(slug=f"q-more-{number}")
        branch = create_org(tenant)
        for _ in range(3):
            create_member(tenant, branch)
    with count_queries(engine, only=("SELECT",)) as many:
        page = client.get("/ops/").get_data(as_text=True)
    assert "q-more-3" in page
    assert len(many) == len(few)


def test_anonymous_and_tenant_accounts_get_the_operator_login(  # type: ignore[no-untyped-def]
    client, session, create_tenant, create_account, login,
) -> None:
    tenant = create_tenant(slug="inside", name="内部区直机关工委")
    anonymous = client.get("/ops/")
    assert anonymous.status_code == 302 and "/ops/login" in anonymous.location

    admin = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="admin")
    login(tenant, admin)
    assert client.get(f"/t/{tenant.slug}/").status_code == 200  # logged in inside the tenant
    for url in ("/ops/", f"/ops/tenants/{tenant.slug}", "/ops/tenants/new", f"/ops/tenants/{tenant.slug}/rules/1.toml"):
        response = client.get(url)
        assert response.status_code == 302 and "/ops/login" in response.location, url
    refused = client.post(f"/ops/tenants/{tenant.slug}/suspend", data={"suspend-reason": "试图越权"})
    assert refused.status_code == 302 and "/ops/login" in refused.location
    assert _tenant(session, "inside").status is TenantStatus.ACTIVE  # type: ignore[union-attr]
    followed = client.get("/ops/", follow_redirects=True).get_data(as_text=True)
    assert "平台运营方登录" in followed and "内部区直机关工委" not in followed


def test_operator_session_is_not_a_login_inside_a_tenant(  # type: ignore[no-untyped-def]
    client, create_tenant, create_operator, login_operator,
) -> None:
    tenant = create_tenant(slug="walled")
    _operator(create_operator, login_operator)
    assert client.get("/ops/").status_code == 200
    for url in (f"/t/{tenant.slug}/", f"/t/{tenant.slug}/rules/"):
        response = client.get(url)
        assert response.status_code == 302 and f"/t/{tenant.slug}/login" in response.location, url


def test_operator_logout_ends_the_session(  # type: ignore[no-untyped-def]
    client, create_operator, login_operator,
) -> None:
    _operator(create_operator, login_operator)
    assert client.get("/ops/").status_code == 200
    assert client.post("/ops/logout").status_code == 302
    assert client.get("/ops/").status_code == 302


# --- create --------------------------------------------------------------------------------------


def test_form_offers_the_sample_rule_sets_and_common_zones(  # type: ignore[no-untyped-def]
    client, create_operator, login_operator,
) -> None:
    _operator(create_operator, login_operator)
    page = client.get("/ops/tenants/new").get_data(as_text=True)
    for sample in ("notice-illustrative.toml", "shizhi-110.toml", "zoucheng-public-weighted.toml"):
        assert sample in page
    assert "Asia/Shanghai" in page and "上传规则文件" in page


def test_the_form_starts_in_the_zone_of_the_setting(  # type: ignore[no-untyped-def]
    app, client, create_operator, login_operator,
) -> None:
    _operator(create_operator, login_operator)
    settings = app.config["FIVESTAR_SETTINGS"]
    app.config["FIVESTAR_SETTINGS"] = settings.model_copy(update={"default_timezone": "Asia/Urumqi"})
    try:
        page = client.get("/ops/tenants/new").get_data(as_text=True)
    finally:
        app.config["FIVESTAR_SETTINGS"] = settings
    assert '<option selected value="Asia/Urumqi">' in page or 'value="Asia/Urumqi" selected' in page


def test_create_from_a_sample_file(  # type: ignore[no-untyped-def]
    client, session, create_operator, login_operator,
) -> None:
    operator = _operator(create_operator, login_operator)
    response = _create(client, committee_name="新区工委")
    assert response.status_code == 302 and response.location.endswith("/ops/tenants/new-district")
    tenant = _tenant(session, "new-district")
    assert tenant is not None and tenant.name == "新区直机关工委" and tenant.status is TenantStatus.ACTIVE
    versions = _versions(session, tenant)
    assert [v.version for v in versions] == [1] and versions[0].source_toml == NOTICE
    events = session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant.id).order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["tenant.create", "org.create", "rules.version"]
    assert {(e.actor_kind, e.actor_id) for e in events} == {("operator", operator.id)}
    assert events[1].after is not None and events[1].after["name"] == "新区工委"
    detail = client.get("/ops/tenants/new-district").get_data(as_text=True)
    assert "已创建单位" in detail and "/t/new-district/" in detail


def test_create_from_an_uploaded_file(  # type: ignore[no-untyped-def]
    client, session, create_operator, login_operator,
) -> None:
    _operator(create_operator, login_operator)
    response = _create(
        client, slug="uploaded", rules_source="__upload__", rules_file=(io.BytesIO(SHIZHI.encode()), "mine.toml")
    )
    assert response.status_code == 302
    tenant = _tenant(session, "uploaded")
    assert tenant is not None and _versions(session, tenant)[0].source_toml == SHIZHI


def test_refusals_keep_input_and_create_nothing(  # type: ignore[no-untyped-def]
    client, session, create_tenant, create_operator, login_operator,
) -> None:
    create_tenant(slug="taken")
    _operator(create_operator, login_operator)
    tenants, events = _count(session, Tenant), _count(session, AuditEvent)

    duplicate = _create(client, slug="taken", name="重复的工委")
    assert duplicate.status_code == 400
    page = duplicate.get_data(as_text=True)
    assert "单位代码 taken 已被使用" in page and "重复的工委" in page  # the input is kept

    bad_slug = _create(client, slug="9-lives!")
    assert bad_slug.status_code == 400 and "单位代码须为" in bad_slug.get_data(as_text=True)

    bad_zone = _create(client, timezone="Mars/Olympus")
    assert bad_zone.status_code == 400

    no_file = _create(client, slug="no-file", rules_source="__upload__")
    assert no_file.status_code == 400 and "请选择要上传的规则文件" in no_file.get_data(as_text=True)

    invalid = _create(
        client, slug="invalid", rules_source="__upload__", rules_file=(io.BytesIO(BROKEN.encode()), "bad.toml")
    )
    assert invalid.status_code == 400
    page = invalid.get_data(as_text=True)
    assert "branch.quarterly_reveiw" in page and "meta.name" in page and "未做任何更改" in page

    assert _count(session, Tenant) == tenants
    assert _count(session, AuditEvent) == events
    assert _tenant(session, "invalid") is None


def test_create_needs_a_csrf_token(  # type: ignore[no-untyped-def]
    client, session, csrf_enabled, create_operator,
) -> None:
    from fivestar.accounts.sessions import start_session

    operator = create_operator("csrf-op")
    token = start_session(session, hours=1, operator=operator)
    session.flush()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = token
        cookie["_fresh"] = True
    assert client.get("/ops/tenants/new").status_code == 200
    assert _create(client, slug="no-token").status_code == 400
    assert _tenant(session, "no-token") is None


# --- detail, rules, suspend, resume --------------------------------------------------------------


def test_detail_shows_counts_and_versions_but_no_member_data(  # type: ignore[no-untyped-def]
    client, session, create_tenant, create_org, create_member, create_account, create_operator, login_operator,
) -> None:
    tenant = create_tenant(slug="detail-me")
    branch = create_org(tenant, name="机密党支部")
    create_member(tenant, branch, name="李秘密", phone="13912345678")
    create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="hidden-admin")
    _operator(create_operator, login_operator)
    response = client.get("/ops/tenants/detail-me")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "第 1 版" in page and "初始版本" in page and "/ops/tenants/detail-me/rules/1.toml" in page
    facts = page[page.index("组织数"):page.index("单位页面")]
    assert "<dd>2</dd>" in facts and "<dd>1</dd>" in facts  # two organisations, one member, one account
    for secret in ("李秘密", "13912345678", "机密党支部", "hidden-admin"):
        assert secret not in page
    assert client.get("/ops/tenants/no-such").status_code == 404
    download = client.get("/ops/tenants/detail-me/rules/1.toml")
    assert download.status_code == 200 and download.get_data(as_text=True) == NOTICE
    assert client.get("/ops/tenants/detail-me/rules/7.toml").status_code == 404


def test_new_rules_version_from_the_operator_page(  # type: ignore[no-untyped-def]
    client, session, create_tenant, create_operator, login_operator,
) -> None:
    tenant = create_tenant(slug="versioned")
    operator = _operator(create_operator, login_operator)
    first = _versions(session, tenant)[0]
    first_hash, first_source = first.content_hash, first.source_toml

    invalid = client.post(
        "/ops/tenants/versioned/rules",
        data={"rules-rules_file": (io.BytesIO(BROKEN.encode()), "bad.toml"), "rules-note": "坏的"},
        content_type="multipart/form-data",
    )
    assert invalid.status_code == 400 and "branch.quarterly_reveiw" in invalid.get_data(as_text=True)
    same = client.post(
        "/ops/tenants/versioned/rules",
        data={"rules-rules_file": (io.BytesIO(NOTICE.encode()), "same.toml")},
        content_type="multipart/form-data",
    )
    assert same.status_code == 400 and "相同" in same.get_data(as_text=True)
    assert [v.version for v in _versions(session, tenant)] == [1]

    ok = client.post(
        "/ops/tenants/versioned/rules",
        data={"rules-rules_file": (io.BytesIO(SHIZHI.encode()), "new.toml"), "rules-note": "市直方案"},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 302
    versions = _versions(session, tenant)
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].content_hash == first_hash and versions[0].source_toml == first_source
    assert versions[1].note == "市直方案" and versions[1].created_by == "平台运营"
    event = _last_event(session, "rules.version")
    assert (event.tenant_id, event.actor_kind, event.actor_id) == (tenant.id, "operator", operator.id)


def _as(client: Any, token: str) -> None:
    """Switch the browser's login to another session token (one test client, several people)."""
    with client.session_transaction() as cookie:
        cookie["_user_id"] = token
        cookie["_fresh"] = True


def test_suspend_and_resume(  # type: ignore[no-untyped-def]
    client, session, create_tenant, create_account, create_operator, login_operator,
) -> None:
    from fivestar.accounts.models import AuthSession
    from fivestar.accounts.sessions import hash_token, start_session

    tenant = create_tenant(slug="pausable")
    admin = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="admin")
    tenant_id = tenant.id
    user_token = start_session(session, hours=2, account=admin)  # a tenant user already logged in
    session.flush()
    operator = _operator(create_operator, login_operator)
    with client.session_transaction() as cookie:
        operator_token = cookie["_user_id"]

    _as(client, user_token)
    assert client.get("/t/pausable/").status_code == 200

    _as(client, operator_token)
    no_reason = client.post("/ops/tenants/pausable/suspend", data={"suspend-reason": "  "})
    assert no_reason.status_code == 400 and "暂停须说明原因" in no_reason.get_data(as_text=True)
    assert _tenant(session, "pausable").status is TenantStatus.ACTIVE  # type: ignore[union-attr]

    suspended = client.post("/ops/tenants/pausable/suspend", data={"suspend-reason": "合同到期"})
    assert suspended.status_code == 302
    found = _tenant(session, "pausable")
    assert found is not None and found.status is TenantStatus.SUSPENDED and found.status_reason == "合同到期"
    event = _last_event(session, "tenant.suspend")
    assert (event.tenant_id, event.actor_kind, event.actor_id, event.reason) == (
        tenant_id, "operator", operator.id, "合同到期"
    )
    assert event.before is not None and event.before["status"] == "active"
    assert event.after is not None and event.after["status"] == "suspended" and event.after["sessions_revoked"] == 1
    row = session.scalar(select(AuthSession).where(AuthSession.token_hash == hash_token(user_token)))
    assert row is not None and row.revoked_at is not None
    detail = client.get("/ops/tenants/pausable").get_data(as_text=True)
    assert "恢复单位" in detail and "合同到期" in detail

    _as(client, user_token)
    page = client.get("/t/pausable/")
    assert page.status_code == 403 and "该单位已暂停使用" in page.get_data(as_text=True)
    assert client.get("/t/pausable/rules/").status_code == 403
    refused = client.post("/t/pausable/login", data={"username": "admin", "password": "correct-horse-battery"})
    assert refused.status_code == 403 and "该单位已暂停使用" in refused.get_data(as_text=True)

    _as(client, operator_token)
    resumed = client.post("/ops/tenants/pausable/resume", data={"resume-reason": "已续约"})
    assert resumed.status_code == 302
    assert _tenant(session, "pausable").status is TenantStatus.ACTIVE  # type: ignore[union-attr]
    event = _last_event(session, "tenant.resume")
    assert (event.tenant_id, event.actor_kind, event.reason) == (tenant_id, "operator", "已续约")
    again = client.post("/ops/tenants/pausable/resume", data={})
    assert again.status_code == 400 and "该单位已处于正常状态" in again.get_data(as_text=True)

    # The old session ended with the suspension; logging in again works after resuming.
    _as(client, user_token)
    assert client.get("/t/pausable/").status_code == 302
    again_in = client.post("/t/pausable/login", data={"username": "admin", "password": "correct-horse-battery"})
    assert again_in.status_code == 302
    assert client.get("/t/pausable/").status_code == 200
