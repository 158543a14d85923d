"""Members who join, leave or change branch while a member round is open.

A round covers the members on the roll when it opened (opening.py); people/services.py calls these
functions when the roll changes during an OPEN round, so the round follows the branch as it is:

* `member_joined` (a new member, or one put back on the roll): an ACTIVE evaluation with
  `joined_during_round = True` in the RoundBranch of the member's branch, if that branch is in the
  round and still at 个人自评 or 党群联评 (the branch can still assess them, entering the
  self-assessment for them if its deadline has passed). Later, or in a branch not rated in the round
  (a retirees' branch), the member is not added this period: the outcome says so and an audit event
  records it. A member put back on the roll whose evaluation was withdrawn gets the same record back
  (ACTIVE again, withdrawal cleared) on the same conditions.
* `member_left` (transferred out): the evaluation becomes WITHDRAWN with `withdrawn_at` and the
  reason. The record is kept; every count, the scoring and the public-notice lists read ACTIVE only.
  A branch that has already reported (FINALISED) keeps the member's reported result unchanged.
* `member_moved`: a member has one evaluation per round (UNIQUE(round_id, member_id)), so:
  - no FINAL scores yet and the new branch at 个人自评/党群联评 → the evaluation row moves to the new
    branch's RoundBranch (`joined_during_round = True`). The member's own self-assessment goes with
    them; the old branch's 党群联评 scores and strengths/weaknesses are dropped (another meeting agreed
    them), so the new branch assesses the member itself;
  - otherwise (the old branch has already set final scores, or the new branch is past 党群联评 or not
    in the round) → the evaluation stays WITHDRAWN in the old branch, with the reason, and the member
    is not re-added this period. A FINALISED old branch keeps the result as reported.

Each change is audited (`evaluation.join`, `evaluation.withdraw`, `evaluation.move`,
`evaluation.reactivate`; `member_round.member_not_added` when a member is left out); each function
returns one `MembershipOutcome` per open round with a Chinese sentence a page can show. Closed rounds
are never touched. Services flush, never commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.i18n import _
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationScore,
    EvaluationStatus,
    MemberRound,
    RoundBranch,
    RoundState,
    ScoreStage,
    SelfState,
)
from fivestar.member_rounds.workflow import step_label
from fivestar.people.models import Member
from fivestar.timekeeping import clock

log = logging.getLogger(__name__)

# Steps at which a branch can still take a member in (or a moved member's evaluation).
JOINABLE_STEPS = frozenset({BranchStep.SELF, BranchStep.JOINT})
EVALUATION_FIELDS = ("round_branch_id", "branch_id", "status", "joined_during_round", "withdrawn_at",
                     "withdrawn_reason")

Action = Literal["added", "moved", "reactivated", "withdrawn", "kept", "not_added", "unchanged"]


@dataclass(frozen=True)
class MembershipOutcome:
    """What happened to the member in one open round, with a sentence for the person who acted."""

    round_id: int
    period_key: str
    action: Action
    evaluation: Evaluation | None
    message: str


def member_joined(session: Session, member: Member) -> list[MembershipOutcome]:
    """A member was added to (or put back on) the roll: add them to every open round that can
    still assess them in their branch."""
    if not member.is_active:
        return []
    return [_place(session, member_round, member, reason=None) for member_round in _open_rounds(session, member)]


def member_left(session: Session, member: Member, reason: str | None) -> list[MembershipOutcome]:
    """A member left (transferred out): withdraw their evaluation in every open round (record kept)."""
    outcomes: list[MembershipOutcome] = []
    for member_round in _open_rounds(session, member):
        evaluation = _evaluation(session, member_round, member)
        if evaluation is None or evaluation.status is not EvaluationStatus.ACTIVE:
            continue
        outcomes.append(_withdraw(session, member_round, evaluation, reason))
    return outcomes


def member_moved(session: Session, member: Member, old_branch_id: int, reason: str | None) -> list[MembershipOutcome]:
    """A member moved from `old_branch_id` to `member.branch_id`: move or withdraw their evaluation."""
    if not member.is_active or member.branch_id == old_branch_id:
        return []
    return [_place(session, member_round, member, reason=reason) for member_round in _open_rounds(session, member)]


# --- the decisions ---------------------------------------------------------------------------------


def _place(session: Session, member_round: MemberRound, member: Member, *, reason: str | None) -> MembershipOutcome:
    """Make the member's evaluation in `member_round` follow their current branch (see the module)."""
    evaluation = _evaluation(session, member_round, member)
    target = session.scalar(
        select(RoundBranch).where(
            RoundBranch.round_id == member_round.id,
            RoundBranch.branch_id == member.branch_id,
            RoundBranch.tenant_id == member_round.tenant_id,
        )
    )
    if evaluation is not None and evaluation.status is EvaluationStatus.ACTIVE and target is not None \
            and evaluation.round_branch_id == target.id:
        message = _("该党员已在%(period)s期党员评定中", period=member_round.period_key)
        return _outcome(member_round, "unchanged", evaluation, message)
    joinable = target is not None and target.step in JOINABLE_STEPS
    if evaluation is None:
        if target is not None and joinable:
            return _add(session, member_round, target, member)
        return _not_added(session, member_round, member, _why_not(member_round, target))
    if target is not None and joinable and (
        evaluation.round_branch_id == target.id or not _has_final_scores(session, evaluation)
    ):
        # Back in the same branch (the record is simply active again), or a move before any review.
        return _move(session, member_round, evaluation, target, member, reason)
    if evaluation.status is EvaluationStatus.ACTIVE:
        # The member is no longer in this evaluation's branch and cannot be taken along.
        outcome = _withdraw(session, member_round, evaluation, reason)
        if outcome.action == "withdrawn":
            why = _why_not(member_round, target) if not joinable else _(
                "已有审评分数，保留在原支部（已移出），本期不再加入新支部"
            )
            return _outcome(member_round, "withdrawn", evaluation, f"{outcome.message}；{why}")
        return outcome
    return _not_added(session, member_round, member, _why_not(member_round, target) if not joinable else _(
        "该党员本期评定记录已有审评分数并已移出，本期不再加入"
    ))


