"""The committee's pages and the branch's objection pages through the test client: who sees and does
what, refusals with a 4xx, conflicts with a 409 that keeps the input, fixed query counts."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from fivestar.enums import OrgKind, Role
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    MemberRound,
    Objection,
    ObjectionState,
    RoundBranch,
    RoundState,
)
from fivestar.member_rounds.opening import open_round
from fivestar.tenancy import tenant_context
from tests.rounds.notice_support import (
    BEIJING,
    add_objection,
    after_notice,
    evaluation_of,
    finalise_directly,
    put_on_notice,
    round_branch_of,
    text_of,
)
from tests.support import count_queries


def _url(world: dict[str, Any], path: str) -> str:
    return f"/t/{world['tenant'].slug}/rounds{path}"


def _stored(session: Session, world: dict[str, Any], model: Any, ident: int) -> Any:
    """The row as the database has it now (the app wrote through its own session)."""
    with tenant_context(world["tenant"].id):
        return session.scalar(select(model).where(model.id == ident).execution_options(populate_existing=True))


def _relogin(client: FlaskClient, login: Any, world: dict[str, Any], account: str) -> None:
    client.post(f"/t/{world['tenant'].slug}/logout")
    login(world["tenant"], world[account])


@pytest.fixture
def reported(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    """Branch one reported; branch two on public notice with one open objection."""
    one = put_on_notice(session, opened)
    two = put_on_notice(session, opened, "two", dict(zip(opened["twos"], (5, 3, 2), strict=True)))
    finalise_directly(session, opened, one)
    objection = add_objection(session, opened, two, "李3 的评定偏低")
    return {**opened, "rb_one": one, "rb_two": two, "objection": objection}


# --- the rounds list and opening a round ------------------------------------------------------------------


def test_an_admin_opens_the_period_just_past(
    client: FlaskClient, login: Any, district: dict[str, Any], frozen_now: Any, session: Session
) -> None:
    login(district["tenant"], district["admin"])
    page = text_of(client.get(_url(district, "/")))
    assert "开启评定" in page and '<option selected value="2026Q1">2026年第一季度</option>' in page
    response = client.post(_url(district, "/"), data={"period": "2026Q1"})
    assert response.status_code == 302
    with tenant_context(district["tenant"].id):
        member_round = session.scalar(select(MemberRound))
    assert member_round is not None and member_round.period_key == "2026Q1"
    assert response.headers["Location"].endswith(f"/rounds/{member_round.id}")
    again = client.post(_url(district, "/"), data={"period": "2026Q1"})
    assert again.status_code == 409 and "2026Q1 期党员评定已经开启" in text_of(again)
    early = client.post(_url(district, "/"), data={"period": "2026Q2"})
    assert early.status_code == 400 and "尚未结束" in text_of(early)
    listing = text_of(client.get(_url(district, "/")))
    assert "2026年第一季度" in listing and "个人自评 2" in listing


def test_only_admins_open_rounds(client: FlaskClient, login: Any, district: dict[str, Any], frozen_now: Any) -> None:
    login(district["tenant"], district["committee"])
    page = text_of(client.get(_url(district, "/")))
    assert 'name="period"' not in page
    assert client.post(_url(district, "/"), data={"period": "2026Q1"}).status_code == 403


def test_shortcuts_for_a_secretary_and_a_member(
    client: FlaskClient, login: Any, opened: dict[str, Any], session: Session
) -> None:
    one = round_branch_of(session, opened, "one")
    login(opened["tenant"], opened["secretary"])
    page = text_of(client.get(_url(opened, "/")))
    assert f"/rounds/branch/{one.id}" in page and "第一党支部 · 2026年第一季度 评定工作台" in page
    assert f"/rounds/{opened['round'].id}\"" in page  # secretaries see their branch's progress too
    _relogin(client, login, opened, "member")
    page = text_of(client.get(_url(opened, "/")))
    assert "我的自评" in page and "/rounds/self/" in page
    assert f"/rounds/{opened['round'].id}\"" not in page and "评定工作台" not in page
    assert client.get(_url(opened, f"/{opened['round'].id}")).status_code == 403


# --- one round ---------------------------------------------------------------------------------------------


def test_the_round_page_shows_progress_distribution_and_five_star_lists(
    client: FlaskClient, login: Any, reported: dict[str, Any]
) -> None:
    login(reported["tenant"], reported["committee"])
    page = text_of(client.get(_url(reported, f"/{reported['round'].id}")))
    for text in ("第一党支部", "第二党支部", "已上报", "公示", "区财政局机关党委", "星级分布", "不予评星",
                 "五星党员名单（全部已上报支部）", "赵书记"):
        assert text in page, text
    # branch two has two five-star members but has not reported: they are not on the committee's list
    five_star_table = page.split("五星党员名单（全部已上报支部）")[1]
    assert "李1" not in five_star_table
    assert "尚未上报" in page
    assert f"/rounds/branches/{reported['rb_one'].id}/return" in page
    assert 'name="new_day"' not in page  # committee members do not extend deadlines


def test_org_staff_see_their_subtree_only(
    client: FlaskClient, login: Any, reported: dict[str, Any], create_org: Any, create_account: Any
) -> None:
    other = create_org(reported["tenant"], OrgKind.PARTY_COMMITTEE, name="区教育局机关党委", code="P02")
    staff = create_account(reported["tenant"], roles=[(Role.ORG_STAFF, other)], username="jiaoyu")
    login(reported["tenant"], staff)
    page = text_of(client.get(_url(reported, f"/{reported['round'].id}")))
    assert "第一党支部" not in page and "赵书记" not in page and "没有可查看的支部" in page
    assert client.get(_url(reported, f"/branches/{reported['rb_one'].id}/objections")).status_code == 404


def test_the_round_page_runs_a_fixed_number_of_queries(
    client: FlaskClient, login: Any, reported: dict[str, Any], create_org: Any, create_member: Any,
    session: Session, engine: Engine
) -> None:
    tenant = reported["tenant"]
    login(tenant, reported["admin"])

    def queries(round_id: int) -> int:
        client.get(_url(reported, f"/{round_id}"))  # warm the rules cache
        with count_queries(engine) as statements:
            response = client.get(_url(reported, f"/{round_id}"))
        assert response.status_code == 200
        return len(statements)

    small = queries(reported["round"].id)  # 2 branches, 6 members
    for index in range(6):
        branch = create_org(tenant, OrgKind.BRANCH, parent=reported["party"], name=f"新增第{index}支部")
        for _n in range(4):
            create_member(tenant, branch)
    with tenant_context(tenant.id):
        bigger = open_round(session, tenant, period_key="2025Q4").round
        session.flush()
    assert queries(bigger.id) == small  # 8 branches, 30 members
    assert small <= 14


def test_other_districts_and_unknown_rounds_are_not_found(
    client: FlaskClient, login: Any, reported: dict[str, Any], create_tenant: Any, create_account: Any
) -> None:
    other = create_tenant(slug="other-district")
    intruder = create_account(other, roles=[(Role.TENANT_ADMIN, None)], username="intruder")
    login(other, intruder)
    base = "/t/other-district/rounds"
    ids = {"round": reported["round"].id, "rb": reported["rb_one"].id, "objection": reported["objection"].id}
    for method, path in (
        ("GET", f"/{ids['round']}"),
        ("POST", f"/{ids['round']}/extend"),
        ("POST", f"/{ids['round']}/close"),
        ("GET", f"/branches/{ids['rb']}/return"),
        ("POST", f"/branches/{ids['rb']}/return"),
        ("GET", f"/branches/{ids['rb']}/objections"),
        ("POST", f"/branches/{ids['rb']}/finalise"),
        ("GET", f"/objections/{ids['objection']}"),
        ("POST", f"/objections/{ids['objection']}"),
    ):
        response = client.open(base + path, method=method, data={"reason": "越权", "version": "1"})
        assert response.status_code == 404, (method, path)
        assert "第一党支部" not in text_of(response)


# --- extending deadlines and closing --------------------------------------------------------------------


def test_an_admin_extends_a_deadline_with_a_reason(
    client: FlaskClient, login: Any, opened: dict[str, Any], session: Session
) -> None:
    member_round = opened["round"]
    login(opened["tenant"], opened["admin"])
    url = _url(opened, f"/{member_round.id}/extend")
    refused = client.post(url, data={"step": "self", "new_day": "2026-04-15", "reason": "", "version": "1"})
    assert refused.status_code == 400 and "延长期限须填写原因" in text_of(refused)
    bad_day = client.post(url, data={"step": "self", "new_day": "明天", "reason": "系统故障", "version": "1"})
    assert bad_day.status_code == 400 and "请填写新的截止日期" in text_of(bad_day)
    stale = client.post(url, data={"step": "self", "new_day": "2026-04-15", "reason": "系统故障", "version": "0"})
    assert stale.status_code == 409
    response = client.post(url, data={"step": "self", "new_day": "2026-04-15", "reason": "系统故障", "version": "1"})
    assert response.status_code == 302
    stored = _stored(session, opened, MemberRound, member_round.id)
    assert stored.self_due_at.astimezone(BEIJING).date() == dt.date(2026, 4, 15)
    _relogin(client, login, opened, "committee")
    assert client.post(url, data={"step": "self", "new_day": "2026-04-16", "reason": "x", "version": "2"}
                       ).status_code == 403


def test_closing_waits_for_every_branch(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session
) -> None:
    member_round = reported["round"]
    login(reported["tenant"], reported["admin"])
    page = text_of(client.get(_url(reported, f"/{member_round.id}")))
    assert "所有支部上报后才能结束本轮评定" in page
    refused = client.post(_url(reported, f"/{member_round.id}/close"), data={"version": str(member_round.version)})
    assert refused.status_code == 400
    assert _stored(session, reported, MemberRound, member_round.id).state is RoundState.OPEN
    finalise_directly(session, reported, reported["rb_two"])
    page = text_of(client.get(_url(reported, f"/{member_round.id}")))
    assert "结束后将按规则重新计算" in page
    version = _stored(session, reported, MemberRound, member_round.id).version
    response = client.post(_url(reported, f"/{member_round.id}/close"), data={"version": str(version)})
    assert response.status_code == 302
    assert _stored(session, reported, MemberRound, member_round.id).state is RoundState.CLOSED


# --- returning a branch's results ---------------------------------------------------------------------------


def test_the_committee_returns_a_reported_branch_with_a_reason(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session
) -> None:
    one = reported["rb_one"]
    login(reported["tenant"], reported["committee"])
    url = _url(reported, f"/branches/{one.id}/return")
    assert "退回原因" in text_of(client.get(url))
    empty = client.post(url, data={"reason": " ", "version": str(one.version)})
    assert empty.status_code == 400 and "请填写退回原因" in text_of(empty)
    assert _stored(session, reported, RoundBranch, one.id).step is BranchStep.FINALISED
    response = client.post(url, data={"reason": "五星比例偏高，请复核", "version": str(one.version)})
    assert response.status_code == 302
    stored = _stored(session, reported, RoundBranch, one.id)
    assert (stored.step, stored.return_reason) == (BranchStep.REVIEW, "五星比例偏高，请复核")
    # the public page is not shown while the branch reviews again
    assert client.get(f"/t/{reported['tenant'].slug}/notice/{stored.notice_token}").status_code == 404


def test_returning_a_branch_still_at_self_assessment_is_refused(
    client: FlaskClient, login: Any, opened: dict[str, Any], session: Session
) -> None:
    one = round_branch_of(session, opened, "one")
    login(opened["tenant"], opened["admin"])
    page = text_of(client.get(_url(opened, f"/branches/{one.id}/return")))
    assert "只有处于公示或已上报的支部才能退回" in page
    refused = client.post(_url(opened, f"/branches/{one.id}/return"), data={"reason": "复核", "version": "1"})
    assert refused.status_code == 400 and "当前处于“个人自评”阶段" in text_of(refused)
    assert _stored(session, opened, RoundBranch, one.id).step is BranchStep.SELF


@pytest.mark.parametrize(("account", "status"), [("secretary", 403), ("other_secretary", 404), ("member", 404)])
def test_branch_people_cannot_return_results(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session, account: str, status: int
) -> None:
    one = reported["rb_one"]
    login(reported["tenant"], reported[account])
    url = _url(reported, f"/branches/{one.id}/return")
    assert client.get(url).status_code == status
    assert client.post(url, data={"reason": "复核", "version": str(one.version)}).status_code == status
    assert _stored(session, reported, RoundBranch, one.id).step is BranchStep.FINALISED


# --- objections and finalising ------------------------------------------------------------------------------


def test_the_secretary_dismisses_an_objection_and_finalises_after_the_notice(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session, frozen_now: Any
) -> None:
    two, objection = reported["rb_two"], reported["objection"]
    login(reported["tenant"], reported["other_secretary"])
    listing = text_of(client.get(_url(reported, f"/branches/{two.id}/objections")))
    assert "李3 的评定偏低" in listing and "待答复" in listing and "公示期到" in listing
    early = client.post(_url(reported, f"/branches/{two.id}/finalise"), data={"version": str(two.version)})
    assert early.status_code == 400 and "公示期到 4月13日 23:59 结束" in text_of(early)
    frozen_now.move(after_notice(two))
    still_open = client.post(_url(reported, f"/branches/{two.id}/finalise"), data={"version": str(two.version)})
    assert still_open.status_code == 400 and "还有 1 条异议未答复" in text_of(still_open)
    answer = client.post(
        _url(reported, f"/objections/{objection.id}"),
        data={"outcome": "dismissed", "reason": "经核实评定无误", "change": "no", "version": "1"},
    )
    assert answer.status_code == 302
    stored = _stored(session, reported, Objection, objection.id)
    assert (stored.state, stored.answer) == (ObjectionState.DISMISSED, "经核实评定无误")
    version = _stored(session, reported, RoundBranch, two.id).version
    done = client.post(_url(reported, f"/branches/{two.id}/finalise"), data={"version": str(version)})
    assert done.status_code == 302
    assert _stored(session, reported, RoundBranch, two.id).step is BranchStep.FINALISED


def test_two_people_answering_the_same_objection_one_gets_a_409_and_keeps_the_text(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session, app: Any,
    create_account: Any
) -> None:
    objection = reported["objection"]
    deputy = create_account(reported["tenant"], roles=[(Role.BRANCH_COMMITTEE, reported["two"])], username="zhiwei2")
    url = _url(reported, f"/objections/{objection.id}")
    login(reported["tenant"], reported["other_secretary"])
    other = app.test_client()
    assert other.post(f"/t/{reported['tenant'].slug}/login",
                      data={"username": deputy.username, "password": "correct-horse-battery"}).status_code == 302
    for c in (client, other):  # both open the form
        assert 'name="version" type="hidden" value="1"' in text_of(c.get(url))
    first = client.post(url, data={"outcome": "dismissed", "reason": "评定无误", "change": "no", "version": "1"})
    second = other.post(
        url, data={"outcome": "upheld", "reason": "我认为属实，应当调整", "change": "no", "version": "1"}
    )
    assert first.status_code == 302
    assert second.status_code == 409
    page = text_of(second)
    assert "已由他人答复" in page and "我认为属实，应当调整" in page
    stored = _stored(session, reported, Objection, objection.id)
    assert (stored.state, stored.answer) == (ObjectionState.DISMISSED, "评定无误")


def test_upholding_from_the_page_rescores_the_member(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session
) -> None:
    two = reported["rb_two"]
    target = evaluation_of(session, reported, reported["twos"][2])  # 二星
    objection = add_objection(session, reported, two, "李3 的分数少算了", target)
    login(reported["tenant"], reported["other_secretary"])
    url = _url(reported, f"/objections/{objection.id}")
    form_page = text_of(client.get(url))
    field_names = re.findall(r'name="(aspect\.[^"]+)"', form_page)
    assert len(field_names) > 5
    posted = {name: "0" for name in field_names}
    posted[field_names[0]] = "abc"
    data = {"outcome": "upheld", "reason": "核实后补记", "change": "yes", "version": "1",
            "evaluation_version": str(target.version), **posted}
    bad = client.post(url, data=data)
    assert bad.status_code == 400 and "须为数字" in text_of(bad) and 'value="abc"' in text_of(bad)
    # the scores the page prefilled add up to 50; give the member full marks instead
    full = {name: re.search(rf'name="{re.escape(name)}" value="([^"]*)"', form_page) for name in field_names}
    assert all(full.values())
    maxima = re.findall(r"满分 (\d+)", form_page)
    data.update({name: maximum for name, maximum in zip(field_names, maxima, strict=True)})
    response = client.post(url, data=data)
    assert response.status_code == 302, text_of(response)[:2000]
    stored = _stored(session, reported, Evaluation, target.id)
    assert (stored.level, stored.total) == (5, 100)
    answer = _stored(session, reported, Objection, objection.id).answer
    assert answer == "核实后补记\n处理结果：李3 由“二星”改为“五星”"


@pytest.mark.parametrize(("account", "status"), [("committee", 403), ("secretary", 404), ("member", 404)])
def test_only_the_branch_answers_its_objections(
    client: FlaskClient, login: Any, reported: dict[str, Any], session: Session, account: str, status: int
) -> None:
    objection = reported["objection"]
    login(reported["tenant"], reported[account])
    url = _url(reported, f"/objections/{objection.id}")
    assert client.get(url).status_code == status
    posted = client.post(url, data={"outcome": "dismissed", "reason": "越权", "change": "no", "version": "1"})
    assert posted.status_code == status
    fin = client.post(_url(reported, f"/branches/{reported['rb_two'].id}/finalise"), data={"version": "1"})
    assert fin.status_code == status
    assert _stored(session, reported, Objection, objection.id).state is ObjectionState.OPEN


def test_committee_reads_a_branchs_objections(client: FlaskClient, login: Any, reported: dict[str, Any]) -> None:
    login(reported["tenant"], reported["committee"])
    page = text_of(client.get(_url(reported, f"/branches/{reported['rb_two'].id}/objections")))
    assert "李3 的评定偏低" in page and f"/rounds/objections/{reported['objection'].id}" not in page


def test_forms_carry_csrf(
    client: FlaskClient, login: Any, reported: dict[str, Any], csrf_enabled: None
) -> None:
    login_page = text_of(client.get(f"/t/{reported['tenant'].slug}/login"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page)
    assert token is not None
    client.post(
        f"/t/{reported['tenant'].slug}/login",
        data={"username": "weiyuan", "password": "correct-horse-battery", "csrf_token": token.group(1)},
    )
    url = _url(reported, f"/branches/{reported['rb_one'].id}/return")
    assert 'name="csrf_token"' in text_of(client.get(url))
    assert client.post(url, data={"reason": "无令牌", "version": "1"}).status_code == 400
