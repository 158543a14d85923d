"""Security properties of the whole app: CSRF on every POST route, security headers everywhere,
cookie flags, Argon2id parameters, and the permission matrix of `accounts/policy.py`."""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from fivestar.accounts.models import Account
from fivestar.accounts.passwords import hash_password
from fivestar.accounts.policy import Action, authorize
from fivestar.accounts.principal import Grant, Principal
from fivestar.enums import OrgKind, Role
from fivestar.models import Base
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.tenants.models import Tenant

TEST_PASSWORD = "correct-horse-battery"  # what the conftest factories set


# --- CSRF ----------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


def _concrete(rule: str, tenant_slug: str, account_id: int) -> str:
    """A real URL for a rule: the test tenant, an existing id, plausible strings elsewhere."""

    def value(match: re.Match[str]) -> str:
        converter, name = match.group("converter") or "default", match.group("name")
        if name == "tenant_slug":
            return tenant_slug
        if converter == "int":
            return str(account_id)
        if converter == "uuid":
            return str(uuid.uuid4())
        if name == "code":
            return "en"
        return "x"

    return _PLACEHOLDER.sub(value, rule)


def _row_counts(session: Session) -> dict[str, int]:
    return {
        table.name: int(session.execute(text(f'SELECT COUNT(*) FROM "{table.name}"')).scalar_one())  # noqa: S608
        for table in Base.metadata.sorted_tables
    }


def test_every_post_route_refuses_a_missing_csrf_token(
    app: Flask,
    client: FlaskClient,
    two_tenants: dict[str, Any],
    login: Any,
    session: Session,
    request: pytest.FixtureRequest,
) -> None:
    a = two_tenants["a"]
    login(a["tenant"], a["admin"])  # logged in as the administrator: the views would act if allowed
    request.getfixturevalue("csrf_enabled")
    before = _row_counts(session)
    posts = [rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or set())]
    assert len(posts) >= 10  # login, logout, password, invitation, account administration, …
    form = {
        "username": "admin",
        "password": TEST_PASSWORD,
        "display_name": "x",
        "email": "x@example.org",
        "role": "inspector",
        "organisation_id": "",
        "method": "temporary",
        "reason": "csrf",
        "new_password": "a-much-better-passphrase",
        "confirm": "a-much-better-passphrase",
        "current_password": TEST_PASSWORD,
        "name": "x",
    }
    answered = {}
    for rule in posts:
        target = _concrete(rule.rule, a["tenant"].slug, a["secretary"].id)
        response = client.post(target, data=form)
        answered[rule.endpoint] = response.status_code
        assert response.status_code == 400, (rule.rule, response.status_code, response.get_data(as_text=True)[:300])
        if "text/html" in response.content_type:
            assert "表单已过期或来源无效" in response.get_data(as_text=True)
    session.expire_all()
    assert _row_counts(session) == before  # nothing was written
    assert client.get(f"/t/{a['tenant'].slug}/").status_code == 200  # and the logout did not happen
    assert {"tenant.auth.logout", "tenant.auth.change_password", "tenant.accounts.create"} <= set(answered)


