"""The tenant's rules pages: readable rules, history, download, and uploads by administrators."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from fivestar.audit.models import AuditEvent
from fivestar.enums import Role
from fivestar.tenancy import tenant_context
from fivestar.tenants.models import RuleSetVersion
from fivestar.tenants.services import add_rules_version

REPO = Path(__file__).resolve().parents[2]
NOTICE = (REPO / "tenants" / "notice-illustrative.toml").read_text(encoding="utf-8")
SHIZHI = (REPO / "tenants" / "shizhi-110.toml").read_text(encoding="utf-8")
ZOUCHENG = (REPO / "tenants" / "zoucheng-public-weighted.toml").read_text(encoding="utf-8")


def _versions(session: Any, tenant: Any) -> list[RuleSetVersion]:
    session.expire_all()
    with tenant_context(tenant.id):
        return list(session.scalars(select(RuleSetVersion).order_by(RuleSetVersion.version)))


def _events(session: Any, action: str | None = None) -> int:
    statement = select(func.count()).select_from(AuditEvent)
    if action:
        statement = statement.where(AuditEvent.action == action)
    return int(session.scalar(statement) or 0)


def _admin(create_tenant: Any, create_account: Any, login: Any, rules: str = NOTICE, slug: str = "rules-a") -> Any:
    tenant = create_tenant(slug=slug, rules_toml=rules)
    admin = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="admin")
    login(tenant, admin)
    return tenant, admin


def _upload(client: Any, tenant: Any, text: str | bytes, note: str = "", name: str = "rules.toml") -> Any:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return client.post(
        f"/t/{tenant.slug}/rules/upload",
        data={"rules_file": (io.BytesIO(data), name), "note": note},
        content_type="multipart/form-data",
    )


def test_notice_rules_are_shown_in_readable_chinese(  # type: ignore[no-untyped-def]
    client, create_tenant, create_account, login,
) -> None:
    tenant, _admin_account = _admin(create_tenant, create_account, login)
    response = client.get(f"/t/{tenant.slug}/rules/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for expected in (
        "区直机关“五星争创”（通知示例）",  # rule-set name
        "示例数值",  # illustrative badge
        "满分 100 分",
        "一季一小评",
        "班子建设",  # indicator
        "书记抓党建责任落实",  # criterion
        "金星 ≥ 18",  # medal band
        "≥ 90",  # star band
        "无星",  # below the lowest band
        "班子成员发生严重违纪违法问题",  # veto
        "取消星级（无星）",  # veto effect
        "最高评为二星",
        "每季度评定",
        "学习方面",  # member aspect
        "加分合计不超过 5 分",  # bonus cap
        "不按时足额交纳党费",  # disqualifier
        "二星及以下：谈话教育",
        "5 个工作日",  # public notice
        "截止前 3、1 天",  # reminders
        "1月底前上报自评结果",  # deadline
        "第 1 版",
    ):
        assert expected in page, expected
    assert "tenant.rules.upload" not in page and f"/t/{tenant.slug}/rules/upload" in page  # admins get the form
    assert f"/t/{tenant.slug}/rules/v/1/download" in page


def test_public_weighting_quota_promotion_and_meeting_are_shown(  # type: ignore[no-untyped-def]
    client, create_tenant, create_account, login,
) -> None:
    tenant, _admin_account = _admin(create_tenant, create_account, login, rules=ZOUCHENG, slug="rules-z")
    page = client.get(f"/t/{tenant.slug}/rules/").get_data(as_text=True)
    for expected in (
        "计入综合得分的权重：30%",
        "满意度不满 60%：最高评为二星",
        "达到 16 分得此星",  # named-star threshold (illustrative in the sample)
        "强制：超出比例即不予通过",
        "五星 不超过 10%",
        "每年最多晋升 1 级",
        "获得市级及以上表彰",  # exception fact shown by its label, not its key
        "新建支部当年不定星",
        "群众代表人数不少于党员人数的 20%",
        "每半年评定",
        "学习提高星",
        "最高评为三星",
    ):
        assert expected in page, expected
    assert "municipal_honour" not in page


def test_gates_and_member_below_label_are_shown(  # type: ignore[no-untyped-def]
    client, create_tenant, create_account, login,
) -> None:
    tenant, _admin_account = _admin(create_tenant, create_account, login, rules=SHIZHI, slug="rules-s")
    page = client.get(f"/t/{tenant.slug}/rules/").get_data(as_text=True)
    assert "有党建创新项目" in page  # the five-star gate
    assert "不合格" in page  # members below 60
    assert "基础分60加减分" in page  # scheme
    assert "减分项" in page and "违规违纪" in page
    assert "指导：超出比例仅作提醒" in page


def test_history_old_versions_and_download(  # type: ignore[no-untyped-def]
    client, session, create_tenant, create_account, login,
) -> None:
    tenant, _admin_account = _admin(create_tenant, create_account, login)
    add_rules_version(session, tenant, SHIZHI, note="改用市直方案")
    session.flush()
    page = client.get(f"/t/{tenant.slug}/rules/").get_data(as_text=True)
    assert "第 2 版" in page and "改用市直方案" in page and "当前版本" in page
    assert "有党建创新项目" in page  # current = version 2

    old = client.get(f"/t/{tenant.slug}/rules/v/1")
    assert old.status_code == 200
    old_page = old.get_data(as_text=True)
    assert "历史版本" in old_page and "书记抓党建责任落实" in old_page and "有党建创新项目" not in old_page

    download = client.get(f"/t/{tenant.slug}/rules/v/1/download")
    assert download.status_code == 200
    assert download.headers["Content-Type"].startswith("application/toml")
    assert f'filename="{tenant.slug}-rules-v1.toml"' in download.headers["Content-Disposition"]
    assert download.get_data(as_text=True) == NOTICE

    assert client.get(f"/t/{tenant.slug}/rules/v/9").status_code == 404
    assert client.get(f"/t/{tenant.slug}/rules/v/9/download").status_code == 404


def test_admin_uploads_a_new_version_and_the_old_one_is_unchanged(  # type: ignore[no-untyped-def]
    client, session, create_tenant, create_account, login,
) -> None:
    tenant, admin = _admin(create_tenant, create_account, login)
    admin_id = admin.id
    before = _versions(session, tenant)[0]
    old_hash, old_source = before.content_hash, before.source_toml
    response = _upload(client, tenant, "\ufeff" + SHIZHI, note="第二版")
    assert response.status_code == 302 and response.location.endswith(f"/t/{tenant.slug}/rules/")
    versions = _versions(session, tenant)
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].content_hash == old_hash and versions[0].source_toml == old_source
    assert versions[1].note == "第二版" and versions[1].source_toml == SHIZHI  # byte-order mark dropped
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == "rules.version")
        .order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None
    assert (event.actor_kind, event.actor_id) == ("account", admin_id)
    assert event.after is not None and event.after["version"] == 2 and event.reason == "第二版"
    assert "已保存第 2 版规则" in client.get(f"/t/{tenant.slug}/rules/").get_data(as_text=True)


def test_invalid_upload_lists_every_error_path_and_changes_nothing(  # type: ignore[no-untyped-def]
    client, session, create_tenant, create_account, login,
) -> None:
    tenant, _admin_account = _admin(create_tenant, create_account, login)
    events = _events(session)
    broken = NOTICE.replace('label = "班子建设"\nmax = 20', 'label = "班子建设"\nmax = 25', 1).replace(
        "quarterly_review = true", "quarterly_reveiw = true"
    )
    assert broken.count("quarterly_reveiw") == 1 and "max = 25" in broken
    response = _upload(client, tenant, broken)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "branch.quarterly_reveiw" in page
    assert "branch.indicators[0]" in page
    assert "未做任何更改" in page
    assert [v.version for v in _versions(session, tenant)] == [1]
    assert _events(session) == events


def test_unchanged_or_unreadable_uploads_are_refused(  # type: ignore[no-untyped-def]
    client, session, create_tenant, create_account, login,
) -> None:
    tenant, _admin_account = _admin(create_tenant, create_account, login)
    same = _upload(client, tenant, "# only a comment differs\n" + NOTICE)
    assert same.status_code == 400
    assert "规则内容与当前版本（第 1 版）相同" in same.get_data(as_text=True)
    not_utf8 = _upload(client, tenant, NOTICE.encode("gb18030"))
    assert not_utf8.status_code == 400 and "UTF-8" in not_utf8.get_data(as_text=True)
    missing = client.post(f"/t/{tenant.slug}/rules/upload", data={"note": "x"}, content_type="multipart/form-data")
    assert missing.status_code == 400 and "请选择规则文件" in missing.get_data(as_text=True)
    assert [v.version for v in _versions(session, tenant)] == [1]


def test_readers_see_the_rules_but_cannot_upload(  # type: ignore[no-untyped-def]
    client, session, create_tenant, create_account, login,
) -> None:
    tenant = create_tenant(slug="rules-r")
    member = create_account(tenant, roles=[(Role.COMMITTEE_MEMBER, None)], username="weiyuan")
    login(tenant, member)
    page = client.get(f"/t/{tenant.slug}/rules/")
    assert page.status_code == 200
    assert "上传新版本" not in page.get_data(as_text=True)
    assert _upload(client, tenant, SHIZHI).status_code == 403
    assert [v.version for v in _versions(session, tenant)] == [1]


def test_anonymous_operator_and_other_tenant_sessions_see_nothing(  # type: ignore[no-untyped-def]
    client, create_tenant, create_account, create_operator, login, login_operator,
) -> None:
    tenant = create_tenant(slug="rules-x")
    other = create_tenant(slug="rules-y")
    anonymous = client.get(f"/t/{tenant.slug}/rules/")
    assert anonymous.status_code == 302 and f"/t/{tenant.slug}/login" in anonymous.location

    login_operator(create_operator())
    as_operator = client.get(f"/t/{tenant.slug}/rules/")
    assert as_operator.status_code == 302 and f"/t/{tenant.slug}/login" in as_operator.location
    assert client.get(f"/t/{tenant.slug}/rules/v/1/download").status_code == 302

    admin = create_account(other, roles=[(Role.TENANT_ADMIN, None)], username="admin")
    login(other, admin)
    crossing = client.get(f"/t/{tenant.slug}/rules/")
    assert crossing.status_code == 302 and f"/t/{tenant.slug}/login" in crossing.location
    assert client.get(f"/t/{tenant.slug}/rules/v/1/download").status_code == 302


def test_upload_needs_a_csrf_token(  # type: ignore[no-untyped-def]
    client, session, csrf_enabled, create_tenant, create_account,
) -> None:
    from fivestar.accounts.sessions import start_session

    tenant = create_tenant(slug="rules-c")
    admin = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="admin")
    token = start_session(session, hours=1, account=admin)
    session.flush()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = token
        cookie["_fresh"] = True
    assert client.get(f"/t/{tenant.slug}/rules/").status_code == 200
    assert _upload(client, tenant, SHIZHI).status_code == 400
    assert [v.version for v in _versions(session, tenant)] == [1]
