"""The member's pages: 我的评定, the self-assessment form on a phone, 我的历次星级, the menu and home."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from fivestar.enums import OrgKind
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import core
from fivestar.member_rounds.models import BranchStep, Evaluation, RoundBranch, RoundState, ScoreStage, SelfState
from fivestar.member_rounds.opening import open_round
from fivestar.tenancy import tenant_context

PLEDGE = "承诺每月走访群众一次，已全部完成。"
SUMMARY = "学习认真，工作积极。"


def _text(response: Any) -> str:
    return str(response.get_data(as_text=True))


@pytest.fixture
def world(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    tenant = opened["tenant"]
    with tenant_context(tenant.id):
        evaluations = {
            member_id: evaluation_id
            for evaluation_id, member_id in session.execute(select(Evaluation.id, Evaluation.member_id))
        }
        fields = core.score_fields(core.round_rules(session, opened["round"]))
    return {
        **opened,
        "base": f"/t/{tenant.slug}",
        "mine": evaluations[opened["ones"][2].id],  # 孙党员, the `member` account
        "secretary_own": evaluations[opened["ones"][0].id],
        "evaluations": evaluations,
        "fields": fields,
        "full": {field.name: format((field.max - 1).normalize(), "f") for field in fields},
    }


def _edit_url(w: dict[str, Any], evaluation_id: int | None = None) -> str:
    return f"{w['base']}/rounds/self/{evaluation_id or w['mine']}"


def _version(page: str) -> str:
    found = re.search(r'name="version"[^>]*value="(\d+)"|value="(\d+)"[^>]*name="version"', page)
    assert found, "no version field on the page"
    return found.group(1) or found.group(2)


def _post(client: FlaskClient, w: dict[str, Any], scores: dict[str, str], *, action: str, version: str,
          pledge: str = PLEDGE, summary: str = SUMMARY) -> Any:
    return client.post(
        _edit_url(w), data={**scores, "pledge": pledge, "summary": summary, "version": version, "action": action}
    )


def _stored(session: Session, w: dict[str, Any]) -> tuple[SelfState, dict[str, Decimal]]:
    with tenant_context(w["tenant"].id):
        session.expire_all()
        evaluation = session.scalar(select(Evaluation).where(Evaluation.id == w["mine"]))
        assert evaluation is not None
        rows = core.read_scores(session, [evaluation.id], [ScoreStage.SELF]).get((evaluation.id, ScoreStage.SELF), {})
        names = {field.key: field.name for field in w["fields"]}
        return evaluation.self_state, {names[key]: value for key, value in rows.items()}


def _set_step(session: Session, w: dict[str, Any], branch: Any, step: BranchStep) -> None:
    with tenant_context(w["tenant"].id):
        round_branch = session.scalar(select(RoundBranch).where(RoundBranch.branch_id == branch.id))
        assert round_branch is not None
        with seeding():
            round_branch.step = step
        session.flush()


# --- 我的评定 -------------------------------------------------------------------------------------------


def test_my_evaluations_list_the_current_round_with_its_deadline_and_a_button(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    login(world["tenant"], world["member"])
    response = client.get(f"{world['base']}/rounds/self/")
    page = _text(response)
    assert response.status_code == 200
    assert "2026年第一季度" in page and "第一党支部" in page and "未填写" in page
    local_due = world["round"].self_due_at.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert local_due.strftime("%Y-%m-%d %H:%M") in page  # the deadline in the tenant's time zone
    assert f'href="{_edit_url(world)}"' in page and "填写自评" in page
    # only their own evaluation
    for member_id, evaluation_id in world["evaluations"].items():
        if member_id != world["ones"][2].id:
            assert f"/rounds/self/{evaluation_id}" not in page


def test_an_account_without_a_member_record_has_nothing_to_fill_in(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    login(world["tenant"], world["admin"])
    response = client.get(f"{world['base']}/rounds/self/")
    assert response.status_code == 200 and "没有关联党员信息" in _text(response)
    menu = _text(client.get(f"{world['base']}/")).split("<main")[0]
    assert "/rounds/self/" not in menu


def test_the_menu_and_home_page_offer_my_rating_to_members_only(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    login(world["tenant"], world["member"])
    home = _text(client.get(f"{world['base']}/"))
    menu = home.split("</nav>")[0]
    assert f'href="{world["base"]}/rounds/self/"' in menu and "我的评定" in menu
    body = home.split("<main", 1)[1]
    assert 'id="my-rating"' in body and f'href="{world["base"]}/rounds/mine/"' in body
    assert "本支部党员" in body  # the rest of the home page is still there
    client.post(f"{world['base']}/logout")
    login(world["tenant"], world["committee"])
    home = _text(client.get(f"{world['base']}/"))
    assert "/rounds/self/" not in home and 'id="my-rating"' not in home


# --- the form --------------------------------------------------------------------------------------------


def test_the_form_has_one_number_input_per_criterion_grouped_by_aspect(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    login(world["tenant"], world["member"])
    page = _text(client.get(_edit_url(world)))
    for field in world["fields"]:
        found = re.search(rf'<input[^>]*name="{re.escape(field.name)}"[^>]*>', page)
        assert found, field.name
        tag = found.group(0)
        assert 'type="number"' in tag and 'inputmode="decimal"' in tag and 'step="0.01"' in tag
        assert 'min="0"' in tag and f'max="{format(field.max.normalize(), "f")}"' in tag
        assert field.label in page
    assert page.count('<fieldset class="card score-group" data-group>') == 5
    assert "学习方面" in page and "满分 20 分" in page and "小计" in page
    assert 'name="pledge"' in page and 'name="summary"' in page
    assert 'value="draft"' in page and "保存草稿" in page and 'value="submit"' in page and "提交" in page
    assert 'name="csrf_token"' in page or "csrf" in page  # CSRF hidden field (disabled in tests)
    assert '<script src="/static/js/self_assessment.js' in page
    assert "<script>" not in page and "style=" not in page  # CSP: no inline script or style


def test_save_a_draft_then_submit_then_the_page_is_read_only(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    login(world["tenant"], world["member"])
    first = world["fields"][0]
    page = _text(client.get(_edit_url(world)))
    response = _post(client, world, {first.name: "6.5"}, action="draft", version=_version(page), summary="")
    assert response.status_code == 302 and response.headers["Location"].endswith(_edit_url(world))
    assert _stored(session, world) == (SelfState.DRAFT, {first.name: Decimal("6.50")})
    page = _text(client.get(_edit_url(world)))
    assert "已保存草稿" in page and 'value="6.5"' in page and PLEDGE in page and "草稿" in page
    response = _post(client, world, world["full"], action="submit", version=_version(page))
    assert response.status_code == 302
    state, scores = _stored(session, world)
    assert state is SelfState.SUBMITTED and len(scores) == len(world["fields"])
    page = _text(client.get(_edit_url(world)))
    assert "已提交自评" in page and "已提交" in page
    assert "<form method=\"post\" class=\"stack self-form\"" not in page and 'name="pledge"' not in page
    assert "自评已提交，不能再修改" in page and PLEDGE in page and SUMMARY in page
    # the total by the rules, from the saved scores
    total = sum((field.max - 1 for field in world["fields"]), Decimal(0))
    assert f"合计 {format(total.normalize(), 'f')} 分" in page


def test_submitting_twice_is_refused_with_409(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    login(world["tenant"], world["member"])
    version = _version(_text(client.get(_edit_url(world))))
    assert _post(client, world, world["full"], action="submit", version=version).status_code == 302
    version = str(int(version) + 1)
    again = _post(client, world, {**world["full"], world["fields"][0].name: "0"}, action="submit", version=version)
    assert again.status_code == 409 and "自评已提交" in _text(again)
    assert _stored(session, world)[1][world["fields"][0].name] == world["fields"][0].max - 1


def test_an_incomplete_submission_keeps_everything_typed(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    login(world["tenant"], world["member"])
    first, second = world["fields"][:2]
    version = _version(_text(client.get(_edit_url(world))))
    response = _post(client, world, {first.name: "3.25"}, action="submit", version=version, summary="")
    page = _text(response)
    assert response.status_code == 400
    assert 'value="3.25"' in page and PLEDGE in page
    assert f"请填写{second.label}的分数" in page and "请填写个人总结" in page
    assert 'aria-invalid="true"' in page
    assert _stored(session, world) == (SelfState.PENDING, {})


@pytest.mark.parametrize(("typed", "message"), [("21", "须在 0 到"), ("-1", "须在 0 到"), ("1.005", "最多保留两位小数"),
                                                ("abc", "须为数字")])
def test_a_score_out_of_range_is_shown_back_with_its_message(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session, typed: str, message: str
) -> None:
    login(world["tenant"], world["member"])
    first = world["fields"][0]
    version = _version(_text(client.get(_edit_url(world))))
    response = _post(client, world, {**world["full"], first.name: typed}, action="draft", version=version)
    page = _text(response)
    assert response.status_code == 400
    assert message in page and f'value="{typed}"' in page
    assert _stored(session, world) == (SelfState.PENDING, {})


def test_two_saves_with_the_same_version_the_second_is_told_and_keeps_its_input(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    """The member has the form open on a phone and on a computer; both save."""
    login(world["tenant"], world["member"])
    first = world["fields"][0]
    version = _version(_text(client.get(_edit_url(world))))
    assert _post(client, world, {first.name: "5"}, action="draft", version=version,
                 pledge="手机上写的").status_code == 302
    second = _post(client, world, {first.name: "7"}, action="draft", version=version, pledge="电脑上写的")
    page = _text(second)
    assert second.status_code == 409
    assert "已被他人修改" in page
    assert 'value="7"' in page and "电脑上写的" in page  # what the second person typed, kept
    assert "当前已保存的自评" in page and "手机上写的" in page  # and what is stored now, beside it
    assert _stored(session, world) == (SelfState.DRAFT, {first.name: Decimal("5.00")})
    # the form now carries the current version: saving again is a deliberate overwrite
    again = _post(client, world, {first.name: "7"}, action="draft", version=_version(page), pledge="电脑上写的")
    assert again.status_code == 302
    assert _stored(session, world) == (SelfState.DRAFT, {first.name: Decimal("7.00")})


def test_after_the_deadline_the_form_is_closed(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session, frozen_now: Any
) -> None:
    login(world["tenant"], world["member"])
    version = _version(_text(client.get(_edit_url(world))))
    frozen_now.move(world["round"].self_due_at + dt.timedelta(seconds=1))
    response = _post(client, world, world["full"], action="submit", version=version)
    assert response.status_code == 403 and "自评已截止于" in _text(response)
    page = _text(client.get(_edit_url(world)))
    assert "自评已截止于" in page and 'name="pledge"' not in page
    assert _stored(session, world) == (SelfState.PENDING, {})


def test_after_the_branch_moved_to_the_joint_assessment_the_form_is_closed(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    login(world["tenant"], world["member"])
    version = _version(_text(client.get(_edit_url(world))))
    _set_step(session, world, world["one"], BranchStep.JOINT)
    response = _post(client, world, world["full"], action="draft", version=version)
    assert response.status_code == 403 and "党群联评" in _text(response)
    assert _stored(session, world) == (SelfState.PENDING, {})


def test_a_returned_assessment_shows_the_reason_and_who_entered_it(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session
) -> None:
    with tenant_context(world["tenant"].id):
        evaluation = session.scalar(select(Evaluation).where(Evaluation.id == world["mine"]))
        assert evaluation is not None
        evaluation.self_state = SelfState.RETURNED
        evaluation.return_reason = "请补充承诺践诺的具体事例"
        evaluation.entered_by = "赵书记"
        session.flush()
    login(world["tenant"], world["member"])
    page = _text(client.get(_edit_url(world)))
    assert "请补充承诺践诺的具体事例" in page and "已退回" in page
    assert "本自评由 赵书记 代为录入" in page
    assert 'name="pledge"' in page  # editable again
    mine = _text(client.get(f"{world['base']}/rounds/self/"))
    assert "修改自评" in mine


@pytest.mark.parametrize("who", ["secretary", "branch_committee", "admin", "other_secretary", "committee"])
def test_nobody_else_reaches_a_members_self_assessment(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session, who: str
) -> None:
    login(world["tenant"], world[who])
    assert client.get(_edit_url(world)).status_code == 404
    response = _post(client, world, world["full"], action="submit", version="1")
    assert response.status_code == 404
    assert _stored(session, world) == (SelfState.PENDING, {})


def test_a_member_cannot_open_a_fellow_members_evaluation(
    client: FlaskClient, login: Any, world: dict[str, Any]
) -> None:
    login(world["tenant"], world["member"])
    for member_id, evaluation_id in world["evaluations"].items():
        if member_id == world["ones"][2].id:
            continue
        assert client.get(_edit_url(world, evaluation_id)).status_code == 404
        assert client.post(_edit_url(world, evaluation_id), data={"action": "draft"}).status_code == 404
    assert client.get(_edit_url(world, 987654)).status_code == 404


def test_another_tenants_evaluation_is_not_found(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session, create_tenant: Any, create_org: Any,
    create_member: Any,
) -> None:
    other = create_tenant(slug="round-elsewhere", name="另一个工委")
    branch = create_org(other, OrgKind.BRANCH, name="外区支部")
    create_member(other, branch, name="外区党员")
    with tenant_context(other.id):
        open_round(session, other)
        session.flush()
        foreign = session.scalar(select(Evaluation.id))
    login(world["tenant"], world["member"])
    assert client.get(_edit_url(world, foreign)).status_code == 404
    assert client.get(f"{world['base']}/rounds/card/{foreign}.pdf").status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client: FlaskClient, world: dict[str, Any]) -> None:
    for url in (f"{world['base']}/rounds/self/", _edit_url(world), f"{world['base']}/rounds/mine/"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_form_needs_a_valid_csrf_token(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session, csrf_enabled: None
) -> None:
    page = _text(client.get(f"{world['base']}/login"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    client.post(f"{world['base']}/login", data={"username": "dangyuan", "password": "correct-horse-battery",
                                                 "csrf_token": token.group(1)})
    page = _text(client.get(_edit_url(world)))
    assert 'name="csrf_token"' in page
    response = _post(client, world, world["full"], action="submit", version=_version(page))
    assert response.status_code == 400
    assert _stored(session, world) == (SelfState.PENDING, {})


# --- 我的历次星级 ---------------------------------------------------------------------------------------


@contextmanager
def count_queries(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_my_levels_over_time_newest_first_with_results_only_once_posted(
    client: FlaskClient, login: Any, world: dict[str, Any], session: Session, engine: Engine
) -> None:
    tenant = world["tenant"]
    with tenant_context(tenant.id):
        older = open_round(session, tenant, period_key="2025Q4").round
        oldest = open_round(session, tenant, period_key="2025Q3").round
        session.flush()
        mine = {
            e.round_id: e
            for e in session.scalars(select(Evaluation).where(Evaluation.member_id == world["ones"][2].id))
        }
        mine[older.id].level, mine[older.id].total, mine[older.id].rated = 5, Decimal("93.5"), True
        mine[oldest.id].level, mine[oldest.id].rated, mine[oldest.id].disqualifier = None, False, "unpaid_dues"
        mine[world["round"].id].level, mine[world["round"].id].total = 3, Decimal("75")  # not posted yet
        with seeding():
            older.state = oldest.state = RoundState.CLOSED
        session.flush()
    login(tenant, world["member"])
    url = f"{world['base']}/rounds/mine/"
    client.get(url)  # warm caches (rules per version are cached by the process)
    with count_queries(engine) as statements:
        response = client.get(url)
    page = _text(response)
    assert response.status_code == 200
    positions = [page.index(label) for label in ("2026年第一季度", "2025年第四季度", "2025年第三季度")]
    assert positions == sorted(positions)  # newest first
    main = page[page.index("<main") :]  # not the header (its CSRF token may contain any digits)
    assert "评定中（个人自评）" in main and "75.00" not in main  # the current round's level is not out yet
    assert "五星" in page and "93.50" in page and "不予评星" in page and "第一党支部" in page
    assert f"/rounds/card/{mine[older.id].id}.pdf" in page
    assert f"/rounds/card/{mine[oldest.id].id}.pdf" not in page
    # a fixed number of queries whatever the number of rounds: one more round changes nothing
    with tenant_context(tenant.id):
        open_round(session, tenant, period_key="2025Q2")
        session.flush()
    with count_queries(engine) as more:
        assert client.get(url).status_code == 200
    assert len(more) == len(statements)
    assert sum("member_evaluations" in s for s in statements) == 1  # the one query of the page