def _why_not(member_round: MemberRound, target: RoundBranch | None) -> str:
    if target is None:
        return _("所在支部不参加%(period)s期党员评定，本期不加入", period=member_round.period_key)
    return _(
        "所在支部的%(period)s期评定已进入“%(step)s”阶段，本期不再加入",
        period=member_round.period_key, step=step_label(target.step),
    )


def _add(session: Session, member_round: MemberRound, target: RoundBranch, member: Member) -> MembershipOutcome:
    evaluation = Evaluation(
        tenant_id=member_round.tenant_id,
        round_id=member_round.id,
        round_branch_id=target.id,
        member_id=member.id,
        branch_id=member.branch_id,
        status=EvaluationStatus.ACTIVE,
        joined_during_round=True,
        self_state=SelfState.PENDING,
    )
    session.add(evaluation)
    session.flush()
    audit.record(session, "evaluation.join", evaluation, after=audit.snapshot(evaluation, EVALUATION_FIELDS))
    return _outcome(member_round, "added", evaluation,
                    _("已加入%(period)s期党员评定（本期中途加入）", period=member_round.period_key))


def _move(
    session: Session,
    member_round: MemberRound,
    evaluation: Evaluation,
    target: RoundBranch,
    member: Member,
    reason: str | None,
) -> MembershipOutcome:
    before = audit.snapshot(evaluation, EVALUATION_FIELDS)
    moving = evaluation.round_branch_id != target.id
    was_withdrawn = evaluation.status is not EvaluationStatus.ACTIVE
    if moving:
        # The old branch's meeting agreed these; the new branch assesses the member itself.
        session.execute(
            delete(EvaluationScore)
            .where(EvaluationScore.evaluation_id == evaluation.id, EvaluationScore.stage == ScoreStage.JOINT)
            .execution_options(synchronize_session=False)
        )
        evaluation.strengths = None
        evaluation.weaknesses = None
        evaluation.joined_during_round = True
    evaluation.round_branch_id = target.id
    evaluation.branch_id = member.branch_id
    evaluation.status = EvaluationStatus.ACTIVE
    evaluation.withdrawn_at = None
    evaluation.withdrawn_reason = None
    session.flush()
    action: Action = "moved" if moving else "reactivated"
    audit.record(session, f"evaluation.{'move' if moving else 'reactivate'}", evaluation, before=before,
                 after=audit.snapshot(evaluation, EVALUATION_FIELDS), reason=reason)
    if moving:
        message = _("%(period)s期党员评定已随该党员转入新支部", period=member_round.period_key)
    else:
        message = _("已恢复该党员的%(period)s期党员评定", period=member_round.period_key)
    if moving and was_withdrawn:
        action = "reactivated"
    return _outcome(member_round, action, evaluation, message)


