"""A work-list item done from the home page, on a phone: a member whose self-assessment is due finds
it on their home page, taps it, submits the self-assessment, comes back home and the item is gone."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from fivestar.accounts.passwords import hash_password
from fivestar.enums import OrgKind, Position, Role

PHONE = {"width": 375, "height": 812}
PASSWORD = "walk-the-home-2026"


@pytest.fixture(scope="session")
def home_district(live_app: tuple[Any, Any]) -> dict[str, Any]:
    """A district with one branch, a member with a login, and the member round open."""
    from sqlalchemy import select

    from fivestar.accounts.models import Account, RoleGrant
    from fivestar.member_rounds.opening import open_round
    from fivestar.orgs.models import Organisation
    from fivestar.orgs.services import create_org
    from fivestar.people.models import Member
    from fivestar.tenancy import tenant_context
    from fivestar.tenants.services import create_tenant
    from tests.conftest import SAMPLE_RULES

    app, _server = live_app
    with app.app_context():
        session = app.extensions["fivestar.sessionmaker"]()
        try:
            tenant = create_tenant(
                session, slug="walk-home", name="待办走查工委", rules_toml=SAMPLE_RULES.read_text(encoding="utf-8")
            )
            with tenant_context(tenant.id):
                root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
                branch = create_org(session, kind=OrgKind.BRANCH, parent=root, name="区统计局党支部")
                member = Member(
                    tenant_id=tenant.id,
                    branch_id=branch.id,
                    member_no="H001",
                    name="冯党员",
                    gender="female",
                    position=Position.MEMBER,
                    joined_on=dt.date(2015, 7, 1),
                )
                session.add(member)
                session.flush()
                account = Account(
                    tenant_id=tenant.id,
                    username="fengdangyuan",
                    display_name="冯党员",
                    password_hash=hash_password(PASSWORD),
                    member_id=member.id,
                )
                session.add(account)
                session.flush()
                session.add(RoleGrant(account_id=account.id, role=Role.MEMBER))
                open_round(session, tenant)
            session.commit()
        finally:
            session.close()
    return {"slug": "walk-home"}


def _fits(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{page.url} is {overflow}px wider than a phone"


def test_a_member_does_their_self_assessment_from_the_home_page(
    browser: Any, live_app: tuple[Any, Any], home_district: dict[str, Any]
) -> None:
    _app, server = live_app
    base = f"{server.url}/t/{home_district['slug']}"
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{base}/login")
        page.fill("#username", "fengdangyuan")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url(re.compile(rf"{re.escape(base)}/$"))

        # The home page is the work list: the self-assessment is there, with its deadline.
        item = page.locator('#worklist [data-kind="member_round.self_assessment"]')
        assert item.count() == 1
        assert "截止" in item.inner_text()
        _fits(page)
        item.locator("a").first.click()  # one tap
        page.wait_for_load_state()
        assert re.search(r"/rounds/self/\d+$", page.url)
        _fits(page)

        for box in page.locator("input[type=number]").all():
            box.fill(str(int(float(box.get_attribute("max") or 0) * 0.8)))
        page.fill("textarea[name=pledge]", "按时参加组织生活，完成承诺事项。")
        page.fill("textarea[name=summary]", "本期学习和工作情况良好。")
        page.get_by_role("button", name="提交").first.click()
        page.wait_for_load_state()
        assert "已提交" in page.content()

        # Back home: the item is gone and the page says there is nothing to do.
        page.goto(f"{base}/")
        assert page.locator('#worklist [data-kind="member_round.self_assessment"]').count() == 0
        assert page.locator("#worklist-empty").inner_text() == "目前没有待办事项"
        _fits(page)
    finally:
        context.close()
