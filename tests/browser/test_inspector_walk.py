"""An inspector (督查组) at 375 px in a real browser: the audit trail with a filter, a spot check
drawn and opened, and the anomaly report — nothing wider than the screen, CSRF and CSP in force."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fivestar import audit
from fivestar.accounts.models import Account, RoleGrant
from fivestar.accounts.passwords import hash_password
from fivestar.enums import Gender, OrgKind, Role
from fivestar.member_rounds import core, scoring
from fivestar.member_rounds.models import Evaluation, ScoreStage
from fivestar.member_rounds.opening import open_round
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import create_tenant
from tests.conftest import SAMPLE_RULES, TEST_PASSWORD

PHONE = {"width": 375, "height": 812}
SLUG = "live-inspect"


def _values(rules: Any, total: int) -> dict[Any, Decimal]:
    fields = core.score_fields(rules)
    values = {f.key: f.max for f in fields}
    missing = sum(values.values(), Decimal(0)) - Decimal(total)
    for f in fields:
        cut = min(missing, values[f.key])
        values[f.key] -= cut
        missing -= cut
    return values


@pytest.fixture(scope="module")
def district(live_app: tuple[Any, Any]) -> str:
    """A district of its own: two branches, a member round scored so that one branch has identical
    scores and one member's final score is far from the joint one, and an inspector account."""
    app, _server = live_app
    session = app.extensions["fivestar.sessionmaker"]()
    try:
        with audit.acting_as(audit.Actor("cli", None, "test")):
            tenant = create_tenant(session, slug=SLUG, name="督查演示工委", rules_toml=SAMPLE_RULES.read_text("utf-8"))
            session.flush()
            with tenant_context(tenant.id):
                root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
                assert root is not None
                branches = []
                for code, name in (("B01", "财政局预算科党支部（名称很长以检查窄屏换行）"), ("B02", "第二党支部")):
                    branch = Organisation(parent_id=root.id, kind=OrgKind.BRANCH, name=name, code=code)
                    session.add(branch)
                    session.flush()
                    branch.path = f"{root.path}{branch.id}/"
                    branches.append(branch)
                members = [
                    Member(branch_id=branch.id, member_no=f"{branch.code}-{i}", name=f"党员{branch.code}{i}",
                           gender=Gender.MALE, joined_on=dt.date(2012, 7, 1))
                    for branch in branches
                    for i in range(1, 4)
                ]
                session.add_all(members)
                session.flush()
                account = Account(
                    username="inspector", display_name="督查组", password_hash=hash_password(TEST_PASSWORD)
                )
                session.add(account)
                session.flush()
                session.add(RoleGrant(account_id=account.id, role=Role.INSPECTOR, organisation_id=None))
                member_round = open_round(session, tenant).round
                session.flush()
                rules = core.round_rules(session, member_round)
                evaluations = {
                    e.member_id: e.id
                    for e in session.scalars(select(Evaluation).where(Evaluation.round_id == member_round.id))
                }
                joint = {evaluations[m.id]: _values(rules, 80) for m in members}
                final = {evaluations[m.id]: _values(rules, 80) for m in members}
                final[evaluations[members[3].id]] = _values(rules, 60)
                core.write_scores(session, list(joint), ScoreStage.JOINT, joint)
                core.write_scores(session, list(final), ScoreStage.FINAL, final)
                scoring.score_round(session, member_round)
                for evaluation_id in evaluations.values():
                    audit.record(session, "evaluation.review", object_type="member_evaluations",
                                 object_id=evaluation_id, before={"total": "80"}, after={"total": "60"},
                                 reason="根据日常表现调整（理由写得较长，用于检查窄屏下是否换行而不撑宽页面）")
        session.commit()
    finally:
        session.close()
    return SLUG


def _fits(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{page.url} is {overflow}px wider than the viewport"


def test_inspector_walks_trail_spot_check_and_anomalies(
    browser: Any, live_app: tuple[Any, Any], district: str, tmp_path: Path
) -> None:
    _app, server = live_app
    context = browser.new_context(viewport=PHONE, locale="zh-CN")
    page = context.new_page()
    foreign: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(server.url) else foreign.append(request.url))
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    base = f"{server.url}/t/{district}"
    try:
        page.goto(f"{base}/login")
        page.fill("#username", "inspector")
        page.fill("#password", TEST_PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{base}/")
        _fits(page)

        # The audit trail from the home page, filtered to one kind of event.
        page.locator("#inspection a", has_text="操作记录").click()
        page.wait_for_url(f"{base}/inspection/audit")
        page.select_option("#family", "evaluation")
        page.locator("#trail-filters button[type=submit]").click()
        page.wait_for_load_state()
        assert "family=evaluation" in page.url
        entries = page.locator("#trail .trail-entry")
        assert entries.count() == 6
        assert "支部审评评分" in entries.first.inner_text()
        entries.first.locator("summary").click()
        assert entries.first.locator("tr.changed").count() == 1
        _fits(page)
        page.screenshot(path=str(tmp_path / "trail.png"), full_page=True)

        # A spot check, drawn and opened; its member links lead to the result records.
        page.locator(".inspection-nav a", has_text="随机抽查").click()
        page.wait_for_url(f"{base}/inspection/spot-checks")
        page.select_option("#round", index=1)
        page.fill("#branches", "1")
        page.fill("#members", "2")
        page.locator("#spot-check-form button[type=submit]").click()
        page.wait_for_url(f"{base}/inspection/spot-checks/*")
        seed = page.locator("#seed").inner_text()
        assert len(seed) == 16
        assert page.locator("#drawn-branches li").count() == 1
        assert page.locator("#drawn-members a").count() == 2
        assert "结果一致" in page.locator("#repeat-check").inner_text()
        _fits(page)
        page.locator("#drawn-members a").first.click()
        page.wait_for_load_state()
        assert "/inspection/evaluations/" in page.url
        assert page.locator("#stage-scores").is_visible()
        _fits(page)

        # The anomaly report: the branch of identical scores and the member far from the joint score.
        page.goto(f"{base}/inspection/anomalies")
        identical = page.locator("#kind-identical_scores .anomaly")
        gaps = page.locator("#kind-joint_gap .anomaly")
        assert identical.count() == 1 and gaps.count() == 1
        assert "党员B021" in gaps.first.inner_text()
        _fits(page)
        page.screenshot(path=str(tmp_path / "anomalies.png"), full_page=True)
        gaps.first.locator("a").click()
        page.wait_for_load_state()
        assert "/inspection/evaluations/" in page.url
        _fits(page)
    finally:
        context.close()
    assert foreign == [], f"the page loaded assets from other hosts: {foreign}"
    assert errors == []
