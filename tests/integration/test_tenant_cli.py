"""`fivestar tenant …` and `fivestar operator …` against a real, migrated database (both kinds).

The commands commit, so they run against a database of their own (one per module and backend),
not the rolled-back test session; each test uses its own slugs and user names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from fivestar.accounts.models import Operator
from fivestar.audit.models import AuditEvent
from fivestar.enums import TenantStatus
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.tenants.models import RuleSetVersion, Tenant

REPO = Path(__file__).resolve().parents[2]
NOTICE_FILE = REPO / "tenants" / "notice-illustrative.toml"
SHIZHI_FILE = REPO / "tenants" / "shizhi-110.toml"
PASSWORD = "Operator-secret-42"


@pytest.fixture
def db(cli_engine: Engine) -> Iterator[Session]:
    """A session to read what the commands wrote (cross-tenant only inside the helpers below, so
    the commands themselves run with the normal tenant scoping)."""
    with Session(cli_engine) as session:
        yield session


def _counts(db: Session) -> tuple[int, int, int]:
    db.rollback()  # a new transaction sees what the commands committed
    with cross_tenant("tests count rows of every tenant"):
        return (
            int(db.scalar(select(func.count()).select_from(Tenant)) or 0),
            int(db.scalar(select(func.count()).select_from(AuditEvent)) or 0),
            int(db.scalar(select(func.count()).select_from(RuleSetVersion)) or 0),
        )


def _tenant(db: Session, slug: str) -> Tenant | None:
    db.rollback()  # a new transaction sees what the commands committed
    return db.scalar(select(Tenant).where(Tenant.slug == slug))


def _versions(db: Session, tenant: Tenant) -> list[RuleSetVersion]:
    db.rollback()  # a new transaction sees what the commands committed
    with tenant_context(tenant.id):
        return list(db.scalars(select(RuleSetVersion).order_by(RuleSetVersion.version)))


def _events(db: Session, **where: Any) -> list[AuditEvent]:
    db.rollback()
    statement = select(AuditEvent).order_by(AuditEvent.id)
    for name, value in where.items():
        statement = statement.where(getattr(AuditEvent, name) == value)
    return list(db.scalars(statement))


def _create(run: Callable[..., Result], slug: str, *extra: str) -> Result:
    return run("tenant", "create", slug, "--name", f"{slug} 区直机关工委", "--rules", str(NOTICE_FILE), *extra)


def _broken(tmp_path: Path) -> Path:
    text = NOTICE_FILE.read_text(encoding="utf-8").replace("quarterly_review = true", "quarterly_reveiw = true")
    text = text.replace('name = "区直机关“五星争创”（通知示例）"', 'name = ""')
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- tenant ------------------------------------------------------------------------------------


def test_create_records_the_cli_actor(run, db) -> None:  # type: ignore[no-untyped-def]
    result = _create(run, "cli-one", "--committee-name", "某区工委", "--locale", "en")
    assert result.exit_code == 0, result.output
    assert "已创建单位 cli-one" in result.output and "tenant created" in result.output
    tenant = _tenant(db, "cli-one")
    assert tenant is not None and tenant.locale == "en" and tenant.status is TenantStatus.ACTIVE
    assert [v.version for v in _versions(db, tenant)] == [1]
    events = _events(db, tenant_id=tenant.id)
    assert [e.action for e in events] == ["tenant.create", "org.create", "rules.version"]
    assert {(e.actor_kind, e.actor_id, e.actor_name) for e in events} == {("cli", None, "command line (tester)")}


def test_create_takes_the_zone_of_the_setting_unless_one_is_named(run, db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The notice's rule file keeps Beijing time; a district must share its rules' zone.
    monkeypatch.setenv("FIVESTAR_DEFAULT_TIMEZONE", "Asia/Urumqi")
    unnamed = _create(run, "cli-west")
    assert unnamed.exit_code == 1 and "单位时区（Asia/Urumqi）" in unnamed.output  # the setting was taken
    assert _tenant(db, "cli-west") is None
    named = _create(run, "cli-named", "--timezone", "Asia/Shanghai")
    assert named.exit_code == 0, named.output
    tenant = _tenant(db, "cli-named")
    assert tenant is not None and tenant.timezone == "Asia/Shanghai"


def test_create_refusals_print_a_reason_and_write_nothing(run, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert _create(run, "cli-dup").exit_code == 0
    before = _counts(db)

    duplicate = _create(run, "cli-dup")
    assert duplicate.exit_code == 1 and "单位代码 cli-dup 已被使用" in duplicate.output

    bad_slug = _create(run, "9-lives!")
    assert bad_slug.exit_code == 1 and "单位代码须为" in bad_slug.output

    bad_zone = _create(run, "cli-zone", "--timezone", "Mars/Olympus")
    assert bad_zone.exit_code == 1 and "未知的时区：Mars/Olympus" in bad_zone.output

    invalid = run("tenant", "create", "cli-bad", "--name", "坏规则", "--rules", str(_broken(tmp_path)))
    assert invalid.exit_code == 1
    lines = invalid.output.splitlines()
    assert any(line.startswith("branch.quarterly_reveiw: ") for line in lines)
    assert any(line.startswith("meta.name: ") for line in lines)
    assert "未做任何更改" in invalid.output

    missing = run("tenant", "create", "cli-missing", "--name", "无文件", "--rules", str(tmp_path / "nope.toml"))
    assert missing.exit_code == 1 and "无法读取文件" in missing.output

    for result in (duplicate, bad_slug, bad_zone, invalid, missing):
        assert "Traceback" not in result.output
    assert _counts(db) == before
    assert _tenant(db, "cli-bad") is None


def test_usage_errors_exit_2(run) -> None:  # type: ignore[no-untyped-def]
    assert run("tenant", "create", "cli-usage", "--name", "缺规则").exit_code == 2
    assert run("tenant", "suspend", "cli-usage").exit_code == 2  # --reason is required
    assert run("operator", "create", "someone", "--name", "某", "--password", "x").exit_code == 2  # no such option


def test_list_and_show(run, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert _create(run, "cli-list-a").exit_code == 0
    assert _create(run, "cli-list-b").exit_code == 0
    assert run("tenant", "rules", "cli-list-b", "--file", str(SHIZHI_FILE)).exit_code == 0
    assert run("tenant", "suspend", "cli-list-b", "--reason", "欠费").exit_code == 0

    listing = run("tenant", "list")
    assert listing.exit_code == 0
    header, _rule, *rows = listing.output.splitlines()
    assert "slug" in header and "members" in header and "rules" in header
    row_a = next(row for row in rows if row.startswith("cli-list-a "))
    row_b = next(row for row in rows if row.startswith("cli-list-b "))
    assert "cli-list-a 区直机关工委" in row_a and "正常 active" in row_a
    assert " v1 " in row_a and "Asia/Shanghai" in row_a
    assert "已暂停 suspended" in row_b and " v2 " in row_b and row_b.rstrip().endswith(" 0")

    shown = run("tenant", "show", "cli-list-b")
    assert shown.exit_code == 0
    expected_lines = (
        "cli-list-b 区直机关工委", "已暂停 suspended", "欠费", "组织 organisations:   1", "v2", "/t/cli-list-b/"
    )
    for expected in expected_lines:
        assert expected in shown.output, expected
    unknown = run("tenant", "show", "cli-nobody")
    assert unknown.exit_code == 1 and "没有代码为 cli-nobody 的单位" in unknown.output


def test_suspend_and_resume(run, db) -> None:  # type: ignore[no-untyped-def]
    assert _create(run, "cli-pause").exit_code == 0
    suspended = run("tenant", "suspend", "cli-pause", "--reason", "合同到期")
    assert suspended.exit_code == 0 and "已暂停单位 cli-pause" in suspended.output
    tenant = _tenant(db, "cli-pause")
    assert tenant is not None and tenant.status is TenantStatus.SUSPENDED and tenant.status_reason == "合同到期"
    event = _events(db, tenant_id=tenant.id, action="tenant.suspend")[-1]
    assert (event.actor_kind, event.actor_name, event.reason) == ("cli", "command line (tester)", "合同到期")

    twice = run("tenant", "suspend", "cli-pause", "--reason", "再次")
    assert twice.exit_code == 1 and "该单位已处于暂停状态" in twice.output
    resumed = run("tenant", "resume", "cli-pause", "--reason", "已续约")
    assert resumed.exit_code == 0 and "已恢复单位 cli-pause" in resumed.output
    tenant = _tenant(db, "cli-pause")
    assert tenant is not None and tenant.status is TenantStatus.ACTIVE
    event = _events(db, tenant_id=tenant.id, action="tenant.resume")[-1]
    assert (event.actor_kind, event.reason) == ("cli", "已续约")
    assert run("tenant", "resume", "cli-pause").exit_code == 1
    assert run("tenant", "suspend", "cli-nobody", "--reason", "x").exit_code == 1


def test_rules_versions_and_history(run, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert _create(run, "cli-rules").exit_code == 0
    tenant = _tenant(db, "cli-rules")
    assert tenant is not None
    first = _versions(db, tenant)[0]
    first_state = (first.id, first.source_toml, first.content_hash, first.created_at)

    added = run("tenant", "rules", "cli-rules", "--file", str(SHIZHI_FILE), "--note", "改用市直方案")
    assert added.exit_code == 0 and "第 2 版" in added.output
    versions = _versions(db, tenant)
    assert [v.version for v in versions] == [1, 2]
    assert (versions[0].id, versions[0].source_toml, versions[0].content_hash, versions[0].created_at) == first_state
    assert versions[1].note == "改用市直方案" and versions[1].created_by == "command line (tester)"
    event = _events(db, tenant_id=tenant.id, action="rules.version")[-1]
    assert (event.actor_kind, event.reason, event.after["version"]) == ("cli", "改用市直方案", 2)  # type: ignore[index]

    before = _counts(db)
    same = run("tenant", "rules", "cli-rules", "--file", str(SHIZHI_FILE))
    assert same.exit_code == 1 and "相同" in same.output
    invalid = run("tenant", "rules", "cli-rules", "--file", str(_broken(tmp_path)))
    assert invalid.exit_code == 1
    assert "branch.quarterly_reveiw: " in invalid.output and "meta.name: " in invalid.output
    not_utf8 = tmp_path / "gbk.toml"
    not_utf8.write_bytes(SHIZHI_FILE.read_text(encoding="utf-8").encode("gb18030"))
    assert run("tenant", "rules", "cli-rules", "--file", str(not_utf8)).exit_code == 1
    assert _counts(db) == before

    history = run("tenant", "rules-history", "cli-rules")
    assert history.exit_code == 0
    rows = history.output.splitlines()[2:]
    assert rows[0].startswith("v2 ") and "改用市直方案" in rows[0] and "command line (tester)" in rows[0]
    assert rows[1].startswith("v1 ") and "初始版本" in rows[1]


def test_environment_problems_exit_2(run, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FIVESTAR_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    unmigrated = run("tenant", "list")
    assert unmigrated.exit_code == 2 and "fivestar db upgrade" in unmigrated.output
    monkeypatch.setenv("FIVESTAR_DATABASE_URL", "mysql://nowhere/db")
    misconfigured = run("tenant", "list")
    assert misconfigured.exit_code == 2 and "FIVESTAR_DATABASE_URL" in misconfigured.output


# --- operator ----------------------------------------------------------------------------------


def test_operator_commands(run, db) -> None:  # type: ignore[no-untyped-def]
    from fivestar.accounts.passwords import verify_password

    prompted = run("operator", "create", "cli-op-a", "--name", "运营甲", "--email", "a@example.cn",
                   input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    assert "已创建运营人员 cli-op-a" in prompted.output and PASSWORD not in prompted.output
    retyped = f"{PASSWORD}\nother-one-1\n{PASSWORD}\n{PASSWORD}\n"
    mismatch = run("operator", "create", "cli-op-x", "--name", "错", input=retyped)
    assert mismatch.exit_code == 0  # asked again until both entries matched
    piped = run("operator", "create", "cli-op-b", "--name", "运营乙", "--password-stdin", input=f"{PASSWORD}\n")
    assert piped.exit_code == 0
    weak = run("operator", "create", "cli-op-c", "--name", "运营丙", "--password-stdin", input="short\n")
    assert weak.exit_code == 1 and "密码至少" in weak.output
    empty = run("operator", "create", "cli-op-d", "--name", "运营丁", "--password-stdin", input="")
    assert empty.exit_code == 1
    taken = run("operator", "create", "cli-op-a", "--name", "重复", "--password-stdin", input=f"{PASSWORD}\n")
    assert taken.exit_code == 1 and "已被使用" in taken.output

    listing = run("operator", "list")
    assert listing.exit_code == 0 and "cli-op-a" in listing.output and "a@example.cn" in listing.output
    assert PASSWORD not in listing.output

    reset = run("operator", "reset-password", "cli-op-a", "--password-stdin", input="Another-secret-43\n")
    assert reset.exit_code == 0
    db.rollback()  # a new transaction sees what the commands committed
    operator = db.scalar(select(Operator).where(Operator.username == "cli-op-a"))
    assert operator is not None and verify_password(operator.password_hash, "Another-secret-43")
    assert run("operator", "reset-password", "cli-nobody", "--password-stdin", input=f"{PASSWORD}\n").exit_code == 1

    assert run("operator", "deactivate", "cli-op-b").exit_code == 0
    assert run("operator", "deactivate", "cli-op-b").exit_code == 1
    db.rollback()  # a new transaction sees what the commands committed
    assert db.scalar(select(Operator.active).where(Operator.username == "cli-op-b")) is False
    assert run("operator", "activate", "cli-op-b").exit_code == 0

    events = [e for e in _events(db, object_type="operators") if e.object_id == str(operator.id)]
    assert [e.action for e in events] == ["operator.create", "operator.password_reset"]
    assert {(e.tenant_id, e.actor_kind, e.actor_name) for e in events} == {(None, "cli", "command line (tester)")}


def test_the_last_active_operator_stays(run, db) -> None:  # type: ignore[no-untyped-def]
    created = run("operator", "create", "cli-last", "--name", "最后", "--password-stdin", input=f"{PASSWORD}\n")
    assert created.exit_code == 0
    db.rollback()  # a new transaction sees what the commands committed
    others = db.scalars(
        select(Operator.username).where(Operator.active.is_(True), Operator.username != "cli-last")
    ).all()
    for username in others:
        assert run("operator", "deactivate", username).exit_code == 0
    last = run("operator", "deactivate", "cli-last")
    assert last.exit_code == 1 and "最后一名" in last.output
