"""What an audit event is about: per object type (`SUBJECTS`), one small select from the object's
table to the organisation, member and rounds it hangs under. A new audited table gets a `Subject`
here, or its events show without them and escape the trail's filters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, String, and_, cast, func, literal, null, or_, select
from sqlalchemy.orm import aliased

from fivestar.accounts.models import Account
from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds.models import (
    BallotMeeting,
    BranchRating,
    BranchRound,
    EvidenceFile,
    QuarterlyReview,
)
from fivestar.inspection.models import SpotCheck
from fivestar.member_rounds.models import (
    Evaluation,
    MemberRound,
    Mentorship,
    Objection,
    Rectification,
    RoundBranch,
    TalkRecord,
)
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.standing.models import Adjustment, AdjustmentFile, StandingEvent


@dataclass(frozen=True)
class Subject:
    """What one object type hangs under: a select of (oid, org, member, member round, branch round)."""

    object_type: str
    build: Callable[[int], Select[Any]]
    has: frozenset[str]  # which of org_id, member_id, member_round_id, branch_round_id it fills


_ORG = frozenset({"org_id"})
_MEMBER = frozenset({"member_id"})
_MROUND = frozenset({"member_round_id"})
_BROUND = frozenset({"branch_round_id"})


def _cols(oid: Any, org_id: Any, member_id: Any, member_round_id: Any, branch_round_id: Any) -> list[Any]:
    return [
        cast(oid, String).label("oid"),
        (org_id if org_id is not None else cast(null(), Integer)).label("org_id"),
        (member_id if member_id is not None else cast(null(), Integer)).label("member_id"),
        (member_round_id if member_round_id is not None else cast(null(), Integer)).label("member_round_id"),
        (branch_round_id if branch_round_id is not None else cast(null(), Integer)).label("branch_round_id"),
    ]


def _organisations(t: int) -> Select[Any]:
    return select(*_cols(Organisation.id, Organisation.id, None, None, None)).where(Organisation.tenant_id == t)


def _members(t: int) -> Select[Any]:
    return select(*_cols(Member.id, Member.branch_id, Member.id, None, None)).where(Member.tenant_id == t)


def _accounts(t: int) -> Select[Any]:
    person = aliased(Member)
    return (
        select(*_cols(Account.id, person.branch_id, Account.member_id, None, None))
        .outerjoin(person, and_(person.id == Account.member_id, person.tenant_id == Account.tenant_id))
        .where(Account.tenant_id == t)
    )


def _member_rounds(t: int) -> Select[Any]:
    return select(*_cols(MemberRound.id, None, None, MemberRound.id, None)).where(MemberRound.tenant_id == t)


def _round_branches(t: int) -> Select[Any]:
    return select(*_cols(RoundBranch.id, RoundBranch.branch_id, None, RoundBranch.round_id, None)).where(
        RoundBranch.tenant_id == t
    )


def _evaluations(t: int) -> Select[Any]:
    return select(*_cols(Evaluation.id, Evaluation.branch_id, Evaluation.member_id, Evaluation.round_id, None)).where(
        Evaluation.tenant_id == t
    )


def _objections(t: int) -> Select[Any]:
    person = aliased(Evaluation)
    return (
        select(*_cols(Objection.id, RoundBranch.branch_id, person.member_id, RoundBranch.round_id, None))
        .join(RoundBranch, RoundBranch.id == Objection.round_branch_id)
        .outerjoin(person, person.id == Objection.evaluation_id)
        .where(Objection.tenant_id == t)
    )


def _under_evaluation(model: Any) -> Callable[[int], Select[Any]]:
    def build(t: int) -> Select[Any]:
        return (
            select(*_cols(model.id, Evaluation.branch_id, Evaluation.member_id, Evaluation.round_id, None))
            .join(Evaluation, Evaluation.id == model.evaluation_id)
            .where(model.tenant_id == t)
        )

    return build


def _branch_rounds(t: int) -> Select[Any]:
    return select(*_cols(BranchRound.id, None, None, None, BranchRound.id)).where(BranchRound.tenant_id == t)


def _branch_ratings(t: int) -> Select[Any]:
    return select(*_cols(BranchRating.id, BranchRating.branch_id, None, None, BranchRating.round_id)).where(
        BranchRating.tenant_id == t
    )


def _under_rating(model: Any) -> Callable[[int], Select[Any]]:
    def build(t: int) -> Select[Any]:
        return (
            select(*_cols(model.id, BranchRating.branch_id, None, None, BranchRating.round_id))
            .join(BranchRating, BranchRating.id == model.rating_id)
            .where(model.tenant_id == t)
        )

    return build


def _quarterly(t: int) -> Select[Any]:
    return select(*_cols(QuarterlyReview.id, QuarterlyReview.branch_id, None, None, None)).where(
        QuarterlyReview.tenant_id == t
    )


def _spot_checks(t: int) -> Select[Any]:
    return select(*_cols(SpotCheck.id, None, None, SpotCheck.member_round_id, SpotCheck.branch_round_id)).where(
        SpotCheck.tenant_id == t
    )


def _standing(model: Any) -> Callable[[int], Select[Any]]:
    """增星摘星: an adjustment or a mid-year event, under its branch or its member's branch."""

    def build(t: int) -> Select[Any]:
        person = aliased(Member)
        return (
            select(*_cols(model.id, func.coalesce(model.branch_id, person.branch_id), model.member_id, None, None))
            .outerjoin(person, person.id == model.member_id)
            .where(model.tenant_id == t)
        )

    return build


