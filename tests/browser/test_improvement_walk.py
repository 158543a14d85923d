"""整改提升 in a real browser at 375 px, CSRF on and the page's CSP in force: the secretary completes
the plan made after 定星 and publishes it behind its confirmation page; the committee records the
acceptance review (findings, outcome, a confirmation step); next year's dossier for 定星 shows it;
the public reads the published plan without logging in."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from fivestar.accounts.models import Account, RoleGrant
from fivestar.accounts.passwords import hash_password
from fivestar.branch_rounds.models import BranchRating
from fivestar.branch_rounds.opening import open_branch_round
from fivestar.enums import OrgKind, Role
from fivestar.improvement import services
from fivestar.orgs.models import Organisation
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import create_tenant
from fivestar.timekeeping import clock
from tests.branch.publication_support import ONE_TOTALS, Decided, build_round
from tests.conftest import SAMPLE_RULES, TEST_PASSWORD

SLUG = "live-improve"


def _district(app: Any) -> tuple[int, int]:
    """A district of its own: 2024 finalised (the branch decided 四星, its plan made), 2025 open.
    Returns the plan's id and the 2025 rating's id."""
    session = app.extensions["fivestar.sessionmaker"]()
    try:
        tenant = create_tenant(session, slug=SLUG, name="整改演示工委", rules_toml=SAMPLE_RULES.read_text("utf-8"))
        session.flush()
        with tenant_context(tenant.id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            assert root is not None
            branch = Organisation(parent_id=root.id, kind=OrgKind.BRANCH, name="第一党支部", code="B01")
            session.add(branch)
            session.flush()
            branch.path = f"{root.path}{branch.id}/"
            for username, role, org in (
                ("shuji", Role.BRANCH_SECRETARY, branch),
                ("weiyuan", Role.COMMITTEE_MEMBER, None),
            ):
                account = Account(username=username, display_name=username, password_hash=hash_password(TEST_PASSWORD))
                session.add(account)
                session.flush()
                session.add(
                    RoleGrant(account_id=account.id, role=role, organisation_id=org.id if org is not None else None)
                )
            session.flush()
            finished, _ratings = build_round(session, tenant, year=2024, decisions=[Decided(branch, 4, ONE_TOTALS)])
            [plan] = services.create_plans_for_round(session, finished)
            today = clock.today_in(tenant.timezone)
            running = open_branch_round(
                session,
                tenant,
                year=2025,
                self_report_due=today + dt.timedelta(days=30),
                committee_due=today + dt.timedelta(days=60),
            ).round
            session.flush()
            rating_id = session.scalar(select(BranchRating.id).where(BranchRating.round_id == running.id))
            session.commit()
            return plan.id, int(rating_id or 0)
    finally:
        session.close()


def _login(context: Any, server: Any, username: str) -> Any:
    page = context.new_page()
    page.goto(f"{server.url}/t/{SLUG}/login")
    page.fill("#username", username)
    page.fill("#password", TEST_PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{server.url}/t/{SLUG}/")
    return page


def test_plan_written_published_reviewed_and_shown_in_next_years_dossier(
    browser: Any, live_app: tuple[Any, Any]
) -> None:
    app, server = live_app
    plan_id, rating_id = _district(app)
    base = f"{server.url}/t/{SLUG}/improvement"
    problems: list[str] = []
    secretary = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    committee = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    try:
        page = _login(secretary, server, "shuji")
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: None if r.url.startswith(server.url) else problems.append(r.url))
        page.goto(f"{base}/plans/{plan_id}")
        assert "党建工作创新" in page.inner_text("main")  # prefilled: where the branch lost most points
        for index in range(3):
            page.locator(".plan-item").nth(index).get_by_role("link", name="修改").click()
            page.fill("[name=measure]", f"第{index + 1}项整改措施：对照标准逐项补齐")
            page.fill("[name=owner]", "赵书记")
            page.fill("[name=deadline]", "2025-06-30")
            page.click("button[type=submit].primary")
            page.wait_for_url(f"{base}/plans/{plan_id}*")
        page.get_by_role("link", name="公布计划…").click()
        assert "公布后" in page.inner_text("main")
        page.get_by_role("button", name="确认公布").click()
        page.wait_for_url(f"{base}/plans/{plan_id}")
        assert page.inner_text("#plan-state") == "已公布"

        public = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN").new_page()
        public.goto(f"{base}/public/plans/{plan_id}")
        assert "第1项整改措施" in public.inner_text("main")
        public.context.close()

        review = _login(committee, server, "weiyuan")
        review.goto(f"{base}/plans/{plan_id}/review")
        for question in ("carried_out", "problems_solved", "study", "service", "innovation", "satisfaction"):
            review.check(f"input[name=verdict_{question}][value=met]")
        review.check("input[name=outcome][value=promote]")
        review.fill("#summary", "整改到位，建议晋位升级")
        review.get_by_role("button", name="下一步：确认").click()
        assert "请确认验收结果" in review.inner_text("main")
        review.get_by_role("button", name="确认记录").click()
        review.wait_for_url(f"{base}/plans/{plan_id}/review")
        assert "验收结果：晋位升级" in review.inner_text("#review-result")

        review.goto(f"{server.url}/t/{SLUG}/branch-rating/dossier/{rating_id}")
        dossier = review.inner_text("main")
        assert "上年度整改提升与考核验收（2025年）" in dossier and "晋位升级" in dossier
        assert "整改到位，建议晋位升级" in dossier
        assert not problems, problems
    finally:
        secretary.close()
        committee.close()
