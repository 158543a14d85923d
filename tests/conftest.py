"""Test fixtures: real databases (SQLite and PostgreSQL), real brokers, factories.

Every test that asks for `session`, `app` or `client` runs once per database in
`FIVESTAR_TEST_DATABASES` (default: sqlite,postgresql). The schema comes from `alembic upgrade head`,
so the migrations are exercised; each test runs inside a transaction that is rolled back.

A service that is not reachable is skipped on a developer's laptop, but with
`FIVESTAR_REQUIRE_SERVICES=1` (set by .ci/run) a missing service fails the run instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from tests.support import service_unavailable

REPO = Path(__file__).resolve().parent.parent
SAMPLE_RULES = REPO / "tenants" / "notice-illustrative.toml"
POSTGRES_ADMIN_URL = os.environ.get(
    "FIVESTAR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("FIVESTAR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DATABASES = [
    name.strip() for name in os.environ.get("FIVESTAR_TEST_DATABASES", "sqlite,postgresql").split(",") if name.strip()
]
TEST_PASSWORD = "correct-horse-battery"
# The instance secret of the test app, fixed: services given the key directly (the ballot box seals
# with it) must agree with requests made through the app.
TEST_SECRET_KEY = "fivestar-test-secret-key-not-for-production-0123456789"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if "/tests/browser/" in path:
            item.add_marker(pytest.mark.browser)


# --- databases -----------------------------------------------------------------------------------


def _postgres_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _create_postgres_database() -> tuple[str, Callable[[], None]]:
    import psycopg

    name = f"fivestar_test_{uuid.uuid4().hex[:10]}"
    admin = POSTGRES_ADMIN_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{base}/{name}", drop


@pytest.fixture(scope="session", autouse=True)
def domain_event_receivers() -> None:
    """Connect every feature's receivers of the domain events, as each process does at start
    (`fivestar.features`): services called directly in a test react as they do behind a page."""
    from fivestar.features import connect_receivers

    connect_receivers()


@pytest.fixture(scope="session")
def fresh_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """A factory of new, empty, migrated databases (`sqlite` or `postgresql`); dropped at the end."""
    from fivestar import dbcli

    drops: list[Callable[[], None]] = []

    def make(backend: str, migrate: bool = True) -> str:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'fivestar.sqlite3'}"
        elif backend == "postgresql":
            if not _postgres_reachable():
                service_unavailable("PostgreSQL")
            url, drop = _create_postgres_database()
            drops.append(drop)
        else:
            raise ValueError(backend)
        if migrate:
            dbcli.upgrade(url)
        return url

    yield make
    for drop in drops:
        drop()


@pytest.fixture(scope="session", params=DATABASES)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, fresh_database: Callable[[str], str]) -> str:
    return fresh_database(backend)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    from fivestar.db import make_engine

    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def broker_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite runs use the embedded file-system broker; PostgreSQL runs use Redis, as in production."""
    if backend == "postgresql":
        if not _redis_reachable():
            service_unavailable("Redis")
        return REDIS_URL
    return "filesystem://"


@pytest.fixture(scope="session")
def settings(database_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from fivestar.config import load_settings

    return load_settings(
        env="test",
        database_url=database_url,
        broker_url=broker_url,
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key=TEST_SECRET_KEY,
        base_url="http://fivestar.test",
    )


@pytest.fixture(scope="session")
def app(settings: Any, engine: Engine) -> Flask:
    from fivestar.web.app import create_app

    return create_app(settings, TESTING=True, WTF_CSRF_ENABLED=False, FIVESTAR_ENGINE=engine)


@pytest.fixture
def connection(app: Flask, engine: Engine) -> Iterator[Connection]:
    """One connection in an outer transaction; everything the test and the app do is rolled back."""
    conn = engine.connect()
    outer = conn.begin()
    maker = app.extensions["fivestar.sessionmaker"]
    maker.configure(bind=conn, join_transaction_mode="create_savepoint")
    try:
        yield conn
    finally:
        maker.configure(bind=engine, join_transaction_mode="conservative_savepoint")
        outer.rollback()
        conn.close()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    from fivestar.db import make_sessionmaker

    maker = make_sessionmaker(connection.engine)
    sess = maker(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield sess
    finally:
        sess.close()


@pytest.fixture
def client(app: Flask, connection: Connection) -> Iterator[FlaskClient]:
    from fivestar.extensions import limiter

    limiter.reset()
    # Not `with app.test_client()`: that keeps the last request context (and its `g.tenant`) open,
    # which a second client in the same test would then share.
    yield app.test_client()


@pytest.fixture
def csrf_enabled(app: Flask) -> Iterator[None]:
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        yield
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


# --- factories -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def password_hash() -> str:
    from fivestar.accounts.passwords import hash_password

    return hash_password(TEST_PASSWORD)


@pytest.fixture
def create_tenant(session: Session) -> Callable[..., Any]:
    from fivestar.tenants.services import create_tenant as create

    def make(slug: str | None = None, name: str | None = None, **kwargs: Any) -> Any:
        slug = slug or f"t-{uuid.uuid4().hex[:8]}"
        tenant = create(
            session,
            slug=slug,
            name=name or f"测试区直机关工委 {slug}",
            rules_toml=kwargs.pop("rules_toml", SAMPLE_RULES.read_text(encoding="utf-8")),
            **kwargs,
        )
        session.flush()
        return tenant

    return make


def _root(session: Session, tenant: Any) -> Any:
    from sqlalchemy import select

    from fivestar.enums import OrgKind
    from fivestar.orgs.models import Organisation
    from fivestar.tenancy import tenant_context

    with tenant_context(tenant.id):
        return session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))


