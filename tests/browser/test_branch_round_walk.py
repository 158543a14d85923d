"""The branch rating in a real browser: 议星 with printed codes, 定星, the public page — at 375 px.

The secretary sets up the 议星 meeting and prints the ballot slips (the PDF is read back for its
codes, as the slips would be handed out); three voters scan-or-type their codes on phones and rate
the branch; the secretary closes voting and the results appear; the branch's opinion goes to the
committee, whose member decides and publishes; the public page, without login, shows the stars.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from fivestar.accounts.passwords import hash_password
from fivestar.enums import OrgKind, Role
from fivestar.kernel.rounds import seeding
from fivestar.timekeeping import clock

PHONE = {"width": 375, "height": 812}
PASSWORD = "walk-the-branch-2026"
CODE = re.compile(r"\b([A-HJ-NP-Z2-9]{5}-[A-HJ-NP-Z2-9]{5})\b")


@pytest.fixture(scope="session")
def branch_walk(live_app: tuple[Any, Any]) -> dict[str, Any]:
    """A district whose 2025 rating has one branch (directly under the committee) at 议星, with its
    荐星 done; its secretary and a committee member have logins."""
    from fivestar.accounts.models import Account, RoleGrant
    from fivestar.branch_rounds.core import round_rules
    from fivestar.branch_rounds.models import AnswerKind, BranchRating, CriterionScore, RatingAnswer, RatingStep
    from fivestar.branch_rounds.opening import open_branch_round
    from fivestar.orgs.models import Organisation
    from fivestar.orgs.services import create_org
    from fivestar.rules import BranchInput, evaluate_branch
    from fivestar.tenancy import tenant_context
    from fivestar.tenants.services import create_tenant
    from tests.conftest import SAMPLE_RULES

    app, _server = live_app
    rules_toml = SAMPLE_RULES.read_text(encoding="utf-8").replace("min_ballots = 5", "min_ballots = 3")
    hashed = hash_password(PASSWORD)
    with app.app_context():
        session = app.extensions["fivestar.sessionmaker"]()
        try:
            tenant = create_tenant(session, slug="walk-branch", name="议星走查工委", rules_toml=rules_toml)
            with tenant_context(tenant.id):
                root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
                branch = create_org(session, kind=OrgKind.BRANCH, parent=root, name="区档案馆党支部")
                today = clock.today_in(tenant.timezone)
                opened = open_branch_round(
                    session, tenant, year=today.year - 1,
                    self_report_due=today + dt.timedelta(days=30), committee_due=today + dt.timedelta(days=60),
                )
                rules = round_rules(session, opened.round)
                rating = session.scalar(select(BranchRating).where(BranchRating.round_id == opened.round.id))
                scores = {i.key: {c.key: c.points for c in i.criteria} for i in rules.branch.indicators}
                session.execute(insert(CriterionScore), [
                    {"tenant_id": tenant.id, "rating_id": rating.id, "indicator_key": i, "criterion_key": c,
                     "score": value, "note": None}
                    for i, criteria in scores.items() for c, value in criteria.items()
                ])
                session.execute(insert(RatingAnswer), [
                    {"tenant_id": tenant.id, "rating_id": rating.id, "kind": AnswerKind.VETO, "key": v.key,
                     "value": False, "explanation": None}
                    for v in rules.branch.vetoes
                ])
                vetoes = {v.key: False for v in rules.branch.vetoes}
                result = evaluate_branch(rules, BranchInput(scores=scores, vetoes=vetoes))
                rating.statement = "全年工作扎实。"
                rating.proposed_total = result.weighted_total.quantize(Decimal("0.01"))
                rating.proposed_level = result.level
                rating.recommended_at = clock.now()
                with seeding():
                    rating.step = RatingStep.DELIBERATE
                for username, name, role, org in (
                    ("dangan", "档案馆书记", Role.BRANCH_SECRETARY, branch),
                    ("weiyuan", "工委委员乙", Role.COMMITTEE_MEMBER, None),
                ):
                    account = Account(tenant_id=tenant.id, username=username, display_name=name, password_hash=hashed)
                    session.add(account)
                    session.flush()
                    session.add(RoleGrant(account_id=account.id, role=role, organisation_id=org.id if org else None))
                rating_id = rating.id
            session.commit()
        finally:
            session.close()
    return {"slug": "walk-branch", "rating_id": rating_id}


def _login(browser: Any, server: Any, slug: str, username: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", accept_downloads=True)
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


def test_deliberation_decision_and_publication_on_phones(
    browser: Any, live_app: tuple[Any, Any], branch_walk: dict[str, Any]
) -> None:
    from pypdf import PdfReader

    _app, server = live_app
    slug, rating_id = branch_walk["slug"], branch_walk["rating_id"]
    base = f"{server.url}/t/{slug}"

    # 1. The secretary sets up the meeting and prints the slips.
    context, page = _login(browser, server, slug, "dangan")
    page.goto(f"{base}/branch-rating/deliberation/{rating_id}")
    page.fill("#meeting_date", clock.now().astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat())
    page.fill("#place", "档案馆三楼会议室")
    page.fill("#members_count", "3")
    page.fill("#public_count", "0")
    page.fill("#deputies_count", "0")
    _click(page, "保存会议安排")
    _fits(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="生成测评票（PDF）并开始测评").click()
    slips = Path(download.value.path()).read_bytes()
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(slips)).pages)
    codes = CODE.findall(text)
    assert len(set(codes)) == 3, text[:500]

    # 2. Three voters cast their ballots on phones, without accounts.
    for code, level in zip(sorted(set(codes)), ("5", "5", "4"), strict=True):
        voter = browser.new_context(viewport=PHONE, locale="zh-CN")
        phone = voter.new_page()
        phone.goto(f"{base}/vote/")
        phone.fill("#code", code)
        _click(phone, "下一步")
        _fits(phone)
        phone.locator(f"input[type=radio][value='{level}']").first.check()
        _click(phone, "提交测评")
        assert "/vote/done" in phone.url
        # The same code does not work twice.
        phone.goto(f"{base}/vote/")
        phone.fill("#code", code)
        _click(phone, "下一步")
        assert phone.locator("input[type=radio]").count() == 0
        voter.close()

    # 3. The secretary closes voting; the results appear; the opinion goes to the committee.
    page.goto(f"{base}/branch-rating/deliberation/{rating_id}")
    _click(page, "结束投票")
    members_row = page.locator("tr.ballot-group-members")
    assert members_row.locator("td").first.inner_text().strip() == "3"
    assert "五星 2" in members_row.inner_text() and "四星 1" in members_row.inner_text()
    # Three fives-and-a-four average to 4.67 stars among members.
    assert "4.67" in page.locator(".ballot-weighted").inner_text()
    page.select_option("#opinion_level", "5")
    page.fill("#opinion_statement", "测评结果良好，建议评为五星。")
    _click(page, "保存并上报")
    _fits(page)
    context.close()

    # 4. The committee member decides and publishes.
    context, page = _login(browser, server, slug, "weiyuan")
    page.goto(f"{base}/branch-rating/dossier/{rating_id}")
    page.select_option("select[name=level]", "5")
    _click(page, "保存定星")
    _fits(page)
    page.goto(f"{base}/branch-rating/")
    page.locator("a[href*='/branch-rating/']").filter(has_text=re.compile(r"\d{4}")).first.click()
    page.wait_for_load_state()
    page.fill("input[name=meeting_date]", clock.now().astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat())
    page.fill("textarea[name=participants]", "工委委员乙等五人")
    _click(page, "确定并公布")
    context.close()

    # 5. Anyone sees the stars on the public page.
    public = browser.new_context(viewport=PHONE, locale="zh-CN")
    visitor = public.new_page()
    visitor.goto(f"{base}/stars/")
    shown = visitor.content()
    assert "区档案馆党支部" in shown and "五星" in shown
    _fits(visitor)
    public.close()
