"""Tenant isolation of the session cookie: logged in at district A, the same cookie under district B's
slug is worth nothing — every GET route of B answers exactly what a visitor without a cookie gets.
(The walk of every route with B's ids under A's slug: test_isolation_walk.py.)
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fivestar.tenancy import cross_tenant
from tests.web.isolation_support import B_OBJECTS, PARAM_KINDS, build_url, object_params, response_text, tenant_rules
from tests.web.isolation_world_support import make_districts


@pytest.fixture
def districts(two_tenants: dict[str, Any], session: Session) -> dict[str, Any]:
    """two_tenants, B made distinctive and given one object of every kind (isolation_world_support)."""
    return make_districts(two_tenants, session)


def test_a_cookie_of_district_a_is_worth_nothing_under_district_b(
    app: Flask, client: FlaskClient, login: Any, session: Session, districts: dict[str, Any]
) -> None:
    """Under B's slug, A's logged-in cookie gets exactly what a visitor without any cookie gets:
    the login redirect for B (or a 404), and on B's public pages (login, an invitation link) the
    same page as anyone — never a logged-in view of B."""
    a, b = districts["a"], districts["b"]
    login(a["tenant"], a["admin"])
    assert client.get(f"/t/{a['tenant'].slug}/").status_code == 200  # logged in at home
    with cross_tenant("the isolation test reads district B to attack it"):
        b_values = {kind: loader(session, b) for kind, loader in B_OBJECTS.items()}
    urls = []
    for rule in tenant_rules(app):
        params = object_params(rule)
        if any(name not in PARAM_KINDS for name in params) or "GET" not in (rule.methods or set()):
            continue
        values: dict[str, Any] = {"tenant_slug": b["tenant"].slug}
        values.update({name: b_values[PARAM_KINDS[name]][0] for name in params})
        urls.append(build_url(rule, values))

    def visit() -> dict[str, tuple[int, str | None, str]]:
        seen = {}
        for url in urls:
            response = client.get(url)
            seen[url] = (response.status_code, response.headers.get("Location"), response_text(response))
        return seen

    with_cookie = visit()
    # A is still logged in at A: visiting B changed nothing about that
    assert client.get(f"/t/{a['tenant'].slug}/").status_code == 200
    client.delete_cookie(app.config["SESSION_COOKIE_NAME"])
    assert client.get(f"/t/{a['tenant'].slug}/").status_code == 302  # now really nobody
    without = visit()

    login_path = f"/t/{b['tenant'].slug}/login"
    redirected = 0
    for url in urls:
        status, location, body = with_cookie[url]
        assert (status, location) == without[url][:2], (url, status, without[url][0])
        assert a["admin"].display_name not in body, url
        assert f'action="{b["tenant"].slug}/logout"' not in body and 'action="/t/district-b/logout"' not in body, url
        if status == 302:
            assert location is not None and location.startswith(login_path), (url, location)
            redirected += 1
        else:
            assert status in (200, 404), (url, status)
    assert redirected >= 10  # home, orgs and people pages at least