def test_a_valid_csrf_token_is_accepted(
    client: FlaskClient, two_tenants: dict[str, Any], login: Any, request: pytest.FixtureRequest
) -> None:
    a = two_tenants["a"]
    login(a["tenant"], a["admin"])
    request.getfixturevalue("csrf_enabled")
    page = client.get(f"/t/{a['tenant'].slug}/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = client.post(f"/t/{a['tenant'].slug}/logout", data={"csrf_token": token.group(1)})
    assert response.status_code == 302
    assert client.get(f"/t/{a['tenant'].slug}/").status_code == 302


# --- headers and cookies -------------------------------------------------------------------------


def _assert_security_headers(response: Any) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("X-Frame-Options") == "DENY"
    assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer", "strict-origin-when-cross-origin")


def test_security_headers_on_pages_errors_redirects_and_static_files(
    client: FlaskClient, two_tenants: dict[str, Any]
) -> None:
    slug = two_tenants["a"]["tenant"].slug
    cases = {
        "page": client.get(f"/t/{slug}/login"),
        "landing": client.get("/"),
        "redirect": client.get(f"/t/{slug}/"),
        "unknown tenant": client.get("/t/no-such-district/login"),
        "unknown page": client.get("/no/such/page"),
        "bad link": client.get(f"/t/{slug}/invite/nothing-here"),
        "wrong method": client.get(f"/t/{slug}/logout"),
        "static": client.get("/static/css/fivestar.css"),
    }
    expected = {
        "page": 200,
        "landing": 200,
        "redirect": 302,
        "unknown tenant": 404,
        "unknown page": 404,
        "bad link": 404,
        "wrong method": 405,
        "static": 200,
    }
    for name, response in cases.items():
        assert response.status_code == expected[name], name
        _assert_security_headers(response)
    assert cases["page"].headers["Cache-Control"] == "no-store"
    cases["static"].close()


def test_security_headers_on_throttled_answers(client: FlaskClient, two_tenants: dict[str, Any], settings: Any) -> None:
    slug = two_tenants["a"]["tenant"].slug
    limit = int(settings.login_limit.split()[0])
    responses = [client.post(f"/t/{slug}/login", data={"username": "admin", "password": "x"}) for _ in range(limit + 1)]
    assert responses[-1].status_code == 429
    _assert_security_headers(responses[-1])


def test_session_cookie_is_httponly_and_samesite(
    client: FlaskClient, two_tenants: dict[str, Any], login: Any, app: Flask
) -> None:
    a = two_tenants["a"]
    response = login(a["tenant"], a["admin"])
    cookies = [value for value in response.headers.getlist("Set-Cookie") if value.startswith("fivestar_session=")]
    assert cookies, response.headers
    attributes = {part.strip().split("=")[0].lower(): part for part in cookies[-1].split(";")}
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=lax"
    assert "secure" not in attributes  # plain http outside production (the test app)
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_production_cookies_are_secure_and_hsts_is_sent(
    engine: Engine, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fivestar.config import load_settings
    from fivestar.web.app import create_app

    # The test engine connects as the cluster's superuser, which production refuses
    # (tests/integration/test_db_roles.py); this test is about cookies and headers.
    monkeypatch.setattr("fivestar.dbroles.check_application_role", lambda _engine: None)

    production = load_settings(
        env="production",
        secret_key="p" * 48,
        database_url="postgresql://fivestar@127.0.0.1:5432/unused",  # never opened: the test engine is given
        data_dir=tmp_path,
    )
    app = create_app(production, TESTING=True, FIVESTAR_ENGINE=engine)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    response = app.test_client().get("/")
    assert response.status_code == 200
    cookie = next(v for v in response.headers.getlist("Set-Cookie") if v.startswith("fivestar_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    _assert_security_headers(response)


# --- passwords -----------------------------------------------------------------------------------


def _argon2_parameters(encoded: str) -> tuple[str, int, int, int]:
    match = re.fullmatch(r"\$(argon2\w+)\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[^$]+\$[^$]+", encoded)
    assert match, encoded
    return match.group(1), int(match.group(2)), int(match.group(3)), int(match.group(4))


def test_new_hashes_are_argon2id_with_asvs_parameters() -> None:
    variant, memory, time_cost, parallelism = _argon2_parameters(hash_password("a-much-better-passphrase"))
    assert variant == "argon2id" and memory >= 19456 and time_cost >= 2 and parallelism == 1


def test_a_password_set_through_the_app_is_stored_as_argon2id(
    client: FlaskClient, two_tenants: dict[str, Any], login: Any, session: Session
) -> None:
    from sqlalchemy import select

    from fivestar.tenancy import tenant_context

    a = two_tenants["a"]
    login(a["tenant"], a["secretary"])
    new = "a-much-better-passphrase"
    response = client.post(
        f"/t/{a['tenant'].slug}/password", data={"current_password": TEST_PASSWORD, "new_password": new, "confirm": new}
    )
    assert response.status_code == 302
    with tenant_context(a["tenant"].id):
        stored = session.scalar(select(Account.password_hash).where(Account.id == a["secretary"].id))
    variant, memory, time_cost, parallelism = _argon2_parameters(stored or "")
    assert variant == "argon2id" and memory >= 19456 and time_cost >= 2 and parallelism == 1


# --- the permission matrix -----------------------------------------------------------------------
#
# Tenant 1:  root /1/ ── P 机关党委 /1/2/ ── B1 /1/2/3/   (members m1 = "me", m1b)
#                    │                  └─ B2 /1/2/30/  (m2; "/1/2/3" is a string prefix of it: a trap)
#                    └─ G 党总支 /1/5/ ──── B3 /1/5/6/   (m3)
# Tenant 2:  X /9/10/ (mx), its account xa.


def _org(org_id: int, kind: OrgKind, path: str, tenant_id: int = 1) -> Organisation:
    return Organisation(id=org_id, tenant_id=tenant_id, kind=kind, name=f"org{org_id}", code=f"C{org_id}", path=path)


def _member(member_id: int, branch: Organisation) -> Member:
    member = Member(id=member_id, tenant_id=branch.tenant_id, branch_id=branch.id, member_no=f"N{member_id}", name="x")
    member.branch = branch
    return member


ORGS = {
    "root": _org(1, OrgKind.COMMITTEE, "/1/"),
    "P": _org(2, OrgKind.PARTY_COMMITTEE, "/1/2/"),
    "B1": _org(3, OrgKind.BRANCH, "/1/2/3/"),
    "B2": _org(30, OrgKind.BRANCH, "/1/2/30/"),
    "G": _org(5, OrgKind.GENERAL_BRANCH, "/1/5/"),
    "B3": _org(6, OrgKind.RETIREE_BRANCH, "/1/5/6/"),
    "X": _org(10, OrgKind.BRANCH, "/9/10/", tenant_id=2),
}
OBJECTS: dict[str, Any] = {
    "none": None,
    "tenant": Tenant(id=1, slug="one", name="一"),
    "other tenant": Tenant(id=2, slug="two", name="二"),
    **ORGS,
    "m1": _member(100, ORGS["B1"]),
    "m1b": _member(101, ORGS["B1"]),
    "m2": _member(102, ORGS["B2"]),
    "m3": _member(103, ORGS["B3"]),
    "mx": _member(110, ORGS["X"]),
    "own account": Account(id=500, tenant_id=1, username="me", display_name="me"),
    "other account": Account(id=501, tenant_id=1, username="you", display_name="you"),
    "xa": Account(id=510, tenant_id=2, username="me", display_name="me"),
}
IN_TENANT = [name for name in OBJECTS if name not in ("other tenant", "X", "mx", "xa")]
READ = {
    Action.TENANT_VIEW,
    Action.ORG_VIEW,
    Action.MEMBER_VIEW,
    Action.MEMBER_CONTACT,
    Action.RULES_VIEW,
    Action.ROUND_VIEW,
    Action.STANDING_VIEW,
    Action.OVERVIEW_VIEW,
    Action.FOLLOWUP_VIEW,
    Action.PLAN_VIEW,
}
STAFF = {
    Action.ORG_VIEW,
    Action.ORG_MANAGE,
    Action.MEMBER_VIEW,
    Action.MEMBER_CONTACT,
    Action.MEMBER_EDIT,
    Action.MEMBER_MOVE,
    Action.MEMBER_DEACTIVATE,
    Action.ROUND_VIEW,
    Action.BRANCH_FORWARD,
    Action.FOLLOWUP_VIEW,
    Action.PLAN_VIEW,
}
SECRETARY = {
    Action.ORG_VIEW,
    Action.MEMBER_VIEW,
    Action.MEMBER_CONTACT,
    Action.MEMBER_EDIT,
    Action.MEMBER_DEACTIVATE,
    Action.ROUND_VIEW,
    Action.ROUND_EVALUATE,
    Action.BRANCH_RATE,
    Action.STANDING_VIEW,
    Action.FOLLOWUP_VIEW,
    Action.PLAN_VIEW,
    Action.PLAN_EDIT,
}


def _principal(*grants: tuple[Role, str | None], member: bool = False) -> Principal:
    return Principal(
        session_token="t",
        display_name="p",
        tenant_id=1,
        account_id=500,
        member_id=100 if member else None,
        member_branch_path="/1/2/3/" if member else None,
        grants=tuple(
            Grant(role, ORGS[org].id if org else None, ORGS[org].path if org else None) for role, org in grants
        ),
    )


def _pairs(actions: set[Action], objects: list[str]) -> set[tuple[Action, str]]:
    return set(itertools.product(actions, objects))


OWN = {(Action.ACCOUNT_VIEW, "own account")}
# Any role: the tenant's home, its rules (everyone scores against them) and one's own account.
SIGNED_IN = _pairs({Action.TENANT_VIEW, Action.RULES_VIEW}, IN_TENANT) | OWN

MATRIX: dict[str, tuple[Principal, set[tuple[Action, str]]]] = {
    "tenant admin": (
        _principal((Role.TENANT_ADMIN, None)),
        # Everything in the tenant but another person's self-assessment.
        _pairs(set(Action) - {Action.PLATFORM_MANAGE, Action.SELF_ASSESS}, IN_TENANT),
    ),
    "committee member": (
        _principal((Role.COMMITTEE_MEMBER, None)),
        _pairs(READ | {Action.AUDIT_VIEW, Action.ROUND_RETURN, Action.BRANCH_DECIDE}, IN_TENANT)
        | OWN
        | _pairs({Action.STANDING_ADJUST, Action.PLAN_REVIEW}, IN_TENANT),
    ),
    "inspector": (
        _principal((Role.INSPECTOR, None)),
        _pairs(READ | {Action.AUDIT_VIEW}, IN_TENANT) | OWN,
    ),
    "org staff of P": (
        _principal((Role.ORG_STAFF, "P")),
        SIGNED_IN | _pairs(STAFF, ["P", "B1", "B2", "m1", "m1b", "m2"]),
    ),
    "secretary of B1": (
        _principal((Role.BRANCH_SECRETARY, "B1")),
        SIGNED_IN | _pairs(SECRETARY, ["B1", "m1", "m1b"]),
    ),
    "committee of retirees B3": (
        _principal((Role.BRANCH_COMMITTEE, "B3")),
        SIGNED_IN
        | _pairs(
            {
                Action.ORG_VIEW,
                Action.MEMBER_VIEW,
                Action.MEMBER_CONTACT,
                Action.ROUND_VIEW,
                Action.ROUND_EVALUATE,
                Action.BRANCH_RATE,
                Action.STANDING_VIEW,
                Action.FOLLOWUP_VIEW,
                Action.PLAN_VIEW,
                Action.PLAN_EDIT,
            },
            ["B3", "m3"],
        ),
    ),
    "member m1": (
        _principal((Role.MEMBER, None), member=True),
        # Fellow members' records, but only their own phone number.
        SIGNED_IN
        | _pairs({Action.ORG_VIEW, Action.MEMBER_VIEW}, ["B1", "m1", "m1b"])
        | {(Action.MEMBER_CONTACT, "m1")}
        | {(Action.STANDING_VIEW, "m1")},
    ),
    "secretary of B1 and of G": (
        _principal((Role.BRANCH_SECRETARY, "B1"), (Role.ORG_STAFF, "G")),
        SIGNED_IN | _pairs(SECRETARY, ["B1", "m1", "m1b"]) | _pairs(STAFF, ["G", "B3", "m3"]),
    ),
    "account without roles": (_principal(), OWN),
    "operator": (
        Principal(session_token="t", display_name="op", operator_id=1),
        _pairs({Action.PLATFORM_MANAGE}, list(OBJECTS)),
    ),
}


@pytest.mark.parametrize("who", list(MATRIX))
def test_permission_matrix(who: str) -> None:
    principal, allowed = MATRIX[who]
    wrong = []
    for action, (name, obj) in itertools.product(Action, OBJECTS.items()):
        expected = (action, name) in allowed
        if authorize(principal, action, obj) != expected:
            wrong.append(f"{action.value} on {name}: expected {'allow' if expected else 'deny'}")
    assert wrong == [], f"{who}:\n" + "\n".join(wrong)


def test_nobody_outside_a_tenant_gets_anything() -> None:
    from flask_login import AnonymousUserMixin

    for action, obj in itertools.product(Action, OBJECTS.values()):
        assert authorize(AnonymousUserMixin(), action, obj) is False
        assert authorize(None, action, obj) is False


def test_a_principal_of_another_tenant_gets_nothing_here() -> None:
    stranger = Principal(
        session_token="t",
        display_name="s",
        tenant_id=2,
        account_id=510,
        grants=(Grant(Role.TENANT_ADMIN),),
    )
    for action, name in itertools.product(Action, IN_TENANT):
        if name == "none":
            continue
        assert authorize(stranger, action, OBJECTS[name]) is False, (action, name)
