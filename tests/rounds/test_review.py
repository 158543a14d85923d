"""支部审评: final scores defaulting to the joint ones, bonus with its reason and commendation (capped),
不予评星 with a reason from the rules, the level by the rule engine (stored by the set-based scorer,
previewed as the secretary types), optimistic locking per row, and the deadline."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.errors import ConflictError
from fivestar.member_rounds import branch, branch_pages, core
from fivestar.member_rounds.models import BranchStep, Evaluation, ScoreStage
from fivestar.tenancy import tenant_context
from tests.conftest import TEST_PASSWORD
from tests.rounds.branch_support import (
    after,
    context,
    evaluations,
    review_post,
    round_branch,
    scores_for,
    stage_scores,
    text,
    url,
    walk_to,
)

D = Decimal


@pytest.fixture
def review(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    """Branch one at 支部审评 with joint totals 95 / 82 / 60 (赵书记, 钱支委, 孙党员)."""
    ones = opened["ones"]
    walk_to(session, opened, BranchStep.REVIEW, totals={ones[0].id: 95, ones[1].id: 82, ones[2].id: 60})
    return opened


def _stored(session: Session, world: dict[str, Any]) -> list[Evaluation]:
    with tenant_context(world["tenant"].id):
        rows = evaluations(session, world)
        for row in rows:
            session.refresh(row)
        return rows


def _save(session: Session, world: dict[str, Any], post: dict[str, str]) -> int:
    with tenant_context(world["tenant"].id):
        saved = branch.save_review(session, context(session, world), post)
        session.flush()
        return saved


def test_final_scores_default_to_the_joint_scores(session: Session, review: dict[str, Any]) -> None:
    with tenant_context(review["tenant"].id):
        grid = branch_pages.review_grid(session, context(session, review))
    fields = grid.fields
    assert [f.name for f in grid.bonus_fields] == ["bonus.district_commendation", "bonus.city_commendation"]
    for row, total in zip(grid.rows, (95, 82, 60), strict=True):
        assert {f.name: row.values[f.name] for f in fields} == scores_for(fields, total)
        assert row.reference == scores_for(fields, total)
        assert row.result is not None and row.result.total == total
    assert [row.result.label for row in grid.rows if row.result] == ["五星", "四星", "二星"]


def test_saving_stores_levels_by_the_rule_engine(session: Session, review: dict[str, Any]) -> None:
    ones = review["ones"]
    assert _save(session, review, review_post(session, review, {ones[0].id: 95, ones[1].id: 82, ones[2].id: 60})) == 3
    stored = _stored(session, review)
    assert [(e.total, e.level, e.rated) for e in stored] == [(D(95), 5, True), (D(82), 4, True), (D(60), 2, True)]
    assert all(e.scored_at is not None for e in stored)
    assert sum(stage_scores(session, review, stored[1].id, ScoreStage.FINAL).values()) == 82
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "evaluation.review")))
    assert len(events) == 3
    by_id = {e.object_id: e for e in events}
    assert by_id[str(stored[0].id)].after["level"] == 5 and by_id[str(stored[0].id)].before["level"] is None
    assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "member_round.score")) is not None
    # the evaluator and the stored result agree for every row
    rules = context(session, review).rules
    for e in stored:
        scores = stage_scores(session, review, e.id, ScoreStage.FINAL)
        assert core.evaluate(rules, scores, e.disqualifier).level == e.level


def test_a_bonus_needs_its_reason_and_commendation_and_is_capped(session: Session, review: dict[str, Any]) -> None:
    ones = review["ones"]
    bonus = {"bonus.district_commendation": "2", "bonus.city_commendation": "5"}
    post = review_post(session, review, {ones[0].id: 80}, extra={ones[0].id: bonus})
    with tenant_context(review["tenant"].id), pytest.raises(branch.GridError) as refused:
        branch.save_review(session, context(session, review), post)
    first = evaluations(session, review)[0].id
    assert set(refused.value.errors) == {(first, "bonus_reason"), (first, "bonus_basis")}
    assert "表彰" in refused.value.errors[(first, "bonus_basis")]
    extra = {**bonus, "bonus_reason": "抗洪抢险表现突出", "bonus_basis": "市委表彰决定（2026年2月）"}
    _save(session, review, review_post(session, review, {ones[0].id: 80}, extra={ones[0].id: extra}))
    stored = _stored(session, review)[0]
    # 80 + bonus 7 asked, capped at 5
    assert (stored.total, stored.level) == (D(85), 4)
    assert (stored.bonus_reason, stored.bonus_basis) == ("抗洪抢险表现突出", "市委表彰决定（2026年2月）")
    with tenant_context(review["tenant"].id):
        grid = branch_pages.review_grid(session, context(session, review))
    row = grid.rows[0]
    assert row.values["bonus.city_commendation"] == "5"
    assert row.result is not None and row.result.bonus_capped
    assert any("超过上限" in reason.zh for reason in row.result.reasons)


def test_a_bonus_above_its_reasons_maximum_is_a_cell_error(session: Session, review: dict[str, Any]) -> None:
    ones = review["ones"]
    extra = {"bonus.district_commendation": "3", "bonus_reason": "r", "bonus_basis": "b"}
    post = review_post(session, review, extra={ones[1].id: extra})
    with tenant_context(review["tenant"].id), pytest.raises(branch.GridError) as refused:
        branch.save_review(session, context(session, review), post)
    second = evaluations(session, review)[1].id
    assert list(refused.value.errors) == [(second, "bonus.district_commendation")]
    assert all(e.total is None for e in _stored(session, review))


def test_not_rated_needs_a_reason_from_the_rules_and_a_note(session: Session, review: dict[str, Any]) -> None:
    ones = review["ones"]
    third = evaluations(session, review)[2].id
    bad_key = review_post(session, review, extra={ones[2].id: {"disqualifier": "made_up"}})
    with tenant_context(review["tenant"].id), pytest.raises(branch.GridError) as refused:
        branch.save_review(session, context(session, review), bad_key)
    assert refused.value.errors == {(third, "disqualifier"): "请从列表中选择不予评星的原因"}
    no_note = review_post(session, review, extra={ones[2].id: {"disqualifier": "unpaid_dues"}})
    with tenant_context(review["tenant"].id), pytest.raises(branch.GridError) as refused:
        branch.save_review(session, context(session, review), no_note)
    assert list(refused.value.errors) == [(third, "disqualifier_note")]
    # a member not rated needs no scores
    post = review_post(session, review, extra={ones[2].id: {"disqualifier": "unpaid_dues",
                                                            "disqualifier_note": "连续六个月未交党费"}})
    fields = core.score_fields(context(session, review).rules)
    for f in fields:
        post.pop(branch.cell_name(third, f.name))
    _save(session, review, post)
    stored = _stored(session, review)[2]
    assert (stored.rated, stored.level, stored.disqualifier, stored.disqualifier_note) == (
        False, None, "unpaid_dues", "连续六个月未交党费",
    )
    facts = context(session, review).facts
    assert facts.unscored == 0


def test_the_review_is_closed_after_its_deadline_and_outside_its_step(
    session: Session, review: dict[str, Any], frozen_now: Any
) -> None:
    post = review_post(session, review)
    frozen_now.move(after(review["round"].review_due_at))
    with tenant_context(review["tenant"].id):
        assert "支部审评已截止于" in (branch_pages.review_grid(session, context(session, review)).refusal or "")
        with pytest.raises(ConflictError, match="支部审评已截止于"):
            branch.save_review(session, context(session, review), post)
        with pytest.raises(ConflictError, match="不能保存支部审评"):
            branch.save_review(session, context(session, review, "two"), {})
    assert all(e.total is None for e in _stored(session, review))


# --- the page --------------------------------------------------------------------------------------


def _form(page: str) -> dict[str, str]:
    """What a browser posts from the review page: inputs as rendered, selects as selected."""
    form = dict(re.findall(r'<input[^>]*name="(r\d+\.[^"]+)"[^>]*value="([^"]*)"', page, flags=re.S))
    for name, body in re.findall(r'<textarea[^>]*name="(r\d+\.[^"]+)"[^>]*>([^<]*)</textarea>', page, flags=re.S):
        form[name] = body
    for name, options in re.findall(r'<select[^>]*name="(r\d+\.[^"]+)"[^>]*>(.*?)</select>', page, flags=re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        form[name] = chosen.group(1) if chosen else ""
    return form


def _second_client(app: Flask, world: dict[str, Any], account: Any) -> FlaskClient:
    other = app.test_client()
    response = other.post(f"/t/{world['tenant'].slug}/login", data={"username": account.username,
                                                                    "password": TEST_PASSWORD})
    assert response.status_code == 302
    return other


def test_the_page_shows_levels_and_loads_the_preview_script(
    session: Session, client: FlaskClient, login: Any, review: dict[str, Any]
) -> None:
    rb = round_branch(session, review)
    login(review["tenant"], review["secretary"])
    page = text(client.get(url(review, f"/{rb.id}/review")))
    assert f'data-preview-url="/t/{review["tenant"].slug}/rounds/branch/{rb.id}/preview"' in page
    assert '<script src="/static/js/review.js" defer></script>' in page
    assert "联评 " in page and "五星" in page and "四星" in page
    assert 'class="table responsive score-grid"' in page and 'data-label="星级"' in page
    form = _form(page)
    first = evaluations(session, review)[0]
    form[branch.cell_name(first.id, "disqualifier")] = "absent_from_org_life"
    form[branch.cell_name(first.id, "disqualifier_note")] = "全年缺席组织生活"
    response = client.post(url(review, f"/{rb.id}/review"), data=form)
    assert response.status_code == 302
    shown = text(client.get(url(review, f"/{rb.id}/review")))
    assert "不予评星" in shown and 'value="absent_from_org_life" selected' in shown
    assert [e.rated for e in _stored(session, review)] == [False, True, True]


def test_two_secretaries_saving_at_once_one_wins_the_other_is_told_and_keeps_their_input(
    app: Flask, session: Session, client: FlaskClient, login: Any, review: dict[str, Any]
) -> None:
    rb = round_branch(session, review)
    login(review["tenant"], review["secretary"])
    other = _second_client(app, review, review["branch_committee"])
    mine = _form(text(client.get(url(review, f"/{rb.id}/review"))))
    theirs = _form(text(other.get(url(review, f"/{rb.id}/review"))))
    ones = evaluations(session, review)
    fields = core.score_fields(context(session, review).rules)
    cell = branch.cell_name(ones[1].id, fields[0].name)
    mine[cell] = "1"
    theirs[cell] = "2.5"
    theirs[branch.cell_name(ones[2].id, "disqualifier_note")] = "我输入的说明"
    assert client.post(url(review, f"/{rb.id}/review"), data=mine).status_code == 302
    lost = other.post(url(review, f"/{rb.id}/review"), data=theirs)
    body = text(lost)
    assert lost.status_code == 409
    assert "以下党员的评定在您打开本页后已被他人保存：赵书记、钱支委、孙党员。本次未保存任何内容" in body
    assert body.count('class="stale') == 3  # each row is marked
    assert f'name="{cell}"' in body and 'value="2.5"' in body and "我输入的说明" in body  # nothing typed is lost
    stored = stage_scores(session, review, ones[1].id, ScoreStage.FINAL)
    assert stored[fields[0].key] == D(1)  # the first save stands
    # reloading shows the winner's values, and saving then works
    again = _form(text(other.get(url(review, f"/{rb.id}/review"))))
    assert again[cell] == "1"
    assert other.post(url(review, f"/{rb.id}/review"), data=again).status_code == 302


def test_a_wrong_cell_on_the_page_is_a_400_beside_the_cell(
    session: Session, client: FlaskClient, login: Any, review: dict[str, Any]
) -> None:
    rb = round_branch(session, review)
    login(review["tenant"], review["secretary"])
    form = _form(text(client.get(url(review, f"/{rb.id}/review"))))
    ones = evaluations(session, review)
    fields = core.score_fields(context(session, review).rules)
    cell = branch.cell_name(ones[0].id, fields[1].name)
    form[cell] = "-1"
    response = client.post(url(review, f"/{rb.id}/review"), data=form)
    assert response.status_code == 400
    assert f'id="{cell}-error"' in text(response) and 'value="-1"' in text(response)
    assert all(e.total is None for e in _stored(session, review))


def test_the_review_page_after_the_deadline_refuses_saving(
    session: Session, client: FlaskClient, login: Any, review: dict[str, Any], frozen_now: Any
) -> None:
    rb = round_branch(session, review)
    login(review["tenant"], review["secretary"])
    form = _form(text(client.get(url(review, f"/{rb.id}/review"))))
    frozen_now.move(after(review["round"].review_due_at))
    response = client.post(url(review, f"/{rb.id}/review"), data=form)
    assert response.status_code == 409 and "支部审评已截止于 4月28日" in text(response)
    assert all(e.total is None for e in _stored(session, review))


# --- the live preview ------------------------------------------------------------------------------


def _row(session: Session, world: dict[str, Any], total: int, **extra: str) -> dict[str, str]:
    fields = core.score_fields(context(session, world).rules)
    return {**scores_for(fields, total), **extra}


def test_preview_answers_the_level_as_json(
    session: Session, client: FlaskClient, login: Any, review: dict[str, Any]
) -> None:
    rb = round_branch(session, review)
    login(review["tenant"], review["secretary"])
    response = client.post(url(review, f"/{rb.id}/preview"), data=_row(session, review, 88),
                           headers={"Accept": "application/json"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert json.loads(response.get_data()) == {
        "ok": True, "errors": {}, "total": "88", "level": 4, "rated": True, "label": "四星",
        "bonus_capped": False, "bonus_applied": "0", "reasons": [],
    }
    capped = json.loads(client.post(url(review, f"/{rb.id}/preview"), data=_row(
        session, review, 88, **{"bonus.district_commendation": "2", "bonus.city_commendation": "5"})).get_data())
    assert (capped["total"], capped["label"], capped["bonus_capped"]) == ("93", "五星", True)
    out = json.loads(client.post(url(review, f"/{rb.id}/preview"), data=_row(
        session, review, 88, disqualifier="unpaid_dues")).get_data())
    assert (out["label"], out["rated"], out["level"]) == ("不予评星", False, None)
    bad = json.loads(client.post(url(review, f"/{rb.id}/preview"), data={"aspect.study.theory": "x"}).get_data())
    assert bad["ok"] is False and "须为数字" in bad["errors"]["aspect.study.theory"]
    # nothing was saved
    assert all(e.total is None for e in _stored(session, review))


def test_preview_is_for_the_branch_only(
    session: Session, client: FlaskClient, login: Any, review: dict[str, Any]
) -> None:
    rb = round_branch(session, review)
    for who in ("member", "other_secretary", "inspector"):
        client.delete_cookie("fivestar_session")
        login(review["tenant"], review[who])
        response = client.post(url(review, f"/{rb.id}/preview"), data=_row(session, review, 88),
                               headers={"Accept": "application/json"})
        assert response.status_code == 404, who
        assert "label" not in json.loads(response.get_data())


def test_preview_needs_the_pages_csrf_token(
    session: Session, client: FlaskClient, review: dict[str, Any], csrf_enabled: None
) -> None:
    rb = round_branch(session, review)
    slug = review["tenant"].slug
    token = text(client.get(f"/t/{slug}/login")).split('name="csrf_token" value="')[1].split('"')[0]
    client.post(f"/t/{slug}/login", data={"username": "shuji", "password": TEST_PASSWORD, "csrf_token": token})
    page = text(client.get(url(review, f"/{rb.id}/review")))
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    refused = client.post(url(review, f"/{rb.id}/preview"), data=_row(session, review, 88),
                          headers={"Accept": "application/json"})
    assert refused.status_code == 400
    allowed = client.post(url(review, f"/{rb.id}/preview"), data=_row(session, review, 88),
                          headers={"Accept": "application/json", "X-CSRFToken": token})
    assert allowed.status_code == 200 and json.loads(allowed.get_data())["label"] == "四星"


def test_saving_again_from_the_same_page_is_stale(session: Session, review: dict[str, Any]) -> None:
    """Each row carries the version it was shown with: the page's second save is refused whole."""
    post = review_post(session, review)
    _save(session, review, post)
    with tenant_context(review["tenant"].id), pytest.raises(branch.StaleRowsError) as refused:
        branch.save_review(session, context(session, review), post)
    assert refused.value.names == ["赵书记", "钱支委", "孙党员"]
