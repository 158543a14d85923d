"""Closing a round (every branch reported; every member scored set-based) and extending deadlines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.errors import ConflictError, ServiceError
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import core, workflow
from fivestar.member_rounds.closing import close_round, extend_deadline
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationStatus,
    MemberRound,
    PartKind,
    RoundBranch,
    RoundState,
    ScoreStage,
)
from fivestar.member_rounds.scoring import score_round
from fivestar.tenancy import tenant_context

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")


def set_steps(session: Session, member_round: MemberRound, *steps: BranchStep) -> list[RoundBranch]:
    branches = list(
        session.scalars(select(RoundBranch).where(RoundBranch.round_id == member_round.id).order_by(RoundBranch.id))
    )
    for branch, step in zip(branches, steps, strict=True):
        with seeding():
            branch.step = step
    session.flush()
    return branches


def evaluations(session: Session, member_round: MemberRound) -> list[Evaluation]:
    statement = select(Evaluation).where(Evaluation.round_id == member_round.id).order_by(Evaluation.id)
    return list(session.scalars(statement))


def aspect_scores(rules: Any, per_aspect: Decimal) -> dict[core.FieldKey, Decimal]:
    """Every criterion of every aspect filled so that each aspect totals `per_aspect`."""
    out: dict[core.FieldKey, Decimal] = {}
    for part in rules.member.scheme.parts():
        left = per_aspect
        for criterion in part.criteria:
            take = min(left, criterion.points)
            out[(PartKind.ASPECT, part.key, criterion.key)] = take
            left -= take
    return out


def events(session: Session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# --- closing ---------------------------------------------------------------------------------------


def test_closing_is_refused_until_every_branch_has_reported(session: Session, opened: dict[str, Any]) -> None:
    member_round = opened["round"]
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ServiceError) as info:
            close_round(session, member_round)
        assert info.value.message == "还有 2 个支部尚未上报（个人自评 2 个），全部上报后才能结束本轮评定"
        set_steps(session, member_round, BranchStep.NOTICE, BranchStep.FINALISED)
        with pytest.raises(ServiceError, match=r"还有 1 个支部尚未上报（公示 1 个）"):
            close_round(session, member_round)
        set_steps(session, member_round, BranchStep.JOINT, BranchStep.REVIEW)
        with pytest.raises(ServiceError, match=r"还有 2 个支部尚未上报（党群联评 1 个、支部审评 1 个）"):
            close_round(session, member_round)
        assert member_round.state is RoundState.OPEN and member_round.closed_at is None


def test_closing_scores_every_member_and_closes(session: Session, opened: dict[str, Any], frozen_now: Any) -> None:
    member_round = opened["round"]
    tenant = opened["tenant"]
    with tenant_context(tenant.id):
        rules = core.round_rules(session, member_round)
        rows = evaluations(session, member_round)
        ids = [e.id for e in rows]
        # 19 per aspect = 95 (五星), 16 = 80 (四星), 14 = 70 (三星), 10 = 50 (二星); one 不予评星; one no scores.
        values = dict(zip(ids, [aspect_scores(rules, D(v)) for v in (19, 16, 14, 10, 19)], strict=False))
        core.write_scores(session, ids, ScoreStage.FINAL, values)
        session.execute(update(Evaluation).where(Evaluation.id == ids[4]).values(disqualifier="unpaid_dues")
                        .execution_options(synchronize_session=False))
        set_steps(session, member_round, BranchStep.FINALISED, BranchStep.FINALISED)
        frozen_now.move(dt.datetime(2026, 5, 20, 10, 0, tzinfo=SHANGHAI))
        closed = close_round(session, member_round)
        assert closed.changed == 5  # the member with nothing entered stays unscored
        assert member_round.state is RoundState.CLOSED
        assert member_round.closed_at == dt.datetime(2026, 5, 20, 2, 0, tzinfo=dt.UTC)
        got = {e.id: (e.total, e.level, e.rated) for e in evaluations(session, member_round)}
        assert [got[i] for i in ids] == [
            (D(95), 5, True), (D(80), 4, True), (D(70), 3, True), (D(50), 2, True), (D(95), None, False),
            (None, None, None),
        ]
        [event] = events(session, "member_round.close")
        assert event.before == {"state": "open", "closed_at": None}
        assert event.after is not None
        assert event.after["levels"] == {"5": 1, "4": 1, "3": 1, "2": 1, "not_rated": 1, "unscored": 1}
        assert (event.after["state"], event.after["branches"], event.after["changed"]) == ("closed", 2, 5)

        # Nothing changes in a closed round.
        with pytest.raises(ServiceError, match="本轮评定已结束"):
            close_round(session, member_round)
        with pytest.raises(ServiceError, match="本轮评定已结束"):
            score_round(session, member_round)
        with pytest.raises(ServiceError, match="本轮评定已结束"):
            extend_deadline(session, member_round, "review", dt.date(2026, 6, 1), "晚了")


def test_withdrawn_members_are_not_scored_on_closing(session: Session, opened: dict[str, Any]) -> None:
    member_round = opened["round"]
    with tenant_context(opened["tenant"].id):
        rules = core.round_rules(session, member_round)
        rows = evaluations(session, member_round)
        core.write_scores(session, [rows[0].id], ScoreStage.FINAL, {rows[0].id: aspect_scores(rules, D(18))})
        rows[0].status = EvaluationStatus.WITHDRAWN
        session.flush()
        set_steps(session, member_round, BranchStep.FINALISED, BranchStep.FINALISED)
        assert close_round(session, member_round).changed == 0  # nobody active has scores
        session.refresh(rows[0])
        assert rows[0].total is None


def test_a_concurrent_change_of_the_round_is_a_conflict(session: Session, opened: dict[str, Any]) -> None:
    member_round = opened["round"]
    with tenant_context(opened["tenant"].id):
        set_steps(session, member_round, BranchStep.FINALISED, BranchStep.FINALISED)
        # Someone else saved the round meanwhile (its version moved on).
        session.execute(update(MemberRound).where(MemberRound.id == member_round.id)
                        .values(version=MemberRound.version + 1).execution_options(synchronize_session=False))
        with pytest.raises(ConflictError, match="已被他人修改"):
            close_round(session, member_round)
        # The session is still usable for the refusal page.
        assert session.scalar(select(MemberRound.state).where(MemberRound.id == member_round.id)) is RoundState.OPEN


# --- extending a deadline --------------------------------------------------------------------------


def test_the_committee_extends_a_deadline_with_a_reason(session: Session, opened: dict[str, Any]) -> None:
    member_round = opened["round"]
    before = member_round.self_due_at
    version = member_round.version
    with tenant_context(opened["tenant"].id):
        new_day = before.astimezone(SHANGHAI).date() + dt.timedelta(days=2)
        extend_deadline(session, member_round, "self", new_day, "  五一前出差人员较多  ", version=version)
        local = member_round.self_due_at.astimezone(SHANGHAI)
        assert (local.date(), local.hour, local.minute) == (new_day, 23, 59)
        assert member_round.version == version + 1
        [event] = events(session, "member_round.extend_deadline")
    assert event.reason == "五一前出差人员较多"
    assert event.before == {"step": "self", "self_due_at": before.isoformat()}
    assert event.after == {"step": "self", "self_due_at": member_round.self_due_at.isoformat()}


def test_an_extended_deadline_is_what_the_workflow_checks(
    session: Session, opened: dict[str, Any], frozen_now: Any
) -> None:
    member_round = opened["round"]
    with tenant_context(opened["tenant"].id):
        [one, _two] = set_steps(session, member_round, BranchStep.REVIEW, BranchStep.REVIEW)
        late = member_round.review_due_at + dt.timedelta(hours=1)
        frozen_now.move(late)
        facts = core.facts_for(session, member_round, one)
        assert workflow.edit_refusal("review", facts) is not None
        day = late.astimezone(SHANGHAI).date() + dt.timedelta(days=1)
        report_day = member_round.report_due_at.astimezone(SHANGHAI).date() if member_round.report_due_at else None
        assert report_day is None or day < report_day
        extend_deadline(session, member_round, "review", day, "支部书记参加集中培训")
        assert workflow.edit_refusal("review", core.facts_for(session, member_round, one)) is None


@pytest.mark.parametrize(
    ("step", "day", "reason", "field", "message"),
    [
        ("self", "past", "原因", "new_day", "已经过去"),
        ("self", "same", "原因", "new_day", "须晚于当前的个人自评截止日期"),
        ("self", "at_joint", "原因", "new_day", "须早于党群联评截止日期"),
        ("self", "next", "  ", "reason", "延长期限须填写原因"),
        ("notice", "next", "原因", "step", "请选择要延期的环节"),
    ],
)
def test_extension_refusals(
    session: Session, opened: dict[str, Any], step: str, day: str, reason: str, field: str, message: str
) -> None:
    member_round = opened["round"]
    self_day = member_round.self_due_at.astimezone(SHANGHAI).date()
    days = {
        "past": dt.date(2026, 4, 6),  # the day before the frozen "today"
        "same": self_day,
        "at_joint": member_round.joint_due_at.astimezone(SHANGHAI).date(),
        "next": self_day + dt.timedelta(days=1),
    }
    before = (member_round.self_due_at, member_round.version)
    with tenant_context(opened["tenant"].id), pytest.raises(ServiceError) as info:
        extend_deadline(session, member_round, step, days[day], reason)
    assert message in info.value.message and info.value.field == field
    assert (member_round.self_due_at, member_round.version) == before


def test_a_step_without_a_deadline_and_a_stale_form(session: Session, opened: dict[str, Any]) -> None:
    member_round = opened["round"]
    with tenant_context(opened["tenant"].id):
        member_round.report_due_at = None
        session.flush()
        with pytest.raises(ServiceError, match="本轮没有“上报名单”期限") as info:
            extend_deadline(session, member_round, "report", dt.date(2026, 6, 30), "原因")
        assert info.value.field == "step"
        with pytest.raises(ConflictError):
            extend_deadline(
                session, member_round, "review", dt.date(2026, 6, 30), "原因", version=member_round.version - 1
            )
