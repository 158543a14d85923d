"""Tenant isolation, proven by walking every tenant route (CONTRIBUTING.md "Tenancy").

Logged in as district A's tenant administrator (the most powerful tenant role), every route whose
endpoint starts with `tenant.` is requested under A's slug with the ids of district B's objects:
each GET and POST (and any other method it accepts) must answer 404, and no row of B may change.
Routes without object parameters must not show B's data. This module also checks that the walk can
fail: every route parameter is mapped to one of B's objects, the routes it was written against exist,
and the snapshot of B's rows notices a change. (A's cookie under B's slug: test_isolation_cookie.py.)

New routes are covered automatically. A route whose URL parameter is not in `PARAM_KINDS`
(tests/web/isolation_support.py) fails `test_every_tenant_route_parameter_is_mapped` until someone
says which of B's objects to use for it — add the parameter name to `PARAM_KINDS` (and, for a new kind
of object, a loader to `B_OBJECTS` and its builder to tests/web/isolation_world_support.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.accounts.models import Account
from fivestar.audit.models import AuditEvent
from fivestar.people.models import Member
from fivestar.tenancy import cross_tenant, tenant_context
from tests.web.isolation_support import (
    B_OBJECTS,
    NOT_POSTED,
    PARAM_KINDS,
    WALKED_METHODS,
    build_url,
    form_data,
    object_params,
    response_text,
    snapshot_b,
    tenant_rules,
)
from tests.web.isolation_world_support import distinctive_b_names, make_districts


@pytest.fixture
def districts(two_tenants: dict[str, Any], session: Session) -> dict[str, Any]:
    """two_tenants, B made distinctive and given one object of every kind (isolation_world_support)."""
    return make_districts(two_tenants, session)


def test_every_tenant_route_parameter_is_mapped(app: Flask) -> None:
    """Fails for a new route whose parameter nobody mapped to one of B's objects yet."""
    unmapped = {
        f"{rule.endpoint} {rule.rule}: <{name}>"
        for rule in tenant_rules(app)
        for name in object_params(rule)
        if name not in PARAM_KINDS or PARAM_KINDS[name] not in B_OBJECTS
    }
    assert not unmapped, (
        "tenant routes with URL parameters the isolation walk cannot fill; add them to PARAM_KINDS "
        "(and a loader to B_OBJECTS for a new kind) in tests/web/isolation_support.py:\n" + "\n".join(sorted(unmapped))
    )


