"""增星摘星 in a real browser: a committee member opens the prompt the demo left (a veto event against
a branch), records an adjustment through the confirmation step, sees it in the branch's history, and
the public star page shows the branch's current level beside the year's decision and lists the
adjustment — at 375 px (a phone), against the real app (CSRF on) on the seeded demo."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from fivestar.demo.seed import DEMO_PASSWORD, seed_demo
from fivestar.orgs.models import Organisation
from fivestar.standing import queries
from fivestar.standing.models import EventState, StandingEvent
from fivestar.tenancy import tenant_context
from fivestar.tenants.models import Tenant

PHONE = {"width": 375, "height": 812}
REASON = "经核实发生否决事项，浏览器演练摘星"


def _prompt(app: Any) -> dict[str, Any]:
    with app.app_context():
        session = app.extensions["fivestar.sessionmaker"]()
        try:
            seed_demo(session)
            session.commit()
            tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo-east"))
            assert tenant is not None
            with tenant_context(tenant.id):
                event = session.scalar(select(StandingEvent).where(StandingEvent.state == EventState.OPEN))
                assert event is not None and event.branch_id is not None
                branch = session.get(Organisation, event.branch_id)
                assert branch is not None
                current = queries.current_branch_levels(session, [branch.id]).get(branch.id)
                assert current is not None and current.level is not None
                return {
                    "slug": tenant.slug,
                    "event": event.id,
                    "branch": branch.id,
                    "name": branch.name,
                    "level": current.level,
                }
        finally:
            session.close()


def _state(app: Any, slug: str, event_id: int) -> EventState:
    with app.app_context():
        session = app.extensions["fivestar.sessionmaker"]()
        try:
            tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
            assert tenant is not None
            with tenant_context(tenant.id):
                event = session.get(StandingEvent, event_id)
                assert event is not None
                return event.state
        finally:
            session.close()


def test_the_committee_adjusts_and_the_public_page_shows_it(browser: Any, live_app: tuple[Any, Any]) -> None:
    app, server = live_app
    found = _prompt(app)
    base = f"{server.url}/t/{found['slug']}"
    to_level = found["level"] - 1 if found["level"] > 0 else 1
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    foreign: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(server.url) else foreign.append(request.url))
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        page.goto(f"{base}/login")
        page.fill("#username", "committee")
        page.fill("#password", DEMO_PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{base}/")

        # the committee's list: the open prompt, one tap to its page
        page.goto(f"{base}/standing/")
        page.click(f"a[href$='/standing/prompts/{found['event']}']")
        assert "此事项不会自动改变星级" in page.content()
        page.click("a.button.primary:has-text('调整星级')")
        page.select_option("#to_level", str(to_level))
        page.fill("#reason", REASON)
        page.fill("#meeting_name", "工委会议（浏览器演练）")
        page.fill("#meeting_date", _today(app, found["slug"]))
        page.click("button[type=submit].primary")

        # the confirmation step: nothing recorded yet
        assert "确认记录（不可撤销）" in page.content()
        assert _state(app, found["slug"], found["event"]) is EventState.OPEN
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{base}/standing/branches/{found['branch']}/")
        history = page.content()
        assert "星级调整已记录" in history and REASON in history and ("摘星" in history or "增星" in history)
        assert _state(app, found["slug"], found["event"]) is EventState.ADJUSTED
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, width

        # the public page, in a fresh browser with nobody logged in
        context.close()
        context = browser.new_context(viewport=PHONE, locale="zh-CN")
        page = context.new_page()
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(f"{base}/stars/")
        public = page.content()
        assert found["name"] in public and REASON in public and "现为" in public
        assert page.locator("#adjustments").is_visible()
        assert not foreign, foreign
        assert not errors, errors
    finally:
        context.close()


def _today(app: Any, slug: str) -> str:
    from fivestar.timekeeping import clock

    with app.app_context():
        session = app.extensions["fivestar.sessionmaker"]()
        try:
            tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
            assert tenant is not None
            return clock.today_in(tenant.timezone).isoformat()
        finally:
            session.close()
