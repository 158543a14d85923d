"""The branch's round pages as people see them: found from the home page, the dashboard's step,
deadlines (in the district's time zone), each member's self-assessment state and results, and the
phone-friendly markup of the grids."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fivestar.kernel.rounds import seeding
from fivestar.member_rounds.models import BranchStep, RoundState, SelfState
from fivestar.tenancy import tenant_context
from tests.rounds.branch_support import (
    enter_all_self,
    evaluations,
    round_branch,
    save_review,
    take,
    text,
    url,
    walk_to,
)


def _home(client: FlaskClient, world: dict[str, Any]) -> str:
    return text(client.get(f"/t/{world['tenant'].slug}/"))


def test_a_secretary_finds_the_dashboard_from_the_home_page(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]
) -> None:
    rb = round_branch(session, opened)
    login(opened["tenant"], opened["secretary"])
    home = _home(client, opened)
    assert 'id="branch-rounds"' in home and "本支部评定" in home
    section = home.split('id="branch-rounds"')[1].split("</section>")[0]
    links = re.findall(r'href="([^"]*/rounds/branch/\d+)"', section)
    assert links == [f"/t/{opened['tenant'].slug}/rounds/branch/{rb.id}"]
    assert f'href="{links[0]}"' in home.split('id="worklist"')[1]  # and the work list's item leads there too
    assert "2026Q1 党员星级评定 · 第一党支部" in home and "个人自评" in home
    assert client.get(links[0]).status_code == 200


def test_the_home_section_is_only_for_those_who_run_a_branch(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]
) -> None:
    for who, shown in (("branch_committee", True), ("other_secretary", True), ("member", False), ("admin", False),
                       ("inspector", False)):
        client.delete_cookie("fivestar_session")
        login(opened["tenant"], opened[who])
        home = _home(client, opened)
        assert ('id="branch-rounds"' in home) is shown, who
        if who == "other_secretary":
            assert "第二党支部" in home and "第一党支部" not in home.split('id="branch-rounds"')[1]


def test_a_closed_round_leaves_the_home_page(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]
) -> None:
    with tenant_context(opened["tenant"].id):
        with seeding():
            opened["round"].state = RoundState.CLOSED
        session.flush()
    login(opened["tenant"], opened["secretary"])
    assert 'id="branch-rounds"' not in _home(client, opened)


def test_the_dashboard_shows_states_deadlines_and_the_next_step(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]
) -> None:
    rb = round_branch(session, opened)
    ones = evaluations(session, opened)
    with tenant_context(opened["tenant"].id):
        ones[1].self_state = SelfState.DRAFT
        ones[2].self_state = SelfState.RETURNED
        ones[2].return_reason = "请补充承诺践诺情况"
        session.flush()
    login(opened["tenant"], opened["secretary"])
    page = text(client.get(url(opened, f"/{rb.id}")))
    assert "当前阶段：个人自评" in page
    # deadlines at the end of the day in Beijing, not in UTC
    assert "2026-04-14 23:59" in page and "2026-04-21 23:59" in page and "2026-04-28 23:59" in page
    assert "未填写" in page and "草稿" in page and "已退回" in page and "退回原因：请补充承诺践诺情况" in page
    # the next step is there, disabled, with the reason
    disabled = r'<button type="submit" class="button" disabled aria-describedby="why-start_joint">开始党群联评'
    assert re.search(disabled, page)
    assert "暂不能开始党群联评：还有 3 名党员未提交自评" in page
    assert "开始支部审评" not in page and "提交公示" not in page
    # entering for a pending member is offered; returning is not (nothing submitted)
    assert f"/evaluations/{ones[0].id}/enter" in page and f"/evaluations/{ones[0].id}/return" not in page


def test_the_dashboard_after_the_review(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]
) -> None:
    ones = opened["ones"]
    walk_to(session, opened, BranchStep.REVIEW, totals={ones[0].id: 95, ones[1].id: 82, ones[2].id: 60})
    save_review(session, opened, totals={ones[0].id: 95, ones[1].id: 82, ones[2].id: 60})
    rb = round_branch(session, opened)
    login(opened["tenant"], opened["secretary"])
    page = text(client.get(url(opened, f"/{rb.id}")))
    assert "当前阶段：支部审评" in page
    rows = re.findall(r'<tr id="e\d+" class="">(.*?)</tr>', page, flags=re.S)
    cells = [re.findall(r'<td data-label="([^"]+)">\s*(.*?)\s*</td>', row, flags=re.S) for row in rows]
    assert [dict(row)["星级"] for row in cells] == ["五星", "四星", "二星"]
    assert [dict(row)["审评总分"] for row in cells] == ["95", "82", "60"]
    assert [dict(row)["联评分"] for row in cells] == ["95", "82", "60"]
    assert all("代录" in dict(row)["自评"] for row in cells)  # the test entered them for the members
    assert re.search(r'<button type="submit" class="button primary">提交公示</button>', page)


def test_the_joint_page_states_the_public_representatives_minimum(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]
) -> None:
    enter_all_self(session, opened)
    take(session, opened, "start_joint")
    rb = round_branch(session, opened)
    login(opened["tenant"], opened["secretary"])
    page = text(client.get(url(opened, f"/{rb.id}/joint")))
    assert "群众代表不少于党员人数的 20%：本支部参评党员 3 人，至少 1 名群众代表" in page
    assert 'class="table responsive score-grid"' in page
    assert re.search(r'<td data-label="学习方面·[^"]+" class="grid-cell">', page)
    response = client.post(url(opened, f"/{rb.id}/joint/meeting"),
                           data={"meeting_date": "2026-04-07", "members_present": "3", "public_present": "0",
                                 "version": str(rb.version)})
    body = text(response)
    assert response.status_code == 400
    assert "群众代表 0 人，少于党员人数 3 的 20%（至少 1 人）" in body and "请在说明中写明原因" in body


def test_a_page_before_its_step_shows_why_it_cannot_be_saved(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]
) -> None:
    rb = round_branch(session, opened)
    login(opened["tenant"], opened["secretary"])
    page = text(client.get(url(opened, f"/{rb.id}/review")))
    assert "当前处于“个人自评”阶段，不能保存支部审评" in page
    assert "保存审评结果" not in page and " disabled" in page
