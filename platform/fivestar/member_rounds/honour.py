"""What a round leaves behind for people to see: the honour roll (光荣榜) of five-star members, each
member's levels over time, and how a rating period is named.

Results become visible per branch once the branch has reported them upward (FINALISED), or for
every branch once the committee closed the round: before that the branch may still change them
(objections, the committee's return), and a roll that later loses a name would do harm.
Each query here is one statement, whatever the number of branches, members or rounds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from fivestar.i18n import _
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationStatus,
    MemberRound,
    RoundBranch,
    RoundState,
    SelfState,
)
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member

TOP_LEVEL = 5  # 五星


def period_label(key: str) -> str:
    """A rating period as people name it: 2026Q1 → 2026年第一季度, 2026H2 → 2026年下半年, 2026 → 2026年度."""
    text = key.strip().upper()
    try:
        year = int(text[:4])
    except ValueError:
        return key
    rest = text[4:]
    quarters = {"Q1": _("%(year)d年第一季度", year=year), "Q2": _("%(year)d年第二季度", year=year),
                "Q3": _("%(year)d年第三季度", year=year), "Q4": _("%(year)d年第四季度", year=year)}
    halves = {"H1": _("%(year)d年上半年", year=year), "H2": _("%(year)d年下半年", year=year)}
    if rest in quarters:
        return quarters[rest]
    if rest in halves:
        return halves[rest]
    if not rest:
        return _("%(year)d年度", year=year)
    return key


def results_published(member_round: MemberRound, step: BranchStep) -> bool:
    """Whether a branch's results may be shown beyond the branch (honour roll, desk cards)."""
    return member_round.state is RoundState.CLOSED or step is BranchStep.FINALISED


def _published_clause() -> ColumnElement[bool]:
    return or_(MemberRound.state == RoundState.CLOSED, RoundBranch.step == BranchStep.FINALISED)


# --- the honour roll ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HonouredMember:
    evaluation_id: int
    member_id: int
    name: str
    total: Decimal | None


@dataclass
class HonourBranch:
    round_branch_id: int
    branch_id: int
    branch_name: str
    parent_name: str | None
    step: BranchStep
    published: bool
    finalised_at: dt.datetime | None
    members: list[HonouredMember] = field(default_factory=list)


@dataclass
class HonourRoll:
    round: MemberRound
    branches: list[HonourBranch]  # every branch of the round (or the one asked for), in tree order

    @property
    def published(self) -> list[HonourBranch]:
        return [branch for branch in self.branches if branch.published]

    @property
    def pending(self) -> int:
        """Branches whose results are not published yet."""
        return sum(1 for branch in self.branches if not branch.published)

    @property
    def honoured(self) -> int:
        return sum(len(branch.members) for branch in self.published)

    def by_parent(self) -> list[tuple[str | None, list[HonourBranch]]]:
        """Published branches grouped under the organisation above them (机关党委/党总支)."""
        groups: dict[str | None, list[HonourBranch]] = {}
        for branch in self.published:
            groups.setdefault(branch.parent_name, []).append(branch)
        return list(groups.items())


