"""Every edit form of a versioned record carries its version, and a stale save never overwrites.

The routes are not listed by hand: `edit_routes` reads the app's URL map (every POST rule whose address
or endpoint ends in `edit`), so a new edit page fails here until it has a case below — and the case runs
the same walk for every page, through the real forms:

1. the page as opened carries a hidden `version` (read from the page itself, with every other field);
2. person A saves from it: the change is stored;
3. person B saves from the same page, typing something else: 409, the form comes back with what B
   typed and the message, and nothing of B's save is stored or audited;
4. a form that sends no version at all is refused the same way (it cannot prove it is current);
5. B, having seen the message, saves again from the 409 page: now it is a deliberate overwrite and
   goes through (the page carried the current version).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.config import load_settings
from tests.robot_support import KEY

TEST_PASSWORD = "correct-horse-battery"  # what the conftest factories set
STALE = "已被他人修改"
WECOM_URL = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"
EXPORT_HOST = "report.example.gov.cn"
EXPORT_EDIT = r"/exports/(\d+)/edit"
WEBHOOK_EDIT = r"/webhooks/(\d+)/edit"


# --- reading a form from its page -----------------------------------------------------------------


class _Forms(HTMLParser):
    """The POST forms of a page: action → the values a browser would send as the page stands."""

    def __init__(self, page_path: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_path = page_path
        self.forms: dict[str, dict[str, str]] = {}
        self._form: dict[str, str] | None = None
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._form = self.forms.setdefault(a.get("action") or self.page_path, {})
        elif self._form is None or ("name" not in a and tag in ("input", "select", "textarea")):
            return
        elif tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form[a["name"]] = a.get("value", "y")
            elif kind not in ("submit", "button", "file"):
                self._form[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select, self._first_option = a["name"], None
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            if self._first_option is None:
                self._first_option = value
                self._form.setdefault(self._select, value)
            if "selected" in a:
                self._form[self._select] = value
        elif tag == "textarea":
            self._textarea = a["name"]
            self._form[self._textarea] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None and self._form is not None:
            self._form[self._textarea] += data


def form_on(client: FlaskClient, page: str, action: str) -> dict[str, str]:
    """What the form posting to `action` on `page` would send, as it stands."""
    response = client.get(page)
    assert response.status_code == 200, (page, response.status_code)
    parser = _Forms(page)
    parser.feed(response.get_data(as_text=True))
    assert action in parser.forms, f"{page} has no form posting to {action}"
    return dict(parser.forms[action])


def form_in(response: Any, action: str) -> dict[str, str]:
    """The same, from a page already answered (the 409 page of a refused save)."""
    parser = _Forms(action)
    parser.feed(response.get_data(as_text=True))
    assert action in parser.forms
    return dict(parser.forms[action])


# --- the edit routes and their cases --------------------------------------------------------------


def edit_routes(app: Flask) -> set[str]:
    """Every route that saves an edit form: POST, and its address or endpoint ends in `edit`."""
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or set())
        and (rule.rule.rstrip("/").endswith("/edit") or rule.endpoint.endswith(".edit"))
    }


@dataclass
class World:
    client: FlaskClient
    session: Session
    a: dict[str, Any]

    def url(self, path: str) -> str:
        return f"/t/{self.a['tenant'].slug}{path}"

    def created_id(self, list_path: str, pattern: str) -> int:
        """The id of the one record a list page links to (records made through their own pages)."""
        found = re.findall(pattern, self.client.get(self.url(list_path)).get_data(as_text=True))
        assert len(set(found)) == 1, found
        return int(found[0])


@dataclass(frozen=True)
class EditCase:
    """One edit page: `open(world)` makes a record and returns (the page showing the form, the address
    the form posts to); `typed` is the text field both people type into."""

    open: Callable[[World], tuple[str, str]]
    typed: str


def _org(world: World) -> tuple[str, str]:
    path = world.url(f"/orgs/{world.a['party'].id}/edit")
    return path, path


def _account(world: World) -> tuple[str, str]:
    account_id = world.a["secretary"].id
    return world.url(f"/accounts/{account_id}"), world.url(f"/accounts/{account_id}/edit")


def _member(world: World) -> tuple[str, str]:
    path = world.url(f"/people/{world.a['members'][1].id}/edit")
    return path, path


def _export_target(world: World) -> tuple[str, str]:
    made = world.client.post(
        world.url("/exports/new"),
        data={
            "name": "报市委组织部",
            "report_kind": "member_results",
            "report_format": "xlsx",
            "method": "https",
            "destination": f"https://{EXPORT_HOST}/fivestar/in",
            "secret": KEY,
            "trigger": "on_finalise",
            "active": "y",
        },
    )
    assert made.status_code == 303, made.get_data(as_text=True)[:2000]
    path = world.url(f"/exports/{world.created_id('/exports/', EXPORT_EDIT)}/edit")
    return path, path


def _webhook(world: World) -> tuple[str, str]:
    made = world.client.post(
        world.url("/webhooks/new"),
        data={
            "name": "工委通知群",
            "kind": "wecom",
            "organisation_id": "",
            "url": WECOM_URL,
            "active": "y",
        },
    )
    assert made.status_code == 302, made.get_data(as_text=True)[:2000]
    path = world.url(f"/webhooks/{world.created_id('/webhooks/', WEBHOOK_EDIT)}/edit")
    return path, path


CASES: dict[str, EditCase] = {
    "tenant.orgs.edit": EditCase(_org, typed="name"),
    "tenant.accounts.edit": EditCase(_account, typed="display_name"),
    "tenant.people.edit": EditCase(_member, typed="name"),
    "tenant.exports.edit": EditCase(_export_target, typed="name"),
    "tenant.webhooks.edit": EditCase(_webhook, typed="name"),
}
# Edit pages of a rating round: their forms carry the round record's version too, and the stale saves are
# proven where a round can be set up (the round packages' own tests, listed here).
ELSEWHERE: dict[str, str] = {
    "tenant.member_round_self_assessment.edit": "tests/rounds/test_self_assessment.py::"
    "test_a_form_opened_before_someone_elses_save_is_refused",
    "tenant.branch_rating_quarterly.edit": "tests/branch/test_quarterly.py::"
    "test_one_review_per_quarter_revised_until_the_committee_comments (a stale form)",
    "tenant.improvement.item_edit": "tests/branch/test_improvement_pages.py::"
    "test_an_item_edit_opened_before_someone_elses_save_is_a_409_that_keeps_what_was_typed",
}


def test_every_edit_route_is_walked_here_or_named(app: Flask) -> None:
    routes = edit_routes(app)
    assert {"tenant.orgs.edit", "tenant.accounts.edit", "tenant.people.edit"} <= routes  # the walk finds them
    unclassified = routes - CASES.keys() - ELSEWHERE.keys()
    assert not unclassified, f"an edit page without a stale-save case: {sorted(unclassified)}"
    assert not (CASES.keys() | ELSEWHERE.keys()) - routes, "a case for a route that no longer exists"


# --- the walk -------------------------------------------------------------------------------------


@pytest.fixture
def hosts_allowed(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Export targets may name the test's receiving host (the webhook hosts are the defaults)."""
    settings = app.config["FIVESTAR_SETTINGS"]
    monkeypatch.setitem(
        app.config, "FIVESTAR_SETTINGS", load_settings(**{**settings.model_dump(), "export_hosts": EXPORT_HOST})
    )


