"""A whole member round in a real browser at 375 px, with three members.

The committee staff opens the round; three members assess themselves on their phones; the secretary
records the 党群联评 meeting, saves the joint grid and the review, and posts the public notice; a
visitor files an objection on the public page, the secretary dismisses it, the notice period ends
(the platform clock is moved forward for the server), the secretary reports; the committee member
finds the tenant's five-star list and the honour roll.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest

from fivestar.accounts.passwords import hash_password
from fivestar.enums import OrgKind, Position, Role
from fivestar.timekeeping import clock

PHONE = {"width": 375, "height": 812}
PASSWORD = "walk-the-round-2026"


@pytest.fixture
def clock_offset() -> Iterator[dict[str, dt.timedelta]]:
    """Move the server's clock (it runs in other threads, so a context-local freeze would not do)."""
    offset = {"value": dt.timedelta(0)}
    clock.set_offset_source(lambda: offset["value"])
    try:
        yield offset
    finally:
        clock.set_offset_source(None)


@pytest.fixture(scope="session")
def walk_district(live_app: tuple[Any, Any]) -> dict[str, Any]:
    """A district with one branch of three members who each have a login, plus the committee."""
    from fivestar.accounts.models import Account, RoleGrant
    from fivestar.orgs.services import create_org
    from fivestar.people.models import Member
    from fivestar.tenancy import tenant_context
    from fivestar.tenants.services import create_tenant
    from tests.conftest import SAMPLE_RULES

    app, _server = live_app
    hashed = hash_password(PASSWORD)
    with app.app_context():
        session = app.extensions["fivestar.sessionmaker"]()
        try:
            tenant = create_tenant(
                session, slug="walk-round", name="走查区直机关工委", rules_toml=SAMPLE_RULES.read_text(encoding="utf-8")
            )
            with tenant_context(tenant.id):
                from sqlalchemy import select

                from fivestar.orgs.models import Organisation

                root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
                party = create_org(session, kind=OrgKind.PARTY_COMMITTEE, parent=root, name="区审计局机关党委")
                branch = create_org(session, kind=OrgKind.BRANCH, parent=party, name="区审计局第一党支部")
                people = [
                    (
                        "吴书记",
                        "W001",
                        Position.SECRETARY,
                        "wushuji",
                        [(Role.BRANCH_SECRETARY, branch), (Role.MEMBER, None)],
                    ),
                    (
                        "郑支委",
                        "W002",
                        Position.COMMITTEE_MEMBER,
                        "zhengzhiwei",
                        [(Role.BRANCH_COMMITTEE, branch), (Role.MEMBER, None)],
                    ),
                    ("王党员", "W003", Position.MEMBER, "wangdangyuan", [(Role.MEMBER, None)]),
                ]
                for name, number, position, username, roles in people:
                    member = Member(
                        tenant_id=tenant.id,
                        branch_id=branch.id,
                        member_no=number,
                        name=name,
                        gender="male",
                        position=position,
                        joined_on=dt.date(2012, 7, 1),
                    )
                    session.add(member)
                    session.flush()
                    account = Account(
                        tenant_id=tenant.id,
                        username=username,
                        display_name=name,
                        password_hash=hashed,
                        member_id=member.id,
                    )
                    session.add(account)
                    session.flush()
                    for role, org in roles:
                        session.add(
                            RoleGrant(account_id=account.id, role=role, organisation_id=org.id if org else None)
                        )
                for username, name, role in (
                    ("gongwei", "工委干事", Role.TENANT_ADMIN),
                    ("weiyuan", "工委委员甲", Role.COMMITTEE_MEMBER),
                ):
                    account = Account(tenant_id=tenant.id, username=username, display_name=name, password_hash=hashed)
                    session.add(account)
                    session.flush()
                    session.add(RoleGrant(account_id=account.id, role=role))
            session.commit()
        finally:
            session.close()
    return {"slug": "walk-round"}


def _login(browser: Any, server: Any, slug: str, username: str) -> Any:
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{server.url}/t/{slug}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(re.compile(rf"{re.escape(server.url)}/t/{slug}/(?!login)"))
    return context, page


