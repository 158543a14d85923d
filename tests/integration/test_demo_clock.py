"""The demo's fast calendar: a stored offset that moves `clock.now()` forward, only in the demo."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from fivestar.config import ConfigError, load_settings
from fivestar.timekeeping import clock


@pytest.fixture
def demo_app(settings: Any, engine: Any, connection: Any) -> Iterator[Flask]:
    from fivestar.web.app import create_app

    app = create_app(
        load_settings(**{**settings.model_dump(), "demo_clock": True}),
        TESTING=True,
        WTF_CSRF_ENABLED=False,
        FIVESTAR_ENGINE=engine,
    )
    app.extensions["fivestar.sessionmaker"].configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield app
    finally:
        clock.set_offset_source(None)


def test_the_banner_moves_the_clock_for_everyone_in_the_process(
    demo_app: Flask, create_tenant: Any, create_account: Any
) -> None:
    from fivestar.enums import Role

    tenant = create_tenant(slug="demo-clock")
    account = create_account(tenant, roles=[(Role.MEMBER, None)], username="clockuser")
    client = demo_app.test_client()
    assert (
        client.post(
            f"/t/{tenant.slug}/login", data={"username": "clockuser", "password": "correct-horse-battery"}
        ).status_code
        == 302
    )
    page = client.get(f"/t/{tenant.slug}/").get_data(as_text=True)
    assert "演示时钟" in page and "快进 1 天" in page
    before = clock.now()
    response = client.post(f"/t/{tenant.slug}/demo/clock", data={"days": "7", "next": f"/t/{tenant.slug}/"})
    assert response.status_code == 302
    assert clock.now() - before >= dt.timedelta(days=7) - dt.timedelta(minutes=1)
    assert "已快进 7 天" in client.get(f"/t/{tenant.slug}/").get_data(as_text=True)
    assert account is not None


@pytest.mark.parametrize("days", ["0", "32", "-1", "x"])
def test_only_forward_and_in_sensible_steps(
    demo_app: Flask, create_tenant: Any, create_account: Any, days: str
) -> None:
    from fivestar.enums import Role

    tenant = create_tenant(slug="demo-clock-2")
    create_account(tenant, roles=[(Role.MEMBER, None)], username="clockuser2")
    client = demo_app.test_client()
    client.post(f"/t/{tenant.slug}/login", data={"username": "clockuser2", "password": "correct-horse-battery"})
    before = clock.now()
    client.post(f"/t/{tenant.slug}/demo/clock", data={"days": days, "next": "/"})
    assert clock.now() - before < dt.timedelta(hours=1)


def test_the_demo_clock_is_absent_outside_the_demo(
    client: Any, login: Any, create_tenant: Any, create_account: Any
) -> None:
    from fivestar.enums import Role

    tenant = create_tenant(slug="no-demo")
    login(tenant, create_account(tenant, roles=[(Role.TENANT_ADMIN, None)]))
    before = clock.now()
    assert client.post(f"/t/{tenant.slug}/demo/clock", data={"days": "1"}).status_code == 404
    assert clock.now() - before < dt.timedelta(hours=1)
    assert "演示时钟" not in client.get(f"/t/{tenant.slug}/").get_data(as_text=True)


def test_production_refuses_the_demo_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "FIVESTAR_ENV": "production",
        "FIVESTAR_SECRET_KEY": "x" * 40,
        "FIVESTAR_DATABASE_URL": "postgresql://u@db/x",
        "FIVESTAR_DEMO_CLOCK": "1",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="FIVESTAR_DEMO_CLOCK"):
        load_settings()