@pytest.fixture
def browsers(app: Flask, two_tenants: dict[str, Any]) -> Iterator[Callable[[], FlaskClient]]:
    """Independent browsers signed in as district A's administrator (two people on the same page)."""

    def signed_in() -> FlaskClient:
        browser = app.test_client()
        response = browser.post(
            f"/t/{two_tenants['a']['tenant'].slug}/login", data={"username": "admin", "password": TEST_PASSWORD}
        )
        assert response.status_code == 302
        return browser

    yield signed_in


def _audit_count(session: Session) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


@pytest.mark.parametrize("endpoint", sorted(CASES))
def test_a_stale_save_is_a_409_that_keeps_what_was_typed_and_writes_nothing(
    endpoint: str,
    browsers: Callable[[], FlaskClient],
    two_tenants: dict[str, Any],
    session: Session,
    hosts_allowed: None,
) -> None:
    case = CASES[endpoint]
    a_browser, b_browser = browsers(), browsers()
    world = World(a_browser, session, two_tenants["a"])
    page, action = case.open(world)

    opened_by_a = form_on(a_browser, page, action)
    opened_by_b = form_on(b_browser, page, action)
    assert re.fullmatch(r"[1-9]\d*", opened_by_a.get("version", "")), f"{endpoint}: the form carries no version"
    assert opened_by_a["version"] == opened_by_b["version"]

    saved = a_browser.post(action, data={**opened_by_a, case.typed: "甲先保存的"})
    assert saved.status_code in (302, 303), (endpoint, saved.status_code, saved.get_data(as_text=True)[:3000])
    after_a = form_on(a_browser, page, action)
    assert after_a[case.typed] == "甲先保存的" and after_a["version"] != opened_by_a["version"]

    events = _audit_count(session)
    stale = b_browser.post(action, data={**opened_by_b, case.typed: "乙后保存的"})
    text = stale.get_data(as_text=True)
    assert stale.status_code == 409, (endpoint, stale.status_code, text[:3000])
    assert STALE in text, endpoint
    again = form_in(stale, action)
    assert again[case.typed] == "乙后保存的", f"{endpoint}: the 409 page lost what was typed"
    assert form_on(a_browser, page, action)[case.typed] == "甲先保存的", f"{endpoint}: the stale save was stored"
    assert _audit_count(session) == events, f"{endpoint}: a refused save wrote an audit event"

    unversioned = {key: value for key, value in opened_by_b.items() if key != "version"}
    blind = b_browser.post(action, data={**unversioned, case.typed: "没有版本号"})
    assert blind.status_code == 409 and STALE in blind.get_data(as_text=True), endpoint
    assert form_on(a_browser, page, action)[case.typed] == "甲先保存的"

    deliberate = b_browser.post(action, data=again)
    assert deliberate.status_code in (302, 303), (endpoint, deliberate.get_data(as_text=True)[:3000])
    assert form_on(a_browser, page, action)[case.typed] == "乙后保存的"
