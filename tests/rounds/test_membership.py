"""Members joining, leaving and moving while a round is open, through the people services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import core, membership
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationScore,
    EvaluationStatus,
    MemberRound,
    PartKind,
    RoundBranch,
    RoundState,
    ScoreStage,
    SelfState,
)
from fivestar.member_rounds.scoring import score_round
from fivestar.people import services as people
from fivestar.people.models import Member
from fivestar.tenancy import tenant_context

D = Decimal


def round_branch(session: Session, member_round: MemberRound, branch: Any) -> RoundBranch:
    found = session.scalar(
        select(RoundBranch).where(RoundBranch.round_id == member_round.id, RoundBranch.branch_id == branch.id)
    )
    assert found is not None
    return found


def evaluation_of(session: Session, member_round: MemberRound, member: Member) -> Evaluation | None:
    session.expire_all()
    return session.scalar(
        select(Evaluation).where(Evaluation.round_id == member_round.id, Evaluation.member_id == member.id)
    )


def new_member(session: Session, branch: Any, number: str = "N001") -> Member:
    return people.create_member(session, branch, people.MemberInput(name="新党员", gender="女", member_no=number))


def actions(session: Session) -> list[tuple[str, str | None]]:
    rows = session.execute(select(AuditEvent.action, AuditEvent.reason).order_by(AuditEvent.id))
    return [(action, reason) for action, reason in rows if action.startswith(("evaluation.", "member_round.member"))]


def set_step(session: Session, member_round: MemberRound, branch: Any, step: BranchStep) -> None:
    with seeding():
        round_branch(session, member_round, branch).step = step
    session.flush()


# --- joining ---------------------------------------------------------------------------------------


def test_a_member_who_joins_during_the_round_is_added(session: Session, opened: dict[str, Any]) -> None:
    member_round = opened["round"]
    with tenant_context(opened["tenant"].id):
        member = new_member(session, opened["one"])
        evaluation = evaluation_of(session, member_round, member)
        assert evaluation is not None
        assert (evaluation.status, evaluation.joined_during_round, evaluation.self_state) == (
            EvaluationStatus.ACTIVE, True, SelfState.PENDING)
        assert evaluation.round_branch_id == round_branch(session, member_round, opened["one"]).id
        assert evaluation.branch_id == opened["one"].id
        facts = core.facts_for(session, member_round, round_branch(session, member_round, opened["one"]))
        assert facts.members == 4
        assert actions(session) == [("evaluation.join", None)]


def test_a_branch_at_joint_still_takes_a_new_member(session: Session, opened: dict[str, Any]) -> None:
    member_round = opened["round"]
    with tenant_context(opened["tenant"].id):
        set_step(session, member_round, opened["one"], BranchStep.JOINT)
        member = new_member(session, opened["one"])
        evaluation = evaluation_of(session, member_round, member)
        assert evaluation is not None and evaluation.status is EvaluationStatus.ACTIVE


def test_a_member_joining_too_late_or_outside_rated_branches_is_not_added(
    session: Session, opened: dict[str, Any]
) -> None:
    member_round = opened["round"]
    with tenant_context(opened["tenant"].id):
        set_step(session, member_round, opened["one"], BranchStep.REVIEW)
        late = new_member(session, opened["one"], "N001")
        retired = new_member(session, opened["retirees"], "N002")
        assert evaluation_of(session, member_round, late) is None
        assert evaluation_of(session, member_round, retired) is None
        assert actions(session) == [
            ("member_round.member_not_added", "所在支部的2026Q1期评定已进入“支部审评”阶段，本期不再加入"),
            ("member_round.member_not_added", "所在支部不参加2026Q1期党员评定，本期不加入"),
        ]
        # The outcome carries the same sentence for the page.
        [outcome] = membership.member_joined(session, late)
        assert (outcome.action, outcome.evaluation) == ("not_added", None)
        assert "支部审评" in outcome.message


def test_a_closed_round_takes_no_one(session: Session, opened: dict[str, Any]) -> None:
    member_round = opened["round"]
    with tenant_context(opened["tenant"].id):
        with seeding():
            member_round.state = RoundState.CLOSED
        session.flush()
        member = new_member(session, opened["one"])
        assert evaluation_of(session, member_round, member) is None
        assert actions(session) == []


# --- leaving ---------------------------------------------------------------------------------------


def test_a_member_who_leaves_is_withdrawn_and_kept(session: Session, opened: dict[str, Any], frozen_now: Any) -> None:
    member_round = opened["round"]
    leaver = opened["ones"][2]
    with tenant_context(opened["tenant"].id):
        rules = core.round_rules(session, member_round)
        evaluation = evaluation_of(session, member_round, leaver)
        assert evaluation is not None
        scores = {(PartKind.ASPECT, p.key, c.key): c.points for p in rules.member.scheme.parts() for c in p.criteria}
        core.write_scores(session, [evaluation.id], ScoreStage.FINAL, {evaluation.id: scores})
        people.transfer_out(session, leaver, left_on="2026-04-08", reason="调往外省工作")
        evaluation = evaluation_of(session, member_round, leaver)
        assert evaluation is not None
        assert evaluation.status is EvaluationStatus.WITHDRAWN
        assert evaluation.withdrawn_at == frozen_now.at.astimezone(dt.UTC)
        assert evaluation.withdrawn_reason == "调往外省工作"
        one = round_branch(session, member_round, opened["one"])
        assert core.facts_for(session, member_round, one).members == 2
        score_round(session, member_round)
        evaluation = evaluation_of(session, member_round, leaver)
        assert evaluation is not None and (evaluation.total, evaluation.level) == (None, None)  # not scored
        assert actions(session) == [("evaluation.withdraw", "调往外省工作")]
        # Back on the roll while the branch is still at 个人自评: the same record becomes active again.
        people.reactivate_member(session, leaver, reason="调回原单位")
        evaluation = evaluation_of(session, member_round, leaver)
        assert evaluation is not None
        assert (evaluation.status, evaluation.withdrawn_at, evaluation.withdrawn_reason) == (
            EvaluationStatus.ACTIVE, None, None)
        assert actions(session)[-1] == ("evaluation.reactivate", None)
        assert session.scalar(select(func.count()).where(Evaluation.member_id == leaver.id)) == 1


def test_a_reported_result_is_kept_when_the_member_leaves(session: Session, opened: dict[str, Any]) -> None:
    member_round = opened["round"]
    leaver = opened["ones"][2]
    with tenant_context(opened["tenant"].id):
        set_step(session, member_round, opened["one"], BranchStep.FINALISED)
        [outcome] = membership.member_left(session, leaver, "转出")
        assert outcome.action == "kept" and "结果保留" in outcome.message
        evaluation = evaluation_of(session, member_round, leaver)
        assert evaluation is not None and evaluation.status is EvaluationStatus.ACTIVE


# --- moving ----------------------------------------------------------------------------------------


def test_a_moved_member_without_final_scores_takes_the_evaluation_along(
    session: Session, opened: dict[str, Any]
) -> None:
    member_round = opened["round"]
    mover = opened["ones"][2]
    with tenant_context(opened["tenant"].id):
        evaluation = evaluation_of(session, member_round, mover)
        assert evaluation is not None
        evaluation_id = evaluation.id
        key = (PartKind.ASPECT, "study", "theory")
        core.write_scores(session, [evaluation_id], ScoreStage.SELF, {evaluation_id: {key: D(7)}})
        core.write_scores(session, [evaluation_id], ScoreStage.JOINT, {evaluation_id: {key: D(6)}})
        evaluation.self_state = SelfState.SUBMITTED
        evaluation.strengths = "积极"
        session.flush()
        set_step(session, member_round, opened["one"], BranchStep.JOINT)
        set_step(session, member_round, opened["two"], BranchStep.JOINT)
        people.move_member(session, mover, opened["two"], reason="工作调动")
        evaluation = evaluation_of(session, member_round, mover)
        assert evaluation is not None and evaluation.id == evaluation_id  # the same record
        assert evaluation.round_branch_id == round_branch(session, member_round, opened["two"]).id
        assert (evaluation.branch_id, evaluation.status, evaluation.joined_during_round) == (
            opened["two"].id, EvaluationStatus.ACTIVE, True)
        assert (evaluation.self_state, evaluation.strengths) == (SelfState.SUBMITTED, None)
        stored = core.read_scores(session, [evaluation_id], [ScoreStage.SELF, ScoreStage.JOINT])
        assert stored[(evaluation_id, ScoreStage.SELF)] == {key: D(7)}
        assert stored[(evaluation_id, ScoreStage.JOINT)] == {}
        assert actions(session) == [("evaluation.move", "工作调动")]
        two = round_branch(session, member_round, opened["two"])
        assert core.facts_for(session, member_round, two).members == 4


def test_a_moved_member_with_final_scores_stays_withdrawn_in_the_old_branch(
    session: Session, opened: dict[str, Any]
) -> None:
    member_round = opened["round"]
    mover = opened["ones"][2]
    with tenant_context(opened["tenant"].id):
        evaluation = evaluation_of(session, member_round, mover)
        assert evaluation is not None
        core.write_scores(session, [evaluation.id], ScoreStage.FINAL,
                          {evaluation.id: {(PartKind.ASPECT, "study", "theory"): D(8)}})
        set_step(session, member_round, opened["one"], BranchStep.REVIEW)
        people.move_member(session, mover, opened["two"], reason="工作调动")
        evaluation = evaluation_of(session, member_round, mover)
        assert evaluation is not None
        assert (evaluation.status, evaluation.branch_id, evaluation.withdrawn_reason) == (
            EvaluationStatus.WITHDRAWN, opened["one"].id, "工作调动")
        assert session.scalar(select(func.count()).where(Evaluation.member_id == mover.id)) == 1
        assert session.scalar(select(func.count()).select_from(EvaluationScore)
                              .where(EvaluationScore.evaluation_id == evaluation.id)) == 1  # kept
        assert actions(session) == [("evaluation.withdraw", "工作调动")]
        # Moving again later does not re-add them this period.
        [outcome] = membership.member_moved(session, mover, opened["one"].id, "再次调动")
        assert outcome.action == "not_added"


def test_a_member_moved_to_a_branch_past_the_joint_step_is_withdrawn_not_added(
    session: Session, opened: dict[str, Any]
) -> None:
    member_round = opened["round"]
    mover = opened["ones"][2]
    with tenant_context(opened["tenant"].id):
        set_step(session, member_round, opened["two"], BranchStep.REVIEW)
        [outcome] = membership.member_moved(session, _moved(session, mover, opened["two"]), opened["one"].id, "调动")
        assert outcome.action == "withdrawn"
        assert outcome.message == (
            "已移出2026Q1期党员评定（记录保留）；所在支部的2026Q1期评定已进入“支部审评”阶段，本期不再加入"
        )
        evaluation = evaluation_of(session, member_round, mover)
        assert evaluation is not None and evaluation.status is EvaluationStatus.WITHDRAWN
        assert evaluation.branch_id == opened["one"].id


def _moved(session: Session, member: Member, branch: Any) -> Member:
    member.branch_id = branch.id
    session.flush()
    return member