def _adjustment_files(t: int) -> Select[Any]:
    person = aliased(Member)
    return (
        select(
            *_cols(
                AdjustmentFile.id,
                func.coalesce(Adjustment.branch_id, person.branch_id),
                Adjustment.member_id,
                None,
                None,
            )
        )
        .join(Adjustment, Adjustment.id == AdjustmentFile.adjustment_id)
        .outerjoin(person, person.id == Adjustment.member_id)
        .where(AdjustmentFile.tenant_id == t)
    )


SUBJECTS: tuple[Subject, ...] = (
    Subject(Organisation.__tablename__, _organisations, _ORG),
    Subject(Member.__tablename__, _members, _ORG | _MEMBER),
    Subject(Account.__tablename__, _accounts, _ORG | _MEMBER),
    Subject(MemberRound.__tablename__, _member_rounds, _MROUND),
    Subject(RoundBranch.__tablename__, _round_branches, _ORG | _MROUND),
    Subject(Evaluation.__tablename__, _evaluations, _ORG | _MEMBER | _MROUND),
    Subject(Objection.__tablename__, _objections, _ORG | _MEMBER | _MROUND),
    Subject(TalkRecord.__tablename__, _under_evaluation(TalkRecord), _ORG | _MEMBER | _MROUND),
    Subject(Rectification.__tablename__, _under_evaluation(Rectification), _ORG | _MEMBER | _MROUND),
    Subject(Mentorship.__tablename__, _under_evaluation(Mentorship), _ORG | _MEMBER | _MROUND),
    Subject(BranchRound.__tablename__, _branch_rounds, _BROUND),
    Subject(BranchRating.__tablename__, _branch_ratings, _ORG | _BROUND),
    Subject(BallotMeeting.__tablename__, _under_rating(BallotMeeting), _ORG | _BROUND),
    Subject(EvidenceFile.__tablename__, _under_rating(EvidenceFile), _ORG | _BROUND),
    Subject(QuarterlyReview.__tablename__, _quarterly, _ORG),
    Subject(SpotCheck.__tablename__, _spot_checks, _MROUND | _BROUND),
    Subject(Adjustment.__tablename__, _standing(Adjustment), _ORG | _MEMBER),
    Subject(StandingEvent.__tablename__, _standing(StandingEvent), _ORG | _MEMBER),
    Subject(AdjustmentFile.__tablename__, _adjustment_files, _ORG | _MEMBER),
)


def subject_clause(tenant_id: int, column: str, test: Callable[[Any], ColumnElement[bool]]) -> ColumnElement[bool]:
    """Events whose object's `column` passes `test`: `object_type = T AND object_id IN (…)` for
    each type that has the column."""
    clauses = []
    for subject in SUBJECTS:
        if column not in subject.has:
            continue
        sub = subject.build(tenant_id).subquery()
        clauses.append(
            and_(
                AuditEvent.object_type == subject.object_type,
                AuditEvent.object_id.in_(select(sub.c.oid).where(test(sub.c[column]))),
            )
        )
    return or_(*clauses) if clauses else literal(False)