def _fits(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{page.url} is {overflow}px wider than a phone"


def _click(page: Any, text: str) -> None:
    page.get_by_role("button", name=text).first.click()
    page.wait_for_load_state()


def test_a_whole_member_round_on_phones(
    browser: Any, live_app: tuple[Any, Any], walk_district: dict[str, Any], clock_offset: dict[str, dt.timedelta]
) -> None:
    _app, server = live_app
    slug = walk_district["slug"]
    base = f"{server.url}/t/{slug}"

    # 1. The committee staff opens the round for the period just past.
    context, page = _login(browser, server, slug, "gongwei")
    page.goto(f"{base}/rounds/")
    _click(page, "开启评定")
    assert "已开启" in page.content() or "评定中" in page.content()
    _fits(page)
    context.close()

    # 2. Three members assess themselves on their phones and submit.
    for username, share in (("wushuji", 1), ("zhengzhiwei", 0.9), ("wangdangyuan", 0.75)):
        context, page = _login(browser, server, slug, username)
        page.goto(f"{base}/rounds/self/")
        page.get_by_role("link", name="填写自评").click()
        page.wait_for_load_state()
        _fits(page)
        for box in page.locator("input[type=number]").all():
            top = float(box.get_attribute("max") or 0)
            box.fill(str(int(top * share)))
        page.fill("textarea[name=pledge]", "按承诺参加组织生活，完成岗位任务。")
        page.fill("textarea[name=summary]", "本期学习工作情况良好。")
        _click(page, "提交")
        assert "已提交" in page.content()
        context.close()

    # 3. The secretary: joint assessment meeting and grid, review, public notice.
    context, page = _login(browser, server, slug, "wushuji")
    page.locator("#branch-rounds a").first.click()  # 本支部评定 on the home page
    page.wait_for_load_state()
    dashboard = page.url
    _click(page, "开始党群联评")
    page.goto(dashboard.rstrip("/") + "/joint")
    today = clock.now().astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    page.fill("#meeting_date", today)
    page.fill("#members_present", "3")
    page.fill("#public_present", "1")
    _click(page, "保存会议情况")
    _fits(page)
    _click(page, "保存全部联评分数")
    page.goto(dashboard)
    _click(page, "开始支部审评")
    page.goto(dashboard.rstrip("/") + "/review")
    _fits(page)
    _click(page, "保存审评结果")
    page.goto(dashboard)
    _click(page, "提交公示")
    assert "公示" in page.content()
    notice_link = page.get_by_role("link", name="公示页面").get_attribute("href")
    assert notice_link
    context.close()

    # 4. Anyone with the link reads the notice and files an objection, without logging in.
    public = browser.new_context(viewport=PHONE, locale="zh-CN")
    visitor = public.new_page()
    visitor.goto(notice_link if notice_link.startswith("http") else server.url + notice_link)
    text = visitor.content()
    assert "吴书记" in text and "王党员" in text and "五星" in text
    _fits(visitor)
    visitor.fill("textarea[name=text]", "王党员本季度有一次无故缺席组织生活，请核实。")
    _click(visitor, "提交异议")
    assert "已收到" in visitor.content() or "异议" in visitor.content()
    public.close()

    # 5. The secretary dismisses it with a reason; after the notice period, reports upward.
    context, page = _login(browser, server, slug, "wushuji")
    page.goto(dashboard)
    page.get_by_role("link", name="异议与上报").click()
    page.wait_for_load_state()
    objections = page.url
    page.get_by_role("link", name="答复").first.click()
    page.wait_for_load_state()
    page.get_by_label("不予采纳").check()
    page.fill("textarea[name=reason]", "经核实，该次缺席已事先请假，不属于无故缺席。")
    _click(page, "提交答复")
    clock_offset["value"] = dt.timedelta(days=30)  # the notice period is over
    page.goto(objections)
    _click(page, "确认上报")
    assert "已上报" in page.content()
    context.close()

    # 6. The committee member sees the tenant's five-star list and the honour roll.
    context, page = _login(browser, server, slug, "weiyuan")
    page.goto(f"{base}/rounds/")
    page.locator("a[href*='/rounds/']").filter(has_text=re.compile(r"\d{4}")).first.click()
    page.wait_for_load_state()
    five_star = page.locator(".five-star-table").inner_text()
    assert "吴书记" in five_star
    assert "王党员" not in five_star
    _fits(page)
    page.get_by_role("link", name="光荣榜").first.click()
    page.wait_for_load_state()
    assert "吴书记" in page.content()
    _fits(page)
    context.close()
