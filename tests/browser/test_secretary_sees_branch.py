"""The main path in a real browser: a branch secretary logs in and sees the branch's members.

Runs in Debian's Chromium through Playwright, at desktop width and at 375 px (a phone), against
the real app (CSRF on) on a freshly migrated database seeded with the demo districts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fivestar.accounts.models import Account
from fivestar.demo.seed import DEMO_PASSWORD, seed_demo
from fivestar.enums import MemberStatus
from fivestar.people.models import Member
from fivestar.tenancy import tenant_context
from fivestar.tenants.models import Tenant

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 812}}


@pytest.fixture(scope="session")
def demo_server(live_app: tuple[Any, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """The live server with the demo seeded, and what the secretary of demo-east should see."""
    app, server = live_app
    with app.app_context():
        session = app.extensions["fivestar.sessionmaker"]()
        try:
            seed_demo(session)
            session.commit()
            tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo-east"))
            assert tenant is not None
            with tenant_context(tenant.id):
                secretary = session.scalar(select(Account).where(Account.username == "secretary"))
                assert secretary is not None and secretary.member_id is not None
                branch_id = session.scalar(select(Member.branch_id).where(Member.id == secretary.member_id))
                names = list(
                    session.scalars(
                        select(Member.name).where(Member.branch_id == branch_id, Member.status == MemberStatus.ACTIVE)
                    )
                )
                others = list(
                    session.scalars(select(Member.name).where(Member.branch_id != branch_id).limit(400))
                )
        finally:
            session.close()
    outsiders = sorted(set(others) - set(names))
    return app, server, {"slug": tenant.slug, "members": names, "outsiders": outsiders}


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_secretary_logs_in_and_sees_the_branch(
    browser: Any, demo_server: tuple[Any, Any, dict[str, Any]], viewport: str, tmp_path: Path
) -> None:
    _app, server, expected = demo_server
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="zh-CN")
    page = context.new_page()
    foreign: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(server.url) else foreign.append(request.url))
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        page.goto(f"{server.url}/t/{expected['slug']}/")
        assert page.url.startswith(f"{server.url}/t/{expected['slug']}/login")
        page.fill("#username", "secretary")
        page.fill("#password", DEMO_PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{server.url}/t/{expected['slug']}/")

        section = page.locator("#my-branch")
        assert section.is_visible()
        text = section.inner_text()
        assert "本支部党员" in text
        for name in expected["members"]:
            assert name in text, name
        # Only the own branch is listed there.
        assert not [name for name in expected["outsiders"] if name in text]
        # Phone numbers of the branch are visible to its secretary.
        assert section.locator("a[href^='tel:']").count() > 0

        # Comfortable on a phone: nothing wider than the screen but the scrollable table.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"page is {overflow}px wider than the viewport"
        page.screenshot(path=str(tmp_path / f"secretary-{viewport}.png"), full_page=True)

        # One click to the branch page shows the same members.
        section.locator("p.muted a").first.click()
        page.wait_for_load_state()
        assert "/orgs/" in page.url
        for name in expected["members"][:5]:
            assert page.get_by_text(name, exact=True).first.is_visible()

        # Logging out really ends the session.
        page.locator("form[action$='/logout'] button").click()
        page.wait_for_url(f"{server.url}/t/{expected['slug']}/login")
        page.goto(f"{server.url}/t/{expected['slug']}/")
        assert "/login" in page.url
    finally:
        context.close()
    assert foreign == [], f"the page loaded assets from other hosts: {foreign}"
    assert errors == []
