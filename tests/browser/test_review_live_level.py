"""支部审评 in a real browser at 375 px: the level of a member changes as the secretary types
(static/js/review.js posting to the preview endpoint; the rule engine on the server decides), with
CSRF on and the page's CSP in force."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from fivestar.accounts.models import Account, RoleGrant
from fivestar.accounts.passwords import hash_password
from fivestar.enums import Gender, OrgKind, Role
from fivestar.member_rounds import branch, core
from fivestar.member_rounds.models import RoundBranch
from fivestar.member_rounds.opening import open_round
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.tenancy import tenant_context
from fivestar.tenants.services import create_tenant
from tests.conftest import SAMPLE_RULES, TEST_PASSWORD
from tests.rounds.branch_support import grid_post, scores_for


def _district(session: Any) -> Any:
    """A small district of its own (the demo districts are shared with other browser tests)."""
    tenant = create_tenant(session, slug="live-review", name="审评演示工委", rules_toml=SAMPLE_RULES.read_text("utf-8"))
    session.flush()
    with tenant_context(tenant.id):
        root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
        assert root is not None
        one = Organisation(parent_id=root.id, kind=OrgKind.BRANCH, name="第一党支部", code="B01")
        session.add(one)
        session.flush()
        one.path = f"{root.path}{one.id}/"
        members = [
            Member(branch_id=one.id, member_no=f"A{i:03d}", name=name, gender=Gender.FEMALE,
                   joined_on=dt.date(2010, 7, 1))
            for i, name in enumerate(("赵书记", "钱支委", "孙党员"), start=1)
        ]
        session.add_all(members)
        session.flush()
        account = Account(username="shuji", display_name="赵书记", password_hash=hash_password(TEST_PASSWORD),
                          member_id=members[0].id)
        session.add(account)
        session.flush()
        session.add(RoleGrant(account_id=account.id, role=Role.BRANCH_SECRETARY, organisation_id=one.id))
        session.flush()
    return tenant


def _branch_at_review(app: Any) -> tuple[int, int, list[str]]:
    """The district's branch taken to 支部审评 through the services (joint totals 90)."""
    session = app.extensions["fivestar.sessionmaker"]()
    try:
        tenant = _district(session)
        with tenant_context(tenant.id):
            open_round(session, tenant)
            session.flush()
            rb = core.load_round_branch(session, session.scalar(select(RoundBranch.id)))
            fields = core.score_fields(branch.context_for(session, rb).rules)
            for evaluation in branch.branch_evaluations(session, rb, active_only=True):
                form = {**scores_for(fields, 90), "pledge": "按承诺完成", "summary": "认真履职"}
                branch.enter_self(session, branch.context_for(session, rb), evaluation, form, evaluation.version)
            branch.take_step(session, branch.context_for(session, rb), "start_joint")
            ctx = branch.context_for(session, rb)
            branch.save_meeting(session, ctx, {"meeting_date": ctx.today.isoformat(), "members_present": "3",
                                               "public_present": "1"}, rb.version)
            rows = branch.branch_evaluations(session, rb, active_only=True)
            branch.save_joint(session, branch.context_for(session, rb),
                              grid_post([(e, scores_for(fields, 90)) for e in rows]))
            branch.take_step(session, branch.context_for(session, rb), "start_review")
            session.commit()
            return rb.id, rows[0].id, [f.name for f in fields]
    finally:
        session.close()


def _wait_for(page: Any, locator: Any, word: str) -> str:
    """Poll from Python: the page's CSP forbids the string evaluation wait_for_function uses."""
    for _ in range(80):
        shown = str(locator.inner_text())
        if word in shown:
            return shown
        page.wait_for_timeout(100)
    raise AssertionError(f"{word!r} never appeared; the cell shows {locator.inner_text()!r}")


def test_the_level_follows_what_the_secretary_types(browser: Any, live_app: tuple[Any, Any]) -> None:
    app, server = live_app
    rb_id, first, fields = _branch_at_review(app)
    context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("request", lambda request: None if request.url.startswith(server.url) else problems.append(request.url))
    try:
        page.goto(f"{server.url}/t/live-review/login")
        page.fill("#username", "shuji")
        page.fill("#password", TEST_PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url(f"{server.url}/t/live-review/")
        page.goto(f"{server.url}/t/live-review/rounds/branch/{rb_id}/review")
        level = page.locator(f"tr[data-evaluation='{first}'] [data-level]")
        assert "五星" in level.inner_text()
        page.fill(f"[name='r{first}.{fields[0]}']", "0")
        page.fill(f"[name='r{first}.{fields[1]}']", "0")  # 90 − the two first criteria: below 90
        assert "四星" in _wait_for(page, level, "四星")
        page.select_option(f"[name='r{first}.disqualifier']", "unpaid_dues")
        _wait_for(page, level, "不予评星")
        page.fill(f"[name='r{first}.{fields[0]}']", "abc")
        assert "须为数字" in _wait_for(page, level, "须为数字")
        assert not problems, problems
    finally:
        context.close()