@pytest.fixture
def create_org(session: Session) -> Callable[..., Any]:
    """`create_org(tenant, kind="branch", parent=None, name=None)`; parent defaults to the root."""
    from fivestar.enums import OrgKind
    from fivestar.orgs.models import Organisation
    from fivestar.tenancy import tenant_context

    counter = iter(range(1, 1_000_000))

    def make(
        tenant: Any, kind: str | OrgKind = OrgKind.BRANCH, parent: Any = None, name: str | None = None, **kw: Any
    ) -> Any:
        kind = OrgKind(kind)
        parent = parent or _root(session, tenant)
        number = next(counter)
        with tenant_context(tenant.id):
            org = Organisation(
                tenant_id=tenant.id,
                parent_id=parent.id,
                kind=kind,
                name=name or f"第{number}党支部",
                code=kw.pop("code", f"O{number:05d}"),
                **kw,
            )
            session.add(org)
            session.flush()
            org.path = f"{parent.path}{org.id}/"
            session.flush()
        return org

    return make


@pytest.fixture
def create_member(session: Session) -> Callable[..., Any]:
    import datetime as dt

    from fivestar.enums import Gender
    from fivestar.people.models import Member
    from fivestar.tenancy import tenant_context

    counter = iter(range(1, 1_000_000))

    def make(tenant: Any, branch: Any, name: str | None = None, **kw: Any) -> Any:
        number = next(counter)
        with tenant_context(tenant.id):
            member = Member(
                tenant_id=tenant.id,
                branch_id=branch.id,
                member_no=kw.pop("member_no", f"M{number:06d}"),
                name=name or f"党员{number}",
                gender=kw.pop("gender", Gender.FEMALE if number % 2 else Gender.MALE),
                joined_on=kw.pop("joined_on", dt.date(2010, 7, 1)),
                phone=kw.pop("phone", f"1380000{number:04d}"),
                **kw,
            )
            session.add(member)
            session.flush()
        return member

    return make


@pytest.fixture
def create_account(session: Session, password_hash: str) -> Callable[..., Any]:
    """`create_account(tenant, roles=[(Role.X, org_or_None), …], member=None, username=None)`."""
    from fivestar.accounts.models import Account, RoleGrant
    from fivestar.tenancy import tenant_context

    counter = iter(range(1, 1_000_000))

    def make(
        tenant: Any,
        roles: list[tuple[Any, Any]] | None = None,
        member: Any = None,
        username: str | None = None,
        **kw: Any,
    ) -> Any:
        number = next(counter)
        with tenant_context(tenant.id):
            account = Account(
                tenant_id=tenant.id,
                username=username or f"user{number}",
                display_name=kw.pop("display_name", member.name if member else f"用户{number}"),
                password_hash=kw.pop("password_hash", password_hash),
                member_id=member.id if member else None,
                **kw,
            )
            session.add(account)
            session.flush()
            for role, org in roles or []:
                session.add(
                    RoleGrant(
                        tenant_id=tenant.id, account_id=account.id, role=role, organisation_id=org.id if org else None
                    )
                )
            session.flush()
            session.refresh(account)
        return account

    return make


@pytest.fixture
def create_operator(session: Session, password_hash: str) -> Callable[..., Any]:
    from fivestar.accounts.models import Operator

    def make(username: str = "operator") -> Any:
        operator = Operator(username=username, display_name="平台运营", password_hash=password_hash)
        session.add(operator)
        session.flush()
        return operator

    return make


@pytest.fixture
def login(client: FlaskClient) -> Callable[..., Any]:
    """Log `account` in through the real login form of its tenant; returns the response."""

    def do(tenant: Any, account: Any, password: str = TEST_PASSWORD) -> Any:
        response = client.post(f"/t/{tenant.slug}/login", data={"username": account.username, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return response

    return do


@pytest.fixture
def login_operator(client: FlaskClient) -> Callable[..., Any]:
    def do(operator: Any, password: str = TEST_PASSWORD) -> Any:
        response = client.post("/ops/login", data={"username": operator.username, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return response

    return do


@pytest.fixture
def two_tenants(create_tenant: Any, create_org: Any, create_member: Any, create_account: Any) -> dict[str, Any]:
    """Districts A and B with overlapping names, codes and member numbers, and an admin each."""
    from fivestar.enums import OrgKind, Role

    world: dict[str, Any] = {}
    for key in ("a", "b"):
        tenant = create_tenant(slug=f"district-{key}", name=f"区直机关工委{key.upper()}")
        party = create_org(tenant, OrgKind.PARTY_COMMITTEE, name="财政局机关党委", code="P001")
        branch = create_org(tenant, OrgKind.BRANCH, parent=party, name="第一党支部", code="B001")
        retirees = create_org(tenant, OrgKind.RETIREE_BRANCH, parent=party, name="离退休党支部", code="B002")
        members = [create_member(tenant, branch, name=f"张{i}", member_no=f"NO{i:03d}") for i in range(1, 4)]
        admin = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="admin")
        secretary = create_account(
            tenant, roles=[(Role.BRANCH_SECRETARY, branch)], member=members[0], username="secretary"
        )
        world[key] = {
            "tenant": tenant,
            "party": party,
            "branch": branch,
            "retirees": retirees,
            "members": members,
            "admin": admin,
            "secretary": secretary,
        }
    return world


def run_sql(session: Session, sql: str, **params: Any) -> Any:
    return session.execute(text(sql), params)
