"""Pages outside tenants: health, language, errors, assets, headers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fivestar.tenants.services import suspend_tenant

REPO = Path(__file__).resolve().parents[2]


def test_healthz_reports_database_and_broker(client, backend: str) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "dialect": backend}
    assert body["broker"]["ok"] is True
    assert body["broker"]["transport"] == ("redis" if backend == "postgresql" else "filesystem")


def test_healthz_reports_an_unreachable_broker(app, connection) -> None:  # type: ignore[no-untyped-def]
    from fivestar.config import load_settings
    from fivestar.web.app import create_app

    settings = app.config["FIVESTAR_SETTINGS"]
    broken = load_settings(**{**settings.model_dump(), "broker_url": "redis://127.0.0.1:1/0"})
    other = create_app(broken, TESTING=True, FIVESTAR_ENGINE=app.extensions["fivestar.engine"])
    response = other.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["broker"]["ok"] is False
    assert body["database"]["ok"] is True


def test_unknown_tenant_is_404(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/t/no-such-district/").status_code == 404
    assert client.get("/t/no-such-district/login").status_code == 404


def test_suspended_tenant_shows_a_clear_page(client, session, create_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant = create_tenant(slug="paused")
    suspend_tenant(session, tenant, "合同到期")
    session.flush()
    response = client.get("/t/paused/login")
    assert response.status_code == 403
    assert "该单位已暂停使用" in response.get_data(as_text=True)


def test_chinese_by_default_and_english_on_request(client, create_tenant) -> None:  # type: ignore[no-untyped-def]
    create_tenant(slug="lang-test")
    # An English browser still gets Chinese first: only the switch (or the district) picks English.
    page = client.get("/t/lang-test/login", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert "登录" in page and 'lang="zh-CN"' in page
    response = client.post("/lang/en", data={"next": "/t/lang-test/login"})
    assert response.status_code == 302 and response.location.endswith("/t/lang-test/login")
    page = client.get("/t/lang-test/login").get_data(as_text=True)
    assert 'lang="en"' in page and "Log in" in page


def test_language_switch_does_not_redirect_off_site(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/lang/en", data={"next": "https://evil.example/"})
    assert response.status_code == 302
    assert response.location in ("/", "http://localhost/")


def test_assets_are_served_by_the_app(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/").get_data(as_text=True)
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert not re.match(r"^(https?:)?//", ref), ref
    with client.get("/static/css/fivestar.css") as response:
        assert response.status_code == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_templates_load_nothing_from_other_hosts() -> None:
    for template in (REPO / "templates").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r'(src|href)="(https?:)?//', text), template


def test_unexpected_errors_are_a_friendly_500(settings, engine) -> None:  # type: ignore[no-untyped-def]
    from fivestar.web.app import create_app

    app = create_app(settings, FIVESTAR_ENGINE=engine)

    def boom() -> str:
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/boom", "boom", boom)
    response = app.test_client().get("/boom")
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "服务器出错了" in page
    assert "secret internal detail" not in page
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_a_district_can_default_to_english(client, create_tenant) -> None:  # type: ignore[no-untyped-def]
    create_tenant(slug="english-first", locale="en")
    page = client.get("/t/english-first/login").get_data(as_text=True)
    assert 'lang="en"' in page and "Log in" in page
    client.post("/lang/zh", data={"next": "/t/english-first/login"})
    assert 'lang="zh-CN"' in client.get("/t/english-first/login").get_data(as_text=True)


def test_a_cached_asset_answers_304_without_leaking_its_file(client) -> None:  # type: ignore[no-untyped-def]
    import gc
    import warnings

    with client.get("/static/img/star.svg") as first:
        etag = first.headers["ETag"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        response = client.get("/static/img/star.svg", headers={"If-None-Match": etag})
        assert response.status_code == 304
        del response
        gc.collect()


@pytest.mark.parametrize("error", ["DeadlockDetected", "SerializationFailure"])
def test_a_database_conflict_is_a_409_asking_to_try_again(settings, engine, error: str) -> None:  # type: ignore[no-untyped-def]
    import psycopg.errors
    from sqlalchemy.exc import OperationalError

    from fivestar.web.app import create_app

    app = create_app(settings, FIVESTAR_ENGINE=engine)
    orig = getattr(psycopg.errors, error)("could not serialize access / deadlock detected")

    def conflict() -> str:
        raise OperationalError("UPDATE audit_chain_heads …", {}, orig)

    def other() -> str:
        raise OperationalError("SELECT 1", {}, psycopg.errors.UndefinedTable("no such table"))

    app.add_url_rule("/conflict", "conflict", conflict)
    app.add_url_rule("/other", "other", other)
    response = app.test_client().get("/conflict")
    assert response.status_code == 409
    assert "请重试" in response.get_data(as_text=True)
    assert app.test_client().get("/other").status_code == 500