def test_walk_every_tenant_route_with_district_bs_ids(
    app: Flask, client: FlaskClient, login: Any, session: Session, districts: dict[str, Any]
) -> None:
    a, b = districts["a"], districts["b"]
    login(a["tenant"], a["admin"])
    with cross_tenant("the isolation test reads district B to attack it"):
        b_values = {kind: loader(session, b) for kind, loader in B_OBJECTS.items()}
    for kind, values in b_values.items():
        assert values, f"district B has no {kind} to walk with"
    before = snapshot_b(session, b["tenant"].id)
    b_audit_before = before[AuditEvent.__tablename__]
    form = form_data(b)
    names = distinctive_b_names(b)

    failures: list[str] = []
    walked: list[str] = []
    for rule in tenant_rules(app):
        params = object_params(rule)
        if any(name not in PARAM_KINDS for name in params):
            continue  # reported by test_every_tenant_route_parameter_is_mapped
        methods = [method for method in WALKED_METHODS if method in (rule.methods or set())]
        if not params:
            # No object in the address: the page must not show B, and a form posted with B's ids
            # in its fields (a branch of B for a new member, …) must not write to B.
            url = build_url(rule, {"tenant_slug": a["tenant"].slug})
            for method in methods:
                if method != "GET" and rule.endpoint in NOT_POSTED:
                    continue
                response = client.open(url, method=method, data=form if method != "GET" else None)
                walked.append(f"{method} {url}")
                if response.status_code >= 500:
                    failures.append(f"{method} {url}: {response.status_code}")
                leaked = [name for name in names if name in response_text(response)]
                if leaked:
                    failures.append(f"{method} {url} shows district B's {leaked}")
            continue
        rounds = max(len(b_values[PARAM_KINDS[name]]) for name in params)
        for index in range(rounds):
            values: dict[str, Any] = {"tenant_slug": a["tenant"].slug}
            for name in params:
                candidates = b_values[PARAM_KINDS[name]]
                values[name] = candidates[index % len(candidates)]
            url = build_url(rule, values)
            for method in methods:
                response = client.open(url, method=method, data=form if method != "GET" else None)
                walked.append(f"{method} {url}")
                if response.status_code != 404:
                    failures.append(f"{method} {url} ({rule.endpoint}): {response.status_code}, expected 404")
                body = response_text(response)
                leaked = [name for name in names if name in body]
                if leaked:
                    failures.append(f"{method} {url} shows district B's {leaked}")

    assert walked, "no tenant route was walked"
    assert not failures, "\n".join(failures)
    # Control: with A's own objects the same GET routes answer (so the 404s above come from the
    # tenant boundary, not from a wrong URL).
    a_values = {"org": [a["branch"].id], "member": [a["members"][0].id], "account": [a["admin"].id]}
    controlled = 0
    for rule in tenant_rules(app):
        params = object_params(rule)
        if not params or "GET" not in (rule.methods or set()):
            continue
        if not all(PARAM_KINDS.get(name) in a_values for name in params):
            continue
        url = build_url(rule, {"tenant_slug": a["tenant"].slug, **{n: a_values[PARAM_KINDS[n]][0] for n in params}})
        response = client.get(url)
        assert response.status_code in (200, 302), (url, response.status_code)
        controlled += 1
    assert controlled >= 8
    session.expire_all()
    after = snapshot_b(session, b["tenant"].id)
    assert after[AuditEvent.__tablename__] == b_audit_before, "an audit event was written for district B"
    changed = sorted(name for name in before if before[name] != after.get(name))
    assert not changed, f"district B's rows changed in: {changed}"
    # the walk covered at least the routes this module was written against
    endpoints = {rule.endpoint for rule in tenant_rules(app)}
    assert {"tenant.orgs.detail", "tenant.people.edit", "tenant.orgs.move"} <= endpoints


def test_tenant_routes_known_when_this_walk_was_written(app: Flask) -> None:
    """A readable inventory (kept small on purpose): the walk itself covers every route."""
    endpoints = {rule.endpoint for rule in tenant_rules(app)}
    for endpoint in (
        "tenant.home.index",
        "tenant.auth.login",
        "tenant.auth.logout",
        "tenant.orgs.index",
        "tenant.orgs.detail",
        "tenant.orgs.create",
        "tenant.orgs.edit",
        "tenant.orgs.move",
        "tenant.orgs.deactivate",
        "tenant.orgs.reactivate",
        "tenant.people.index",
        "tenant.people.detail",
        "tenant.people.create",
        "tenant.people.edit",
        "tenant.people.move",
        "tenant.people.deactivate",
        "tenant.people.reactivate",
    ):
        assert endpoint in endpoints, endpoint


def test_the_snapshot_would_notice_a_change(session: Session, districts: dict[str, Any]) -> None:
    """The walk's "nothing changed" check can fail: a write to B shows in the snapshot."""
    b = districts["b"]
    before = snapshot_b(session, b["tenant"].id)
    with tenant_context(b["tenant"].id):
        member = session.scalar(select(Member).where(Member.id == b["members"][0].id))
        assert member is not None
        member.phone = "13999999999"
        account = session.scalar(select(Account).where(Account.id == b["admin"].id))
        assert account is not None
        session.flush()
    after = snapshot_b(session, b["tenant"].id)
    assert before["members"] != after["members"] and before["accounts"] == after["accounts"]