def _withdraw(
    session: Session, member_round: MemberRound, evaluation: Evaluation, reason: str | None
) -> MembershipOutcome:
    step = session.scalar(select(RoundBranch.step).where(RoundBranch.id == evaluation.round_branch_id))
    if step is BranchStep.FINALISED:
        return _outcome(member_round, "kept", evaluation, _(
            "原支部已上报%(period)s期评定结果，该党员的结果保留", period=member_round.period_key))
    before = audit.snapshot(evaluation, EVALUATION_FIELDS)
    evaluation.status = EvaluationStatus.WITHDRAWN
    evaluation.withdrawn_at = clock.now()
    evaluation.withdrawn_reason = reason
    session.flush()
    audit.record(session, "evaluation.withdraw", evaluation, before=before,
                 after=audit.snapshot(evaluation, EVALUATION_FIELDS), reason=reason)
    return _outcome(member_round, "withdrawn", evaluation,
                    _("已移出%(period)s期党员评定（记录保留）", period=member_round.period_key))


def _not_added(session: Session, member_round: MemberRound, member: Member, why: str) -> MembershipOutcome:
    log.info("member %s not added to round %s: %s", member.id, member_round.id, why)
    audit.record(session, "member_round.member_not_added", member_round,
                 after={"member_id": member.id, "branch_id": member.branch_id}, reason=why)
    return _outcome(member_round, "not_added", None, why)


# --- loading ---------------------------------------------------------------------------------------


def _open_rounds(session: Session, member: Member) -> list[MemberRound]:
    return list(
        session.scalars(
            select(MemberRound)
            .where(MemberRound.tenant_id == member.tenant_id, MemberRound.state == RoundState.OPEN)
            .order_by(MemberRound.id)
        )
    )


def _evaluation(session: Session, member_round: MemberRound, member: Member) -> Evaluation | None:
    return session.scalar(
        select(Evaluation).where(
            Evaluation.round_id == member_round.id,
            Evaluation.member_id == member.id,
            Evaluation.tenant_id == member_round.tenant_id,
        )
    )


def _has_final_scores(session: Session, evaluation: Evaluation) -> bool:
    found = session.scalar(
        select(EvaluationScore.id)
        .where(EvaluationScore.evaluation_id == evaluation.id, EvaluationScore.stage == ScoreStage.FINAL)
        .limit(1)
    )
    return found is not None or evaluation.disqualifier is not None


def _outcome(
    member_round: MemberRound, action: Action, evaluation: Evaluation | None, message: str
) -> MembershipOutcome:
    return MembershipOutcome(member_round.id, member_round.period_key, action, evaluation, message)


__all__ = ["JOINABLE_STEPS", "MembershipOutcome", "member_joined", "member_left", "member_moved"]
