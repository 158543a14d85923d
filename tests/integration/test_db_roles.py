"""PostgreSQL's two roles: the owner migrates and grants; the application role does ordinary work
but cannot rewrite the audit trail (not even by lifting its triggers), and production refuses to
start on a role that could. PostgreSQL only by nature (SQLite has no roles)."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from fivestar.audit.chain import verify_chain
from fivestar.audit.models import AuditEvent
from fivestar.db import make_engine
from fivestar.dbroles import SPECIAL_PRIVILEGES, RoleError, check_application_role, privileges_for, refusals
from fivestar.tenancy import tenant_context
from tests.support import application_role

REPO = Path(__file__).resolve().parents[2]
RULES = (REPO / "tenants" / "notice-illustrative.toml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def owner_url(fresh_database: Callable[..., str]) -> str:
    return fresh_database("postgresql", False)  # empty: `fivestar db upgrade` migrates it below


@pytest.fixture(scope="module")
def roles(owner_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Migrate as the owner through `fivestar db upgrade`, which grants the application role."""
    from fivestar.cli import main

    with application_role(owner_url) as (role, app_url):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("FIVESTAR_ENV", "test")
            patch.setenv("FIVESTAR_DATA_DIR", str(tmp_path_factory.mktemp("data")))
            patch.setenv("FIVESTAR_DATABASE_URL", app_url)
            patch.setenv("FIVESTAR_MIGRATION_DATABASE_URL", owner_url)
            result = CliRunner().invoke(main, ["db", "upgrade"], catch_exceptions=False)
            assert result.exit_code == 0, result.output
            assert f"granted the application role {role}" in result.output
            again = CliRunner().invoke(main, ["db", "upgrade"], catch_exceptions=False)  # idempotent
            assert again.exit_code == 0, again.output
        yield role, app_url


@pytest.fixture
def app_engine(roles: tuple[str, str]) -> Iterator[Engine]:
    engine = make_engine(roles[1])
    yield engine
    engine.dispose()


def _work_as_the_application(engine: Engine) -> int:
    """Ordinary work through the services: a district, a branch, two members (each writes events)."""
    from fivestar.enums import OrgKind
    from fivestar.orgs.models import Organisation
    from fivestar.orgs.services import create_org
    from fivestar.people.services import MemberInput, create_member
    from fivestar.tenants.services import create_tenant

    slug = f"roles-{uuid.uuid4().hex[:8]}"
    with Session(engine) as session:
        tenant = create_tenant(session, slug=slug, name=f"角色测试 {slug}", rules_toml=RULES)
        session.flush()
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            assert root is not None
            branch = create_org(session, kind=OrgKind.BRANCH, parent=root, name="第一党支部")
            for number in (1, 2):
                create_member(session, branch, MemberInput(
                    name=f"党员{number}", gender="女", member_no=f"R{number:03d}", joined_on=dt.date(2010, 7, 1)))
        session.commit()
        return int(tenant.id)


def test_the_application_role_does_ordinary_work_and_writes_the_audit_chain(app_engine: Engine) -> None:
    tenant_id = _work_as_the_application(app_engine)
    with app_engine.connect() as connection:
        count = connection.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.tenant_id == tenant_id)).scalar_one()
        assert count >= 5
        assert verify_chain(connection, tenant_id).intact
        assert refusals(connection) == []
    check_application_role(app_engine)  # production would start


def test_the_application_role_casts_and_closes_a_ballot(app_engine: Engine) -> None:
    """Closing empties the ballot box with TRUNCATE: the one privilege beyond DML the role holds."""
    from fivestar.db import make_sessionmaker
    from tests.branch.ballot_support import cast_committed, close_committed, seed_meeting

    maker = make_sessionmaker(app_engine)
    tenant_id, codes = seed_meeting(maker, members=3, slug=f"roles-ballot-{uuid.uuid4().hex[:8]}")
    for index, code in enumerate(codes):
        cast_committed(maker, tenant_id, code, {"level": str(index + 2)})
    assert close_committed(maker, tenant_id) == {"members": 3, "public": 0, "deputies": 0}
    with app_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM ballot_box")).scalar_one() == 0
        levels = connection.execute(
            text("SELECT level FROM ballots WHERE tenant_id = :t ORDER BY level"), {"t": tenant_id}
        ).scalars().all()
        assert levels == [2, 3, 4]
        assert verify_chain(connection, tenant_id).intact