def honour_roll(session: Session, member_round: MemberRound, *, round_branch_id: int | None = None) -> HonourRoll:
    """Every branch of the round with its five-star members where its results are published —
    one query: branches, their parents and (outer-joined) their five-star members."""
    parent = aliased(Organisation)
    honoured = and_(
        Evaluation.round_branch_id == RoundBranch.id,
        Evaluation.status == EvaluationStatus.ACTIVE,
        Evaluation.level == TOP_LEVEL,
    )
    published = _published_clause()
    statement = (
        select(
            RoundBranch.id,
            RoundBranch.branch_id,
            RoundBranch.step,
            RoundBranch.finalised_at,
            Organisation.name,
            parent.name,
            case((published, True), else_=False),
            Evaluation.id,
            Evaluation.member_id,
            Evaluation.total,
            Member.name,
        )
        .join(MemberRound, MemberRound.id == RoundBranch.round_id)
        .join(Organisation, Organisation.id == RoundBranch.branch_id)
        .outerjoin(parent, parent.id == Organisation.parent_id)
        # only published branches bring their members along: nothing unpublished leaves the database
        .outerjoin(Evaluation, and_(honoured, published))
        .outerjoin(Member, Member.id == Evaluation.member_id)
        .where(RoundBranch.round_id == member_round.id)
        .order_by(Organisation.path, Organisation.id, Evaluation.total.desc(), Member.name, Evaluation.id)
    )
    if round_branch_id is not None:
        statement = statement.where(RoundBranch.id == round_branch_id)
    branches: dict[int, HonourBranch] = {}
    for row in session.execute(statement):
        values: tuple[Any, ...] = tuple(row)
        (rb_id, branch_id, step, finalised_at, branch_name, parent_name, is_published,
         evaluation_id, member_id, total, member_name) = values
        branch = branches.get(rb_id)
        if branch is None:
            branch = branches[rb_id] = HonourBranch(
                round_branch_id=rb_id,
                branch_id=branch_id,
                branch_name=branch_name,
                parent_name=parent_name,
                step=BranchStep(step),
                published=bool(is_published),
                finalised_at=finalised_at,
            )
        if evaluation_id is not None and branch.published:
            branch.members.append(HonouredMember(evaluation_id, member_id, member_name, total))
    return HonourRoll(round=member_round, branches=list(branches.values()))


def rounds_for_honour(session: Session) -> list[tuple[MemberRound, int, int]]:
    """Every round of the tenant, newest first, with (branches published, branches in all) — one query."""
    published = func.count(RoundBranch.id).filter(_published_clause())
    rows: Sequence[Any] = session.execute(
        select(MemberRound, published, func.count(RoundBranch.id))
        .outerjoin(RoundBranch, RoundBranch.round_id == MemberRound.id)
        .group_by(MemberRound.id)
        .order_by(MemberRound.period_start.desc(), MemberRound.id.desc())
    ).all()
    return [(member_round, int(done or 0), int(total or 0)) for member_round, done, total in rows]


# --- a member's own results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRating:
    """One round of a member: where they were, and the result once it may be shown."""

    evaluation_id: int
    round: MemberRound
    round_branch_id: int
    branch_name: str
    step: BranchStep
    status: EvaluationStatus
    self_state: SelfState
    published: bool  # results visible (finalised branch or closed round)
    noticed: bool  # results posted in the branch's public notice or later
    level: int | None
    total: Decimal | None
    rated: bool | None
    disqualifier: str | None

    @property
    def not_rated(self) -> bool:
        return self.rated is False or self.disqualifier is not None

    @property
    def has_result(self) -> bool:
        return self.noticed and (self.not_rated or self.level is not None)


def member_ratings(session: Session, member_id: int) -> list[MemberRating]:
    """Every round the member was in, newest first (one query). Results show from the public notice
    on (`has_result`): by then the branch has posted them to everyone anyway; before, the branch is
    still deciding."""
    rows = session.execute(
        select(
            Evaluation.id,
            MemberRound,
            RoundBranch.id,
            Organisation.name,
            RoundBranch.step,
            Evaluation.status,
            Evaluation.self_state,
            Evaluation.level,
            Evaluation.total,
            Evaluation.rated,
            Evaluation.disqualifier,
        )
        .join(MemberRound, MemberRound.id == Evaluation.round_id)
        .join(RoundBranch, RoundBranch.id == Evaluation.round_branch_id)
        .join(Organisation, Organisation.id == Evaluation.branch_id)
        .where(Evaluation.member_id == member_id)
        .order_by(MemberRound.period_start.desc(), MemberRound.id.desc())
    ).all()
    ratings = []
    row: Any
    for row in rows:
        (evaluation_id, member_round, rb_id, branch_name, step, status, self_state, level, total, rated,
         disqualifier) = row
        step = BranchStep(step)
        closed = member_round.state is RoundState.CLOSED
        ratings.append(
            MemberRating(
                evaluation_id=evaluation_id,
                round=member_round,
                round_branch_id=rb_id,
                branch_name=branch_name,
                step=step,
                status=EvaluationStatus(status),
                self_state=SelfState(self_state),
                published=results_published(member_round, step),
                noticed=closed or step in (BranchStep.NOTICE, BranchStep.FINALISED),
                level=level,
                total=total,
                rated=rated,
                disqualifier=disqualifier,
            )
        )
    return ratings
