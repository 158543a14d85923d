"""Tenant lifecycle, rule-set versions and operator accounts (services; both databases)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from fivestar.accounts.models import AuthSession, Operator
from fivestar.audit.models import AuditEvent
from fivestar.audit.recording import Actor, acting_as
from fivestar.enums import OrgKind, Role, TenantStatus
from fivestar.errors import NotFoundError, ServiceError
from fivestar.ops import services as ops
from fivestar.ops.queries import list_tenants, tenant_counts
from fivestar.orgs.models import Organisation
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.tenants import services
from fivestar.tenants.models import RuleSetVersion, Tenant
from tests.support import count_queries

REPO = Path(__file__).resolve().parents[2]
NOTICE = (REPO / "tenants" / "notice-illustrative.toml").read_text(encoding="utf-8")
SHIZHI = (REPO / "tenants" / "shizhi-110.toml").read_text(encoding="utf-8")
PASSWORD = "A-long-enough-pw-7"
CLI = Actor("cli", None, "command line (tester)")


def _count(session: Any, model: Any) -> int:
    with cross_tenant("test counts rows of every tenant"):
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _versions(session: Any, tenant: Any) -> list[RuleSetVersion]:
    with tenant_context(tenant.id):
        return list(session.scalars(select(RuleSetVersion).order_by(RuleSetVersion.version)))


def _create(session: Any, **overrides: Any) -> Tenant:
    values: dict[str, Any] = {"slug": "district-x", "name": "某区直机关工委", "rules_toml": NOTICE}
    values.update(overrides)
    return services.create_tenant(session, **values)


# --- create ------------------------------------------------------------------------------------


def test_create_makes_root_committee_version_one_and_audit_events(session) -> None:  # type: ignore[no-untyped-def]
    with acting_as(CLI):
        tenant = _create(session, slug="  District-One ", committee_name="某区直机关工委（根）", locale="en")
    session.flush()
    assert (tenant.slug, tenant.locale, tenant.timezone, tenant.status) == (
        "district-one", "en", "Asia/Shanghai", TenantStatus.ACTIVE
    )
    with tenant_context(tenant.id):
        roots = list(session.scalars(select(Organisation)))
    assert [(o.kind, o.name, o.path) for o in roots] == [
        (OrgKind.COMMITTEE, "某区直机关工委（根）", f"/{roots[0].id}/")
    ]
    versions = _versions(session, tenant)
    assert [v.version for v in versions] == [1]
    assert versions[0].source_toml == NOTICE
    assert versions[0].content_hash == services.parse_rules(NOTICE).content_hash
    assert versions[0].document["meta"]["name"] == "区直机关“五星争创”（通知示例）"
    assert versions[0].created_by == "command line (tester)"
    events = session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant.id).order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["tenant.create", "org.create", "rules.version"]
    assert {(e.actor_kind, e.actor_name) for e in events} == {("cli", "command line (tester)")}


@pytest.mark.parametrize("slug", ["ab", "1district", "-district", "district-", "dis trict", "区直", "a" * 41, "x_y"])
def test_bad_slugs_are_refused(session, slug: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceError) as caught:
        _create(session, slug=slug)
    assert caught.value.field == "slug"


def test_refusals_write_nothing(session, create_tenant) -> None:  # type: ignore[no-untyped-def]
    create_tenant(slug="taken")
    counts = (_count(session, Tenant), _count(session, AuditEvent), _count(session, Organisation))
    broken = NOTICE.replace("quarterly_review = true", "quarterly_reveiw = true").replace("min = 90", "min = 200", 1)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"slug": "taken"}, "slug"),
        ({"name": "   "}, "name"),
        ({"name": "名" * 121}, "name"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "Asia/Urumqi"}, "timezone"),  # differs from the rule file's zone
        ({"locale": "fr"}, "locale"),
        ({"rules_toml": broken}, "rules"),
        ({"rules_toml": "not = [toml"}, "rules"),
    ]
    for overrides, field in cases:
        with pytest.raises(ServiceError) as caught:
            _create(session, **overrides)
        assert caught.value.field == field, overrides
    session.flush()
    assert (_count(session, Tenant), _count(session, AuditEvent), _count(session, Organisation)) == counts


def test_invalid_rules_name_every_path(session) -> None:  # type: ignore[no-untyped-def]
    broken = NOTICE.replace("quarterly_review = true", "quarterly_reveiw = true").replace(
        'name = "区直机关“五星争创”（通知示例）"', 'name = ""'
    )
    with pytest.raises(services.RulesInvalidError) as caught:
        _create(session, rules_toml=broken)
    paths = [error.path for error in caught.value.errors]
    assert "branch.quarterly_reveiw" in paths and "meta.name" in paths
    assert "branch.quarterly_reveiw" in caught.value.message


def test_get_tenant(session, create_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = create_tenant(slug="findable")
    assert services.get_tenant(session, " Findable ") is tenant
    with pytest.raises(NotFoundError):
        services.get_tenant(session, "missing")


# --- rules versions ----------------------------------------------------------------------------


def test_new_version_increments_and_never_changes_the_old_one(  # type: ignore[no-untyped-def]
    session, create_tenant,
) -> None:
    tenant = create_tenant(slug="versions")
    first = _versions(session, tenant)[0]
    snapshot = (first.id, first.source_toml, first.content_hash, dict(first.document), first.created_at)
    with acting_as(Actor("operator", 3, "运营乙")):
        second = services.add_rules_version(session, tenant, SHIZHI, note="  改用市直方案 ")
    session.flush()
    session.expire_all()
    versions = _versions(session, tenant)
    assert [v.version for v in versions] == [1, 2]
    old = versions[0]
    assert (old.id, old.source_toml, old.content_hash, old.document, old.created_at) == snapshot
    assert second.note == "改用市直方案" and second.created_by == "运营乙"
    assert services.current_rules(session, tenant).version == 2  # type: ignore[union-attr]
    assert [v.version for v in services.rules_history(session, tenant)] == [2, 1]
    assert services.rules_version(session, tenant, 1).source_toml == NOTICE
    with pytest.raises(NotFoundError):
        services.rules_version(session, tenant, 3)
    rules = services.version_rules(versions[1])
    assert rules.content_hash == versions[1].content_hash and rules.branch.total_max == 110
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == "rules.version")
        .order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None and event.after == {
        "version": 2, "content_hash": second.content_hash, "name": rules.meta.name
    }
    assert (event.actor_kind, event.actor_id, event.reason) == ("operator", 3, "改用市直方案")


def test_versions_are_numbered_per_tenant(session, create_tenant) -> None:  # type: ignore[no-untyped-def]
    one = create_tenant(slug="one-t")
    two = create_tenant(slug="two-t")
    services.add_rules_version(session, one, SHIZHI)
    session.flush()
    assert [v.version for v in _versions(session, one)] == [1, 2]
    assert [v.version for v in _versions(session, two)] == [1]


def test_unchanged_or_invalid_documents_are_refused(session, create_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = create_tenant(slug="same-rules")
    events = _count(session, AuditEvent)
    with pytest.raises(ServiceError, match="相同"):
        services.add_rules_version(session, tenant, "# a new comment only\n" + NOTICE)
    with pytest.raises(services.RulesInvalidError):
        services.add_rules_version(session, tenant, NOTICE.replace("min = 90", "min = 900", 1))
    with pytest.raises(ServiceError) as caught:
        other_zone = SHIZHI.replace('timezone = "Asia/Shanghai"', 'timezone = "Asia/Urumqi"')
        services.add_rules_version(session, tenant, other_zone)
    assert caught.value.field == "timezone"
    with pytest.raises(ServiceError) as too_long:
        services.add_rules_version(session, tenant, SHIZHI, note="x" * 501)
    assert too_long.value.field == "note"
    session.flush()
    assert [v.version for v in _versions(session, tenant)] == [1]
    assert _count(session, AuditEvent) == events


def test_decode_rules_upload() -> None:
    assert services.decode_rules_upload("\ufeffa = 1".encode()) == "a = 1"
    for bad in ("规则".encode("gb18030"), b"   \n", b"x" * (services.RULES_MAX_BYTES + 1)):
        with pytest.raises(ServiceError) as caught:
            services.decode_rules_upload(bad)
        assert caught.value.field == "rules"


# --- suspend / resume --------------------------------------------------------------------------


def test_suspend_and_resume_record_before_after_and_end_logins(  # type: ignore[no-untyped-def]
    session, create_tenant, create_account,
) -> None:
    from fivestar.accounts.sessions import start_session

    tenant = create_tenant(slug="pause-me")
    other = create_tenant(slug="keep-me")
    account = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)])
    bystander = create_account(other, roles=[(Role.TENANT_ADMIN, None)])
    start_session(session, hours=1, account=account)
    start_session(session, hours=1, account=account)
    start_session(session, hours=1, account=bystander)
    session.flush()

    with pytest.raises(ServiceError) as caught:
        services.suspend_tenant(session, tenant, "  ")
    assert caught.value.field == "reason"
    with acting_as(Actor("operator", 9, "运营丙")):
        services.suspend_tenant(session, tenant, " 合同到期 ")
    session.flush()
    assert tenant.status is TenantStatus.SUSPENDED and tenant.status_reason == "合同到期"
    live = session.execute(
        select(AuthSession.tenant_id, func.count())
        .where(AuthSession.revoked_at.is_(None))
        .group_by(AuthSession.tenant_id)
    ).all()
    assert dict(live) == {other.id: 1}  # only the other tenant's login survives
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "tenant.suspend")).one()
    assert (event.tenant_id, event.actor_kind, event.actor_id, event.reason) == (tenant.id, "operator", 9, "合同到期")
    assert event.before is not None and event.before["status"] == "active"
    assert event.after is not None and event.after["status"] == "suspended" and event.after["sessions_revoked"] == 2

    with pytest.raises(ServiceError, match="暂停"):
        services.suspend_tenant(session, tenant, "again")
    services.resume_tenant(session, tenant, "  ")
    session.flush()
    assert tenant.status is TenantStatus.ACTIVE and tenant.status_reason is None
    resumed = session.scalars(select(AuditEvent).where(AuditEvent.action == "tenant.resume")).one()
    assert resumed.reason is None and resumed.after is not None and resumed.after["status"] == "active"
    with pytest.raises(ServiceError, match="正常"):
        services.resume_tenant(session, tenant)


# --- listings ----------------------------------------------------------------------------------


def test_list_tenants_in_one_query(  # type: ignore[no-untyped-def]
    session, engine, create_tenant, create_org, create_member,
) -> None:
    from fivestar.enums import MemberStatus

    busy = create_tenant(slug="busy")
    branch = create_org(busy)
    members = [create_member(busy, branch) for _ in range(3)]
    with tenant_context(busy.id):
        members[0].status = MemberStatus.TRANSFERRED_OUT
    idle = create_tenant(slug="idle")
    services.add_rules_version(session, idle, SHIZHI)
    session.flush()

    with count_queries(engine) as statements:
        rows = list_tenants(session)
    assert len(statements) == 1
    found = {row.tenant.slug: row for row in rows}
    assert (found["busy"].rules_version, found["busy"].active_members) == (1, 2)
    assert (found["idle"].rules_version, found["idle"].active_members) == (2, 0)
    assert found["idle"].rules_updated_at is not None and found["idle"].rules_updated_at.tzinfo is not None
    assert [row.tenant.slug for row in rows] == sorted(found)


def test_tenant_counts_stay_within_the_tenant(session, two_tenants) -> None:  # type: ignore[no-untyped-def]
    counts = tenant_counts(session, two_tenants["a"]["tenant"])
    # root + party committee + branch + retirees; three members; admin + secretary
    assert (counts.organisations, counts.active_members, counts.accounts) == (4, 3, 2)


# --- operators ---------------------------------------------------------------------------------


def test_operator_lifecycle(session) -> None:  # type: ignore[no-untyped-def]
    from fivestar.accounts.passwords import verify_password
    from fivestar.accounts.sessions import start_session

    with acting_as(CLI):
        first = ops.create_operator(session, username="ops-a", display_name="运营甲", password=PASSWORD, email="a@x.cn")
        second = ops.create_operator(session, username="ops-b", display_name="运营乙", password=PASSWORD)
    session.flush()
    assert verify_password(first.password_hash, PASSWORD)
    assert [op.username for op in ops.list_operators(session)][-2:] == ["ops-a", "ops-b"]
    created = session.scalars(select(AuditEvent).where(AuditEvent.action == "operator.create")).all()
    assert len(created) == 2 and all(e.tenant_id is None and e.actor_kind == "cli" for e in created)
    assert created[0].after is not None and "password_hash" not in created[0].after

    for kwargs, field in (
        ({"username": "OPS-A"}, "username"),
        ({"username": "x"}, "username"),
        ({"display_name": " "}, "display_name"),
        ({"email": "not-an-address"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "ops-c-and-more-text"}, "password"),  # contains the user name
    ):
        values: dict[str, Any] = {"username": "ops-c", "display_name": "运营丙", "password": PASSWORD, **kwargs}
        with pytest.raises(ServiceError) as caught:
            ops.create_operator(session, **values)
        assert caught.value.field == field, kwargs

    token = start_session(session, hours=1, operator=first)
    session.flush()
    ops.reset_operator_password(session, first, "Brand-new-secret-8")
    session.flush()
    assert verify_password(first.password_hash, "Brand-new-secret-8")
    row = session.scalar(select(AuthSession).where(AuthSession.operator_id == first.id))
    assert row is not None and row.revoked_at is not None and token

    ops.deactivate_operator(session, first)
    session.flush()
    assert not first.active
    with pytest.raises(ServiceError):
        ops.deactivate_operator(session, first)
    active_others = session.scalars(select(Operator).where(Operator.active.is_(True), Operator.id != second.id)).all()
    for other in active_others:
        ops.deactivate_operator(session, other)
    with pytest.raises(ServiceError, match="最后一名"):
        ops.deactivate_operator(session, second)
    ops.activate_operator(session, first)
    session.flush()
    assert first.active
    actions = session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.object_id == str(first.id), AuditEvent.object_type == "operators")
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["operator.create", "operator.password_reset", "operator.deactivate", "operator.activate"]
    with pytest.raises(NotFoundError):
        ops.get_operator(session, "nobody")
