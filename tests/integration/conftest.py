"""Fixtures for tests of `fivestar …` commands, and for the export sweep's tests.

Commands open their own connections and commit, so they run against a migrated database of their
own (one per test module and backend) instead of the rolled-back test session.

The export sweep's tests (test_export_targets/planning/transports/failures.py) share a district,
sessions on the test's connection, recorded broker messages, the settings that allow loopback
destinations and a loopback HTTPS receiver; their builders are in export_sweep_support.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from fivestar.enums import Role
from tests.export_support import LoopbackReceiver


@pytest.fixture(scope="module")
def cli_url(backend: str, fresh_database: Callable[[str], str]) -> str:
    return fresh_database(backend)


@pytest.fixture(scope="module")
def cli_engine(cli_url: str) -> Iterator[Engine]:
    from fivestar.db import make_engine

    engine = make_engine(cli_url)
    yield engine
    engine.dispose()


@pytest.fixture
def run(cli_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Result]:
    """Invoke `fivestar ARGS…` with the settings pointing at this module's database."""
    from fivestar.cli import main

    monkeypatch.setenv("FIVESTAR_DATABASE_URL", cli_url)
    monkeypatch.setenv("FIVESTAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FIVESTAR_ENV", "test")
    monkeypatch.setenv("FIVESTAR_BASE_URL", "https://fivestar.example.gov.cn")
    monkeypatch.setattr("fivestar.tenants.cli.getpass.getuser", lambda: "tester")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


# --- the export sweep's tests (test_export_*.py; builders in export_sweep_support.py) ---------------


@pytest.fixture
def factory(app: Flask, connection: Any) -> Callable[[], Session]:
    """Sessions on the test's connection: what the sweep commits is rolled back with the test."""
    maker: Callable[[], Session] = app.extensions["fivestar.sessionmaker"]
    return maker


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], str]]:
    """Broker messages (sent after commit) recorded instead of sent."""
    import fivestar.broker

    sent: list[tuple[str, tuple[Any, ...], str]] = []

    def record(_settings: Any, task_name: str, *args: Any, queue: str = "default") -> None:
        sent.append((task_name, args, queue))

    monkeypatch.setattr(fivestar.broker, "enqueue", record)
    return sent


@pytest.fixture
def xsettings(settings: Any) -> Any:
    """The test settings with 127.0.0.1 allowed for exports (the loopback receivers)."""
    return settings.model_copy(update={"export_hosts": "127.0.0.1"})


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    with LoopbackReceiver() as running:
        yield running


@pytest.fixture
def district(create_tenant: Any, create_org: Any, create_member: Any, create_account: Any) -> dict[str, Any]:
    """A district with a branch of three members, two active administrators (one with an e-mail
    address), one switched-off administrator and a secretary."""
    tenant = create_tenant(slug=f"up-{secrets.token_hex(3)}")
    branch = create_org(tenant, name="上报测试党支部")
    members = [create_member(tenant, branch) for _ in range(3)]
    admin = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="admin", email="admin@example.gov.cn")
    second = create_account(tenant, roles=[(Role.TENANT_ADMIN, None)], username="admin2")
    gone = create_account(
        tenant, roles=[(Role.TENANT_ADMIN, None)], username="old-admin", active=False, email="old@example.gov.cn"
    )
    secretary = create_account(
        tenant,
        roles=[(Role.BRANCH_SECRETARY, branch)],
        member=members[0],
        username="secretary",
        email="secretary@example.gov.cn",
    )
    return {"tenant": tenant, "branch": branch, "admin": admin, "second": second, "gone": gone, "secretary": secretary}
