"""The anomaly report (异常情况) of one round: what an inspector should look at first.

Nothing here decides anything: each line names what looks wrong and where the evidence is.

Member round:
* **joint_gap** — a member's final score is further than the rules' `member.joint_tolerance` from
  the 党群联评 score (both the scheme's total from the stored score rows, bonus left out);
* **identical_scores** — every active member of a branch (at least 3, all scored) has the same total;
* **objection_no_reason** — a 公示 objection dismissed without an answer;
* **late_change** — an audit event on the round's objects after the due time of its step.

Branch round:
* **proposed_above** — a branch's 荐星 level is two or more above its ballot result (the rules'
  level form: the weighted mean level) or above the committee's decided level;
* **late_change** — as above, against the round's 自评上报 and 工委反馈 due times.

Each kind is one or two set-based queries over the whole round; the rule engine runs in Python on
rows already read (no query per branch or member).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds import ballot_results
from fivestar.branch_rounds import core as branch_core
from fivestar.branch_rounds.models import BranchRating, BranchRound
from fivestar.i18n import _, _l
from fivestar.inspection.trail import TrailFilters, describe, filter_clauses
from fivestar.inspection.trail_labels import action_label
from fivestar.member_rounds import core as member_core
from fivestar.member_rounds.models import (
    Evaluation,
    EvaluationScore,
    EvaluationStatus,
    MemberRound,
    Objection,
    ObjectionState,
    PartKind,
    RoundBranch,
    ScoreStage,
)
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.rules import InputError
from fivestar.rules.ballot import ballot_rules

KINDS = {
    "proposed_above": _l("荐星高于测评结果或定星两级及以上"),
    "joint_gap": _l("最终得分与党群联评得分相差超过规定"),
    "identical_scores": _l("全支部党员得分完全相同"),
    "objection_no_reason": _l("公示异议被驳回但未说明理由"),
    "late_change": _l("步骤截止后仍有改动"),
}
MEMBER_KINDS = ("joint_gap", "identical_scores", "objection_no_reason", "late_change")
BRANCH_KINDS = ("proposed_above", "late_change")

# Which step's due time an action belongs to (attribute of the round holding it).
MEMBER_STEP_DUE = {
    "self_due_at": ("evaluation.self_save_draft", "evaluation.self_submit", "evaluation.self_enter_for_member"),
    "joint_due_at": ("evaluation.joint", "round_branch.meeting", "round_branch.start_review"),
    "review_due_at": ("evaluation.review", "round_branch.submit_notice"),
    "report_due_at": ("round_branch.finalise",),
}
BRANCH_STEP_DUE = {
    "self_report_due_at": (
        "branch_rating.save_recommendation",
        "branch_rating.submit_recommendation",
        "branch_rating.opinion",
        "branch_rating.submit_opinion",
        "branch_rating.forward",
        "branch_rating.org_return",
        "ballot_meeting.setup",
        "ballot_meeting.issue_slips",
        "ballot_meeting.reissue",
        "ballot_meeting.close",
        "ballot_meeting.tally",
        "evidence.upload",
        "evidence.delete",
    ),
    "committee_due_at": ("branch_rating.decide",),
}


Dues = dict[str, tuple[tuple[str, ...], dt.datetime | None]]


@dataclass
class Anomaly:
    kind: str
    detail: str
    branch_name: str | None = None
    member_name: str | None = None
    # Where the evidence is: an endpoint (under the tenant) and its values; the view builds the URL.
    endpoint: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    url: str | None = None  # filled in by the page

    @property
    def kind_label(self) -> str:
        return str(KINDS[self.kind])


@dataclass
class Report:
    round_kind: str
    kinds: tuple[str, ...]
    lines: list[Anomaly]

    def of(self, kind: str) -> list[Anomaly]:
        return [line for line in self.lines if line.kind == kind]


def _fmt(number: Decimal | int | None) -> str:
    if number is None:
        return "—"
    text = f"{Decimal(number).quantize(Decimal('0.01')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- member rounds ---------------------------------------------------------------------------------


def stage_totals(
    session: Session, member_round: MemberRound, where: Iterable[ColumnElement[bool]] = ()
) -> dict[int, dict[ScoreStage, Decimal]]:
    """The scheme total (bonus left out) of the joint and final scores of the round's active
    evaluations, by evaluation id: one query for the score rows, the rule engine on each member."""
    rules = member_core.round_rules(session, member_round)
    rows = session.execute(
        select(
            EvaluationScore.evaluation_id,
            EvaluationScore.stage,
            EvaluationScore.kind,
            EvaluationScore.part_key,
            EvaluationScore.criterion_key,
            EvaluationScore.score,
        )
        .join(Evaluation, Evaluation.id == EvaluationScore.evaluation_id)
        .where(
            Evaluation.round_id == member_round.id,
            Evaluation.status == EvaluationStatus.ACTIVE,
            EvaluationScore.stage.in_([ScoreStage.JOINT, ScoreStage.FINAL]),
            EvaluationScore.kind != PartKind.BONUS,
            *where,
        )
    )
    scores: dict[tuple[int, ScoreStage], dict[member_core.FieldKey, Decimal]] = defaultdict(dict)
    for evaluation_id, stage, kind, part_key, criterion_key, score in rows:
        scores[(evaluation_id, ScoreStage(stage))][(PartKind(kind), part_key, criterion_key)] = score
    totals: dict[int, dict[ScoreStage, Decimal]] = defaultdict(dict)
    for (evaluation_id, stage), values in scores.items():
        try:
            totals[evaluation_id][stage] = member_core.evaluate(rules, values).scheme_total
        except InputError:
            continue  # incomplete scores: nothing to compare yet
    return totals


def _joint_gaps(session: Session, member_round: MemberRound) -> list[Anomaly]:
    tolerance = member_core.round_rules(session, member_round).member.joint_tolerance
    totals = stage_totals(session, member_round)
    gaps = {
        ident: (t[ScoreStage.JOINT], t[ScoreStage.FINAL])
        for ident, t in totals.items()
        if ScoreStage.JOINT in t
        and ScoreStage.FINAL in t
        and abs(t[ScoreStage.FINAL] - t[ScoreStage.JOINT]) > tolerance
    }
    if not gaps:
        return []
    rows = session.execute(
        select(Evaluation.id, Member.name, Organisation.name)
        .join(Member, Member.id == Evaluation.member_id)
        .join(Organisation, Organisation.id == Evaluation.branch_id)
        .where(Evaluation.id.in_(sorted(gaps)))
        .order_by(Organisation.path, Member.name, Evaluation.id)
    )
    lines = []
    for ident, member_name, branch_name in rows:
        joint, final = gaps[ident]
        lines.append(
            Anomaly(
                "joint_gap",
                _(
                    "党群联评 %(joint)s 分，最终 %(final)s 分，相差 %(gap)s 分（规则允许 %(tolerance)s 分）",
                    joint=_fmt(joint), final=_fmt(final), gap=_fmt(abs(final - joint)), tolerance=_fmt(tolerance),
                ),
                branch_name=branch_name,
                member_name=member_name,
                endpoint="tenant.inspection.evaluation",
                values={"evaluation_id": ident},
            )
        )
    return lines


def _identical_scores(session: Session, member_round: MemberRound) -> list[Anomaly]:
    rows = session.execute(
        select(RoundBranch.id, Organisation.name, func.count(Evaluation.id), func.min(Evaluation.total))
        .join(
            Evaluation,
            and_(Evaluation.round_branch_id == RoundBranch.id, Evaluation.status == EvaluationStatus.ACTIVE),
        )
        .join(Organisation, Organisation.id == RoundBranch.branch_id)
        .where(RoundBranch.round_id == member_round.id)
        .group_by(RoundBranch.id, Organisation.name, Organisation.path)
        .having(
            func.count(Evaluation.id) >= 3,
            func.count(Evaluation.total) == func.count(Evaluation.id),
            func.min(Evaluation.total) == func.max(Evaluation.total),
        )
        .order_by(Organisation.path)
    )
    return [
        Anomaly(
            "identical_scores",
            _("%(n)d 名党员最终得分均为 %(total)s 分", n=count, total=_fmt(total)),
            branch_name=name,
            endpoint="tenant.inspection.round_branch",
            values={"round_branch_id": ident},
        )
        for ident, name, count, total in rows
    ]


def _objections_without_reason(session: Session, member_round: MemberRound) -> list[Anomaly]:
    person = select(Member.name).join(Evaluation, Evaluation.member_id == Member.id).where(
        Evaluation.id == Objection.evaluation_id
    ).scalar_subquery()
    rows: Iterable[Any] = session.execute(
        select(Objection.id, Objection.round_branch_id, Objection.answered_at, Organisation.name, person)
        .join(RoundBranch, RoundBranch.id == Objection.round_branch_id)
        .join(Organisation, Organisation.id == RoundBranch.branch_id)
        .where(
            RoundBranch.round_id == member_round.id,
            Objection.state == ObjectionState.DISMISSED,
            or_(Objection.answer.is_(None), func.trim(Objection.answer) == ""),
        )
        .order_by(Organisation.path, Objection.id)
    )
    return [
        Anomaly(
            "objection_no_reason",
            _("第 %(id)d 号异议被驳回，答复为空", id=ident),
            branch_name=branch_name,
            member_name=member_name,
            endpoint="tenant.member_round_committee.objections",
            values={"round_branch_id": round_branch_id},
        )
        for ident, round_branch_id, _answered, branch_name, member_name in rows
    ]


# --- late changes (both kinds of round) -------------------------------------------------------------


def _late_changes(
    session: Session, tenant_id: int, column: str, round_id: int, dues: Dues
) -> list[Anomaly]:
    windows = [
        and_(AuditEvent.action.in_(actions), AuditEvent.occurred_at > due)
        for actions, due in dues.values()
        if due is not None
    ]
    if not windows:
        return []
    if column == "member_round_id":
        filters = TrailFilters(member_round_id=round_id)
    else:
        filters = TrailFilters(branch_round_id=round_id)
    events = list(
        session.scalars(
            select(AuditEvent)
            .where(*filter_clauses(tenant_id, filters, "UTC"), or_(*windows))
            .order_by(AuditEvent.occurred_at, AuditEvent.id)
        )
    )
    due_of = {action: due for actions, due in dues.values() for action in actions}
    lines = []
    for entry in describe(session, tenant_id, events):
        event = entry.event
        due = due_of.get(event.action)
        late = event.occurred_at - due if due is not None else dt.timedelta(0)
        lines.append(
            Anomaly(
                "late_change",
                _(
                    "%(what)s（%(who)s）比截止时间晚 %(hours)s 小时",
                    what=action_label(event.action),
                    who=entry.actor,
                    hours=_fmt(Decimal(int(late.total_seconds())) / 3600),
                ),
                branch_name=entry.org_name,
                member_name=entry.member_name,
                endpoint="tenant.inspection.event",
                values={"event_id": event.id},
            )
        )
    return lines


# --- branch rounds --------------------------------------------------------------------------------


def ballot_levels(session: Session, branch_round: BranchRound) -> dict[int, Decimal]:
    """The weighted ballot result of every rating of the round whose voting closed, when the rules
    ballot a level (the per-indicator form has no level to compare): the ballot part's set-based
    count, a fixed number of queries for the whole round."""
    rules = branch_core.round_rules(session, branch_round)
    if ballot_rules(rules).form != "level":
        return {}
    rating_ids = list(session.scalars(select(BranchRating.id).where(BranchRating.round_id == branch_round.id)))
    return {
        rating_id: result.weighted
        for rating_id, result in ballot_results.results_for_ratings(session, rating_ids).items()
        if result.weighted is not None
    }


def _proposed_above(session: Session, branch_round: BranchRound) -> list[Anomaly]:
    by_ballot = ballot_levels(session, branch_round)
    rows = session.execute(
        select(BranchRating.id, BranchRating.proposed_level, BranchRating.decided_level, Organisation.name)
        .join(Organisation, Organisation.id == BranchRating.branch_id)
        .where(BranchRating.round_id == branch_round.id, BranchRating.proposed_level.is_not(None))
        .order_by(Organisation.path)
    )
    lines = []
    for rating_id, proposed, decided, name in rows:
        if proposed is None:
            continue
        reasons = []
        result = by_ballot.get(rating_id)
        if result is not None and Decimal(proposed) - result >= 2:
            reasons.append(_("测评结果 %(result)s 星", result=_fmt(result)))
        if decided is not None and proposed - decided >= 2:
            reasons.append(_("定星 %(level)d 星", level=decided))
        if reasons:
            lines.append(
                Anomaly(
                    "proposed_above",
                    _("荐星 %(level)d 星，高于%(what)s", level=proposed, what="、".join(reasons)),
                    branch_name=name,
                    endpoint="tenant.branch_rating_committee.dossier",
                    values={"rating_id": rating_id},
                )
            )
    return lines


# --- the report --------------------------------------------------------------------------------


def member_round_report(session: Session, tenant_id: int, member_round: MemberRound) -> Report:
    dues: Dues = {name: (actions, getattr(member_round, name)) for name, actions in MEMBER_STEP_DUE.items()}
    lines = (
        _joint_gaps(session, member_round)
        + _identical_scores(session, member_round)
        + _objections_without_reason(session, member_round)
        + _late_changes(session, tenant_id, "member_round_id", member_round.id, dues)
    )
    return Report("member", MEMBER_KINDS, lines)


def branch_round_report(session: Session, tenant_id: int, branch_round: BranchRound) -> Report:
    dues: Dues = {name: (actions, getattr(branch_round, name)) for name, actions in BRANCH_STEP_DUE.items()}
    lines = _proposed_above(session, branch_round) + _late_changes(
        session, tenant_id, "branch_round_id", branch_round.id, dues
    )
    return Report("branch", BRANCH_KINDS, lines)
