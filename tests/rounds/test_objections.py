"""Answering objections (upheld with a change, or dismissed) and finalising (上报)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.errors import ConflictError, ServiceError
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import core, notice
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    ObjectionState,
    PartKind,
    RoundBranch,
    ScoreStage,
)
from fivestar.tenancy import tenant_context
from tests.rounds.notice_support import add_objection, after_notice, evaluation_of, put_on_notice, scores_for


def _fresh(session: Session, world: dict[str, Any], model: Any, ident: int) -> Any:
    session.expire_all()
    with tenant_context(world["tenant"].id):
        return session.scalar(select(model).where(model.id == ident))


def test_dismissing_needs_a_reason_and_records_the_answer(session: Session, opened: dict[str, Any]) -> None:
    round_branch = put_on_notice(session, opened)
    objection = add_objection(session, opened, round_branch)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ServiceError, match="请写明不予采纳的理由") as refused:
            notice.answer_objection(session, round_branch, objection, upheld=False, reason=" ", version=1)
        assert refused.value.field == "reason"
        notice.answer_objection(
            session, round_branch, objection, upheld=False, reason="经核实，该同志按时参加组织生活", version=1
        )
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "objection.answer"))
    assert objection.state is ObjectionState.DISMISSED
    assert objection.answer == "经核实，该同志按时参加组织生活"
    assert objection.answered_at is not None
    assert event is not None and event.reason == "经核实，该同志按时参加组织生活"
    assert event.before == {"state": "open", "answer": None}


def test_upholding_with_a_change_rescores_the_member_and_records_before_and_after(
    session: Session, opened: dict[str, Any]
) -> None:
    round_branch = put_on_notice(session, opened)
    evaluation = evaluation_of(session, opened, opened["ones"][1])  # 四星
    objection = add_objection(session, opened, round_branch, "钱支委本季度有迟到早退", evaluation)
    with tenant_context(opened["tenant"].id):
        rules = core.round_rules(session, opened["round"])
        new_scores = {**scores_for(rules, 3), (PartKind.BONUS, "district_commendation", ""): Decimal("1.50")}
        change = notice.ResultChange(
            evaluation=evaluation, version=evaluation.version, scores=new_scores,
            bonus_reason="区级表彰", bonus_basis="区委 2026 年 2 月表彰",
        )
        notice.answer_objection(
            session, round_branch, objection, upheld=True, reason="核实属实，效能方面扣分", version=1, change=change
        )
        stored = core.read_scores(session, [evaluation.id], [ScoreStage.FINAL])[(evaluation.id, ScoreStage.FINAL)]
        adjust = session.scalar(select(AuditEvent).where(AuditEvent.action == "evaluation.adjust"))
        answer = session.scalar(select(AuditEvent).where(AuditEvent.action == "objection.answer"))
    assert (evaluation.level, evaluation.total, evaluation.rated) == (3, Decimal("76.50"), True)
    assert evaluation.bonus_reason == "区级表彰"
    assert stored == new_scores
    assert objection.state is ObjectionState.UPHELD
    assert objection.answer == "核实属实，效能方面扣分\n处理结果：钱支委 由“四星”改为“三星”"
    assert adjust is not None and adjust.before is not None and adjust.after is not None
    assert (adjust.before["level"], adjust.after["level"]) == (4, 3)
    assert adjust.before["total"] == "85.00" and adjust.after["total"] == "76.50"
    assert adjust.after["scores"]["bonus.district_commendation"] == "1.50"
    assert "bonus.district_commendation" not in adjust.before["scores"]
    assert adjust.reason == "核实属实，效能方面扣分"
    assert answer is not None and answer.after is not None
    assert (answer.after["level_before"], answer.after["level_after"]) == ("四星", "三星")


def test_upholding_can_decide_not_rated(session: Session, opened: dict[str, Any]) -> None:
    round_branch = put_on_notice(session, opened)
    evaluation = evaluation_of(session, opened, opened["ones"][0])
    objection = add_objection(session, opened, round_branch, evaluation=evaluation)
    with tenant_context(opened["tenant"].id):
        bad = notice.ResultChange(
            evaluation, evaluation.version, {}, disqualifier="no_such_reason", disqualifier_note="x"
        )
        with pytest.raises(ServiceError, match="不予评星的原因"):
            notice.answer_objection(session, round_branch, objection, upheld=True, reason="属实", version=1, change=bad)
        unexplained = notice.ResultChange(evaluation, evaluation.version, {}, disqualifier="absent_from_org_life")
        with pytest.raises(ServiceError, match="具体情况"):
            notice.answer_objection(
                session, round_branch, objection, upheld=True, reason="属实", version=1, change=unexplained
            )
        too_much = notice.ResultChange(
            evaluation, evaluation.version, {(PartKind.ASPECT, "study", "theory"): Decimal(99)}
        )
        with pytest.raises(ServiceError, match="分数不符合评定规则"):
            notice.answer_objection(
                session, round_branch, objection, upheld=True, reason="属实", version=1, change=too_much
            )
        assert objection.state is ObjectionState.OPEN and evaluation.level == 5  # nothing half-written
        change = notice.ResultChange(
            evaluation, evaluation.version, {}, disqualifier="absent_from_org_life", disqualifier_note="三次无故缺席"
        )
        notice.answer_objection(session, round_branch, objection, upheld=True, reason="属实", version=1, change=change)
    assert (evaluation.rated, evaluation.level, evaluation.disqualifier) == (False, None, "absent_from_org_life")
    assert objection.answer is not None and objection.answer.endswith("由“五星”改为“不予评星”")


def test_a_dismissal_cannot_change_results(session: Session, opened: dict[str, Any]) -> None:
    round_branch = put_on_notice(session, opened)
    evaluation = evaluation_of(session, opened, opened["ones"][0])
    objection = add_objection(session, opened, round_branch, evaluation=evaluation)
    with tenant_context(opened["tenant"].id), pytest.raises(ServiceError, match="不予采纳的异议不能更改"):
        notice.answer_objection(
            session, round_branch, objection, upheld=False, reason="不属实", version=1,
            change=notice.ResultChange(evaluation, evaluation.version, {}),
        )


def test_a_stale_or_second_answer_is_a_conflict(session: Session, opened: dict[str, Any]) -> None:
    round_branch = put_on_notice(session, opened)
    objection = add_objection(session, opened, round_branch)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ConflictError):
            notice.answer_objection(session, round_branch, objection, upheld=False, reason="不属实", version=0)
        with pytest.raises(ConflictError):
            notice.answer_objection(session, round_branch, objection, upheld=False, reason="不属实", version=None)
        notice.answer_objection(session, round_branch, objection, upheld=False, reason="不属实", version=1)
        # a second person who opened the same form (version 1) is told, and nothing is overwritten
        with pytest.raises(ConflictError, match="已由他人答复"):
            notice.answer_objection(session, round_branch, objection, upheld=True, reason="属实", version=1)
    assert (objection.state, objection.answer) == (ObjectionState.DISMISSED, "不属实")


def test_a_stale_member_result_is_a_conflict_and_the_objection_stays_open(
    session: Session, opened: dict[str, Any]
) -> None:
    round_branch = put_on_notice(session, opened)
    evaluation = evaluation_of(session, opened, opened["ones"][0])
    objection = add_objection(session, opened, round_branch, evaluation=evaluation)
    with tenant_context(opened["tenant"].id):
        change = notice.ResultChange(
            evaluation, evaluation.version - 1, scores_for(core.round_rules(session, opened["round"]), 2)
        )
        with pytest.raises(ConflictError):
            notice.answer_objection(
                session, round_branch, objection, upheld=True, reason="属实", version=1, change=change
            )
    stored = _fresh(session, opened, Evaluation, evaluation.id)
    assert stored.level == 5
    assert objection.state is ObjectionState.OPEN


def test_objections_are_answered_only_during_the_notice(session: Session, opened: dict[str, Any]) -> None:
    round_branch = put_on_notice(session, opened)
    objection = add_objection(session, opened, round_branch)
    with tenant_context(opened["tenant"].id):
        with seeding():
            round_branch.step = BranchStep.REVIEW
        session.flush()
        with pytest.raises(ServiceError, match="只有公示阶段"):
            notice.answer_objection(session, round_branch, objection, upheld=False, reason="不属实", version=1)


def test_finalising_waits_for_every_answer_and_the_end_of_the_notice(
    session: Session, opened: dict[str, Any], frozen_now: Any
) -> None:
    round_branch = put_on_notice(session, opened)
    objection = add_objection(session, opened, round_branch)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ServiceError, match="公示期到 4月13日 23:59 结束"):
            notice.finalise(session, round_branch)
        frozen_now.move(after_notice(round_branch))
        with pytest.raises(ServiceError, match="还有 1 条异议未答复"):
            notice.finalise(session, round_branch)
        notice.answer_objection(session, round_branch, objection, upheld=False, reason="不属实", version=1)
        with pytest.raises(ConflictError):
            notice.finalise(session, round_branch, version=round_branch.version - 1)
        notice.finalise(session, round_branch, version=round_branch.version)
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "round_branch.finalise"))
    assert round_branch.step is BranchStep.FINALISED
    assert round_branch.finalised_at == frozen_now.at
    assert event is not None and event.after is not None and event.after["step"] == "finalised"
    with tenant_context(opened["tenant"].id), pytest.raises(ServiceError, match="当前处于“已上报”阶段"):
        notice.finalise(session, round_branch)


def test_finalising_a_branch_still_reviewing_is_refused(session: Session, opened: dict[str, Any]) -> None:
    with tenant_context(opened["tenant"].id):
        round_branch = session.scalar(select(RoundBranch).where(RoundBranch.branch_id == opened["two"].id))
        assert round_branch is not None
        with pytest.raises(ServiceError, match="个人自评"):
            notice.finalise(session, round_branch)