@pytest.mark.parametrize("statement", [
    "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update",
    "DROP TRIGGER audit_events_no_update ON audit_events",
    "UPDATE audit_events SET actor_name = 'someone else'",
    "DELETE FROM audit_events",
    "TRUNCATE audit_events",
    "DELETE FROM audit_chain_heads",
    "DROP TABLE audit_events",
    "TRUNCATE ballots",  # TRUNCATE is granted on the ballot box alone
    "TRUNCATE ballot_codes",
])
def test_the_application_role_cannot_rewrite_history(app_engine: Engine, statement: str) -> None:
    _work_as_the_application(app_engine)  # there is history to rewrite
    with app_engine.connect() as connection, pytest.raises(DBAPIError) as refused:
        connection.execute(text(statement))
    message = str(refused.value.orig)
    assert "must be owner" in message or "permission denied" in message, message


def test_production_refuses_to_start_as_the_owner(owner_url: str, roles: tuple[str, str], tmp_path: Path) -> None:
    from fivestar.config import load_settings
    from fivestar.web.app import create_app

    owner = make_engine(owner_url)
    try:
        with owner.connect() as connection:
            problems = refusals(connection)
        assert any("owns" in problem for problem in problems) and any("audit_events" in p for p in problems)
        production = load_settings(env="production", secret_key=secrets.token_urlsafe(40), database_url=owner_url,
                                   data_dir=tmp_path)
        with pytest.raises(RoleError, match="FIVESTAR_MIGRATION_DATABASE_URL"):
            create_app(production, FIVESTAR_ENGINE=owner)
    finally:
        owner.dispose()
    # the application role starts
    app = make_engine(roles[1])
    try:
        production = load_settings(env="production", secret_key=secrets.token_urlsafe(40), database_url=roles[1],
                                   data_dir=tmp_path)
        assert create_app(production, FIVESTAR_ENGINE=app).config["FIVESTAR_SETTINGS"].is_production
    finally:
        app.dispose()


def test_production_refuses_a_role_granted_update_on_the_audit_trail(owner_url: str, roles: tuple[str, str]) -> None:
    role, app_url = roles
    owner = make_engine(owner_url)
    app = make_engine(app_url)
    try:
        with owner.begin() as connection:
            connection.execute(text(f'GRANT UPDATE ON audit_events TO "{role}"'))
        with pytest.raises(RoleError, match="UPDATE on audit_events"):
            check_application_role(app)
    finally:
        from fivestar import dbcli

        dbcli.grant(owner_url, role)  # and granting again takes it back
        check_application_role(app)
        owner.dispose()
        app.dispose()


def test_the_privilege_map_has_a_default_and_the_special_tables() -> None:
    assert privileges_for("members") == ("SELECT", "INSERT", "UPDATE", "DELETE")
    assert privileges_for("audit_events") == ("SELECT", "INSERT")
    assert "TRUNCATE" in privileges_for("ballot_box") and "ballot_box" in SPECIAL_PRIVILEGES
    assert "DELETE" not in privileges_for("audit_chain_heads")


def test_roles_are_postgresql_only(fresh_database: Callable[..., str]) -> None:
    """On SQLite there is nothing to check or grant: file permissions are its only wall."""
    engine = make_engine(fresh_database("sqlite"))
    try:
        with engine.connect() as connection:
            assert refusals(connection) == []
    finally:
        engine.dispose()
