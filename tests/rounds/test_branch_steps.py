"""The branch's steps: start_joint, start_review, submit_notice, and returning or entering a member's
self-assessment — each allowed, refused with the workflow's Chinese reason (409, nothing changed),
audited; and who may take them (other branch, other roles, other tenant)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.audit.models import AuditEvent
from fivestar.errors import ConflictError, ServiceError
from fivestar.member_rounds import branch, core
from fivestar.member_rounds.models import BranchStep, Evaluation, RoundBranch, ScoreStage, SelfState
from fivestar.rules.schedule import public_notice_end
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.rounds.branch_support import (
    after,
    context,
    enter_all_self,
    evaluations,
    record_meeting,
    round_branch,
    save_joint,
    save_review,
    scores_for,
    stage_scores,
    take,
    text,
    url,
    walk_to,
)

BEIJING = ZoneInfo("Asia/Shanghai")


def _events(session: Session, world: dict[str, Any], action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.tenant_id == world["tenant"].id, AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
    )


def _step(session: Session, world: dict[str, Any], key: str = "one") -> BranchStep:
    with tenant_context(world["tenant"].id):
        rb = session.scalar(
            select(RoundBranch).where(RoundBranch.round_id == world["round"].id, RoundBranch.branch_id == world[key].id)
        )
        assert rb is not None
        session.refresh(rb)
        return rb.step


# --- start_joint -----------------------------------------------------------------------------------


def test_start_joint_is_refused_while_self_assessments_are_pending_before_the_deadline(
    session: Session, opened: dict[str, Any]
) -> None:
    ctx = context(session, opened)
    with tenant_context(opened["tenant"].id), pytest.raises(ConflictError, match="还有 3 名党员未提交自评"):
        branch.take_step(session, ctx, "start_joint")
    assert _step(session, opened) is BranchStep.SELF


def test_start_joint_goes_ahead_once_everyone_submitted(session: Session, opened: dict[str, Any]) -> None:
    enter_all_self(session, opened)
    with audit.acting_as(audit.Actor("account", 1, "赵书记")):
        take(session, opened, "start_joint")
    assert _step(session, opened) is BranchStep.JOINT
    [event] = _events(session, opened, "round_branch.start_joint")
    assert (event.before["step"], event.after["step"], event.actor_name) == ("self", "joint", "赵书记")


def test_start_joint_after_the_self_deadline_goes_ahead_with_pending_members(
    session: Session, opened: dict[str, Any], frozen_now: Any
) -> None:
    frozen_now.move(after(opened["round"].self_due_at))
    take(session, opened, "start_joint")
    assert _step(session, opened) is BranchStep.JOINT


def test_start_joint_after_the_joint_deadline_is_refused(
    session: Session, opened: dict[str, Any], frozen_now: Any
) -> None:
    frozen_now.move(after(opened["round"].joint_due_at))
    with tenant_context(opened["tenant"].id), pytest.raises(ConflictError, match="党群联评已截止于 4月21日"):
        branch.take_step(session, context(session, opened), "start_joint")


def test_an_unknown_or_foreign_transition_is_refused(session: Session, opened: dict[str, Any]) -> None:
    ctx = context(session, opened)
    with tenant_context(opened["tenant"].id):
        for name in ("finalise", "return", "jump"):
            with pytest.raises(ServiceError):
                branch.take_step(session, ctx, name)


# --- start_review ----------------------------------------------------------------------------------


def test_start_review_needs_the_meeting_and_every_members_joint_scores(
    session: Session, opened: dict[str, Any]
) -> None:
    walk_to(session, opened, BranchStep.JOINT)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ConflictError, match="尚未记录党群联评会议"):
            branch.take_step(session, context(session, opened), "start_review")
        record_meeting(session, opened)
        with pytest.raises(ConflictError, match="还有 3 名党员没有党群联评分数"):
            branch.take_step(session, context(session, opened), "start_review")
    save_joint(session, opened)
    take(session, opened, "start_review")
    assert _step(session, opened) is BranchStep.REVIEW


def test_start_review_after_the_joint_deadline_is_refused(
    session: Session, opened: dict[str, Any], frozen_now: Any
) -> None:
    walk_to(session, opened, BranchStep.JOINT)
    record_meeting(session, opened)
    save_joint(session, opened)
    frozen_now.move(after(opened["round"].joint_due_at))
    with tenant_context(opened["tenant"].id), pytest.raises(ConflictError, match="党群联评已截止"):
        branch.take_step(session, context(session, opened), "start_review")


# --- submit_notice ---------------------------------------------------------------------------------


def test_submit_notice_with_unscored_members_is_refused(session: Session, opened: dict[str, Any]) -> None:
    walk_to(session, opened, BranchStep.REVIEW)
    with tenant_context(opened["tenant"].id), pytest.raises(ConflictError, match="还有 3 名党员未完成审评"):
        branch.take_step(session, context(session, opened), "submit_notice")
    assert _step(session, opened) is BranchStep.REVIEW


def test_submit_notice_after_the_review_deadline_is_refused(
    session: Session, opened: dict[str, Any], frozen_now: Any
) -> None:
    walk_to(session, opened, BranchStep.REVIEW)
    save_review(session, opened)
    frozen_now.move(after(opened["round"].review_due_at))
    with tenant_context(opened["tenant"].id), pytest.raises(ConflictError, match="支部审评已截止于 4月28日"):
        branch.take_step(session, context(session, opened), "submit_notice")


def test_submit_notice_starts_the_notice_with_an_unguessable_link(session: Session, opened: dict[str, Any]) -> None:
    walk_to(session, opened, BranchStep.NOTICE)
    other = round_branch(session, opened, "two")
    rb = round_branch(session, opened)
    assert rb.step is BranchStep.NOTICE
    assert rb.notice_token is not None and len(rb.notice_token) >= 32
    assert other.notice_token is None
    assert rb.notice_started_at == clock.now()
    ctx = context(session, opened)
    last_day = public_notice_end(ctx.rules, dt.date(2026, 4, 7), is_working_day=clock.is_working_day)
    # 5 working days counting the first: 7, 8, 9, 10 and 13 April 2026 (a weekend in between).
    assert last_day == dt.date(2026, 4, 13)
    ends = rb.notice_ends_at
    assert ends is not None
    local = ends.astimezone(BEIJING)
    assert (local.date(), local.hour, local.minute) == (dt.date(2026, 4, 13), 23, 59)
    [event] = _events(session, opened, "round_branch.submit_notice")
    assert event.after["step"] == "notice" and event.after["notice_ends_at"]


def test_a_second_branch_gets_a_different_link(session: Session, opened: dict[str, Any]) -> None:
    walk_to(session, opened, BranchStep.NOTICE)
    walk_to(session, opened, BranchStep.NOTICE, key="two")
    assert round_branch(session, opened).notice_token != round_branch(session, opened, "two").notice_token


# --- return and enter self-assessments -------------------------------------------------------------


def test_returning_a_submitted_self_assessment_needs_a_reason_and_is_audited(
    session: Session, opened: dict[str, Any]
) -> None:
    enter_all_self(session, opened)
    evaluation = evaluations(session, opened)[2]
    ctx = context(session, opened)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ServiceError, match="请填写退回原因") as refused:
            branch.return_self(session, ctx, evaluation, "  ", evaluation.version)
        assert refused.value.field == "reason"
        with pytest.raises(ConflictError):  # a form opened before the last save
            branch.return_self(session, ctx, evaluation, "分数偏高", evaluation.version - 1)
        branch.return_self(session, ctx, evaluation, "承诺践诺情况写得太简略", evaluation.version)
        session.flush()
    assert (evaluation.self_state, evaluation.return_reason) == (SelfState.RETURNED, "承诺践诺情况写得太简略")
    [event] = _events(session, opened, "evaluation.self_return")
    assert (event.before["self_state"], event.after["self_state"], event.reason) == (
        "submitted", "returned", "承诺践诺情况写得太简略",
    )


def test_a_pending_self_assessment_cannot_be_returned(session: Session, opened: dict[str, Any]) -> None:
    evaluation = evaluations(session, opened)[2]
    with tenant_context(opened["tenant"].id), pytest.raises(ConflictError, match="自评尚未提交"):
        branch.return_self(session, context(session, opened), evaluation, "原因", evaluation.version)


def test_entering_for_a_member_records_who_entered_it(session: Session, opened: dict[str, Any]) -> None:
    evaluation = evaluations(session, opened)[2]
    ctx = context(session, opened)
    fields = core.score_fields(ctx.rules)
    form = {**scores_for(fields, 85), "pledge": "按时完成承诺事项", "summary": "认真学习"}
    with tenant_context(opened["tenant"].id), audit.acting_as(audit.Actor("account", 9, "赵书记")):
        branch.enter_self(session, ctx, evaluation, form, evaluation.version)
        session.flush()
    assert evaluation.self_state is SelfState.SUBMITTED
    assert evaluation.entered_by == "赵书记"
    assert evaluation.self_submitted_at == clock.now()
    scores = stage_scores(session, opened, evaluation.id, ScoreStage.SELF)
    assert sum(scores.values()) == 85 and len(scores) == len(fields)


def test_entering_checks_every_score_and_writes_nothing_when_one_is_wrong(
    session: Session, opened: dict[str, Any]
) -> None:
    evaluation = evaluations(session, opened)[2]
    ctx = context(session, opened)
    fields = core.score_fields(ctx.rules)
    form = {**scores_for(fields, 85), "pledge": "p", "summary": "s", fields[0].name: str(fields[0].max + 1)}
    with tenant_context(opened["tenant"].id), pytest.raises(ServiceError) as refused:
        branch.enter_self(session, ctx, evaluation, form, evaluation.version)
    assert fields[0].name in refused.value.errors  # type: ignore[attr-defined]
    assert stage_scores(session, opened, evaluation.id, ScoreStage.SELF) == {}


def test_a_submitted_self_assessment_cannot_be_entered_again_and_review_closes_both(
    session: Session, opened: dict[str, Any]
) -> None:
    walk_to(session, opened, BranchStep.REVIEW)
    evaluation = evaluations(session, opened)[0]
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ConflictError, match="不能再代录或退回"):
            branch.return_self(session, context(session, opened), evaluation, "原因", evaluation.version)
        with pytest.raises(ConflictError):
            branch.enter_self(session, context(session, opened), evaluation, {}, evaluation.version)


# --- the pages -------------------------------------------------------------------------------------


def test_a_refused_step_is_a_409_with_the_reason_on_the_dashboard(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]
) -> None:
    rb = round_branch(session, opened)
    login(opened["tenant"], opened["secretary"])
    page = text(client.get(url(opened, f"/{rb.id}")))
    assert "开始党群联评" in page and "disabled" in page and "还有 3 名党员未提交自评" in page
    response = client.post(url(opened, f"/{rb.id}/step"), data={"transition": "start_joint"})
    assert response.status_code == 409
    assert "还有 3 名党员未提交自评" in text(response)
    assert _step(session, opened) is BranchStep.SELF


def test_steps_through_the_pages(session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]) -> None:
    enter_all_self(session, opened)
    rb = round_branch(session, opened)
    login(opened["tenant"], opened["secretary"])
    response = client.post(url(opened, f"/{rb.id}/step"), data={"transition": "start_joint"})
    assert response.status_code == 302
    assert _step(session, opened) is BranchStep.JOINT
    again = client.post(url(opened, f"/{rb.id}/step"), data={"transition": "start_joint"})
    assert again.status_code == 409 and "当前处于“党群联评”阶段" in text(again)
    [event] = _events(session, opened, "round_branch.start_joint")
    assert event.actor_name == "赵书记"


def test_return_and_enter_pages(session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]) -> None:
    ones = evaluations(session, opened)
    rb = round_branch(session, opened)
    login(opened["tenant"], opened["secretary"])
    fields = core.score_fields(context(session, opened).rules)
    target = ones[2]
    page = client.get(url(opened, f"/evaluations/{target.id}/enter"))
    assert page.status_code == 200 and 'inputmode="decimal"' in text(page)
    bad = {**scores_for(fields, 80), fields[1].name: "abc", "pledge": "p", "summary": "s", "version": "1"}
    refused = client.post(url(opened, f"/evaluations/{target.id}/enter"), data=bad)
    assert refused.status_code == 400
    assert "须为数字" in text(refused) and 'value="abc"' in text(refused)  # the input is kept
    good = {**scores_for(fields, 80), "pledge": "p", "summary": "s", "version": "1"}
    assert client.post(url(opened, f"/evaluations/{target.id}/enter"), data=good).status_code == 302
    with tenant_context(opened["tenant"].id):
        stored = session.scalar(select(Evaluation).where(Evaluation.id == target.id))
        assert stored is not None
        session.refresh(stored)
        assert (stored.self_state, stored.entered_by) == (SelfState.SUBMITTED, "赵书记")
    dashboard = text(client.get(url(opened, f"/{rb.id}")))
    assert "代录" in dashboard
    # returning it: a reason is required
    missing = client.post(url(opened, f"/evaluations/{target.id}/return"), data={"reason": "", "version": "2"})
    assert missing.status_code == 400 and "请填写退回原因" in text(missing)
    done = client.post(url(opened, f"/evaluations/{target.id}/return"), data={"reason": "请补充小结", "version": "2"})
    assert done.status_code == 302
    with tenant_context(opened["tenant"].id):
        session.refresh(stored)
        assert (stored.self_state, stored.return_reason) == (SelfState.RETURNED, "请补充小结")
    assert "请补充小结" in text(client.get(url(opened, f"/{rb.id}")))


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ("secretary", 200),
        ("branch_committee", 200),
        ("admin", 200),
        ("member", 404),
        ("other_secretary", 404),
        ("committee", 404),
        ("inspector", 404),
    ],
)
def test_who_may_run_the_branch(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any], who: str, allowed: int
) -> None:
    rb = round_branch(session, opened)
    target = evaluations(session, opened)[2]
    login(opened["tenant"], opened[who])
    for path in (f"/{rb.id}", f"/{rb.id}/joint", f"/{rb.id}/review", f"/{rb.id}/followups",
                 f"/evaluations/{target.id}/enter", f"/evaluations/{target.id}/return"):
        assert client.get(url(opened, path)).status_code == allowed, (who, path)
    response = client.post(url(opened, f"/{rb.id}/step"), data={"transition": "start_joint"})
    assert response.status_code == (409 if allowed == 200 else allowed)
    assert _step(session, opened) is BranchStep.SELF


def test_another_districts_branch_is_not_found(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any], create_tenant: Any, create_account: Any
) -> None:
    from fivestar.enums import Role

    other = create_tenant(slug="other-district")
    admin = create_account(other, roles=[(Role.TENANT_ADMIN, None)], username="other-admin")
    rb = round_branch(session, opened)
    target = evaluations(session, opened)[0]
    login(other, admin)
    for path in (f"/{rb.id}", f"/{rb.id}/joint", f"/{rb.id}/review", f"/evaluations/{target.id}/enter"):
        assert client.get(f"/t/other-district/rounds/branch{path}").status_code == 404
    response = client.post(f"/t/other-district/rounds/branch/{rb.id}/step", data={"transition": "start_joint"})
    assert response.status_code == 404


def test_steps_need_the_csrf_token(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any], csrf_enabled: None
) -> None:
    enter_all_self(session, opened)
    rb = round_branch(session, opened)
    page = client.get(f"/t/{opened['tenant'].slug}/login")
    token = text(page).split('name="csrf_token" value="')[1].split('"')[0]
    client.post(f"/t/{opened['tenant'].slug}/login",
                data={"username": "shuji", "password": "correct-horse-battery", "csrf_token": token})
    assert client.post(url(opened, f"/{rb.id}/step"), data={"transition": "start_joint"}).status_code == 400
    assert _step(session, opened) is BranchStep.SELF
    dashboard = text(client.get(url(opened, f"/{rb.id}")))
    token = dashboard.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post(url(opened, f"/{rb.id}/step"), data={"transition": "start_joint", "csrf_token": token})
    assert response.status_code == 302
    assert _step(session, opened) is BranchStep.JOINT
