"""What the committee (工委) sees and does with a member round: the rounds and their progress, every
branch's progress through the steps, level distributions, five-star lists, returning a branch's
results, and the list of members flagged after four low periods in a row.

Every query here takes the principal and filters with `org_scope(principal, ROUND_VIEW)`, so org
staff (机关党委/党总支) see the branches of their subtree and nothing else; each is one statement,
so a page runs a fixed number of queries whatever the number of branches or members.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased, contains_eager

from fivestar import audit
from fivestar.accounts.policy import Action, org_scope
from fivestar.accounts.principal import Principal
from fivestar.enums import MemberStatus, Role
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.member_rounds import core
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationStatus,
    MemberRound,
    Objection,
    ObjectionState,
    RoundBranch,
    RoundState,
    SelfState,
)
from fivestar.member_rounds.notice import _flush_or_conflict, member_level_text, period_label
from fivestar.member_rounds.opening import previous_period
from fivestar.member_rounds.workflow import BRANCH_TRANSITIONS, refusal
from fivestar.orgs.models import Organisation
from fivestar.people.models import Member
from fivestar.rules import RuleSet, member_period
from fivestar.tenants.models import RuleSetVersion, Tenant
from fivestar.tenants.services import current_rules, version_rules
from fivestar.timekeeping import clock

STEPS = tuple(BranchStep)
NOT_RATED = -1  # a bucket of the level distribution: 不予评星
UNSCORED = -2  # not scored yet
RETURN_REASON_MAX = 2000


def round_state_label(state: RoundState) -> str:
    return _("进行中") if state is RoundState.OPEN else _("已结束")


def self_state_label(state: SelfState) -> str:
    return {
        SelfState.PENDING: _("未填写"),
        SelfState.DRAFT: _("草稿"),
        SelfState.SUBMITTED: _("已提交"),
        SelfState.RETURNED: _("已退回"),
    }[state]


def objection_state_label(state: ObjectionState) -> str:
    return {
        ObjectionState.OPEN: _("待答复"),
        ObjectionState.UPHELD: _("已采纳"),
        ObjectionState.DISMISSED: _("不予采纳"),
    }[state]


# --- the rounds list ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundRow:
    round: MemberRound
    period: str
    steps: dict[BranchStep, int]  # branches in scope per step

    @property
    def branches(self) -> int:
        return sum(self.steps.values())


def rounds_overview(session: Session, principal: Principal) -> list[RoundRow]:
    """Every round, newest first, with how many of the principal's branches are at each step
    (two queries whatever the number of rounds and branches)."""
    rounds = list(session.scalars(select(MemberRound).order_by(MemberRound.period_start.desc())))
    counts: dict[int, dict[BranchStep, int]] = defaultdict(dict)
    if rounds:
        rows = session.execute(
            select(RoundBranch.round_id, RoundBranch.step, func.count())
            .join(Organisation, RoundBranch.branch_id == Organisation.id)
            .where(org_scope(principal, Action.ROUND_VIEW))
            .group_by(RoundBranch.round_id, RoundBranch.step)
        )
        for round_id, step, count in rows:
            counts[round_id][step] = int(count)
    return [
        RoundRow(r, period_label(r.period_key), {step: counts[r.id].get(step, 0) for step in STEPS}) for r in rounds
    ]


def openable_periods(session: Session, tenant: Tenant, keep: int = 4) -> list[tuple[str, str]]:
    """(key, label) of the latest ended periods that have no round yet, the one just past first."""
    version = current_rules(session, tenant)
    if version is None:
        return []
    rules = version_rules(version)
    period = previous_period(rules, clock.today_in(tenant.timezone))
    keys = []
    for _i in range(keep):
        keys.append(period)
        period = member_period(rules, period.start - dt.timedelta(days=1))
    wanted = [p.key for p in keys]
    taken = set(session.scalars(select(MemberRound.period_key).where(MemberRound.period_key.in_(wanted))))
    return [(p.key, period_label(p.key)) for p in keys if p.key not in taken]


def my_round_branches(session: Session, principal: Principal) -> list[tuple[RoundBranch, MemberRound]]:
    """The open rounds' branches this person leads as secretary or branch committee member (for the
    "my branch" shortcut; tenant-wide roles get no shortcut list of every branch)."""
    paths = principal.scoped_paths(Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE)
    if not paths:
        return []
    rows = session.execute(
        select(RoundBranch, MemberRound)
        .join(Organisation, RoundBranch.branch_id == Organisation.id)
        .join(MemberRound, RoundBranch.round_id == MemberRound.id)
        .where(Organisation.path.in_(paths), MemberRound.state == RoundState.OPEN)
        .options(contains_eager(RoundBranch.branch))
        .order_by(MemberRound.period_start.desc(), Organisation.name)
    )
    return [(rb, mr) for rb, mr in rows]


# --- one round: progress, distribution, five-star lists ---------------------------------------------


@dataclass(frozen=True)
class BranchProgress:
    round_branch: RoundBranch  # with `branch` loaded
    parent_name: str
    members: int
    self_submitted: int
    scored: int
    objections_open: int
    objections_answered: int

    @property
    def branch_name(self) -> str:
        return self.round_branch.branch.name


def branch_progress(session: Session, principal: Principal, member_round: MemberRound) -> list[BranchProgress]:
    """Every branch of the round in the principal's scope with its counts, in one query."""
    active = Evaluation.status == EvaluationStatus.ACTIVE
    evaluations = (
        select(
            Evaluation.round_branch_id.label("round_branch_id"),
            func.count().filter(active).label("members"),
            func.count().filter(and_(active, Evaluation.self_state == SelfState.SUBMITTED)).label("self_submitted"),
            func.count()
            .filter(and_(active, or_(Evaluation.total.is_not(None), Evaluation.disqualifier.is_not(None))))
            .label("scored"),
        )
        .where(Evaluation.round_id == member_round.id)
        .group_by(Evaluation.round_branch_id)
        .subquery()
    )
    objections = (
        select(
            Objection.round_branch_id.label("round_branch_id"),
            func.count().filter(Objection.state == ObjectionState.OPEN).label("open"),
            func.count().filter(Objection.state != ObjectionState.OPEN).label("answered"),
        )
        .where(Objection.round_branch_id.in_(select(RoundBranch.id).where(RoundBranch.round_id == member_round.id)))
        .group_by(Objection.round_branch_id)
        .subquery()
    )
    parent = aliased(Organisation)
    rows: Any = session.execute(
        select(
            RoundBranch,
            parent.name,
            evaluations.c.members,
            evaluations.c.self_submitted,
            evaluations.c.scored,
            objections.c.open,
            objections.c.answered,
        )
        .join(Organisation, RoundBranch.branch_id == Organisation.id)
        .outerjoin(parent, Organisation.parent_id == parent.id)
        .outerjoin(evaluations, evaluations.c.round_branch_id == RoundBranch.id)
        .outerjoin(objections, objections.c.round_branch_id == RoundBranch.id)
        .where(RoundBranch.round_id == member_round.id, org_scope(principal, Action.ROUND_VIEW))
        .options(contains_eager(RoundBranch.branch))
        .order_by(parent.sort_order, parent.name, Organisation.sort_order, Organisation.code)
    )
    return [
        BranchProgress(
            round_branch=rb,
            parent_name=parent_name or "",
            members=int(members or 0),
            self_submitted=int(submitted or 0),
            scored=int(scored or 0),
            objections_open=int(open_ or 0),
            objections_answered=int(answered or 0),
        )
        for rb, parent_name, members, submitted, scored, open_, answered in rows
    ]


@dataclass
class Distribution:
    """Counts per level bucket (a level, NOT_RATED or UNSCORED) per round branch, and in total."""

    columns: list[tuple[int, str]]  # (bucket, label), highest level first
    by_branch: dict[int, dict[int, int]] = field(default_factory=dict)
    total: dict[int, int] = field(default_factory=dict)

    def count(self, round_branch_id: int, bucket: int) -> int:
        return self.by_branch.get(round_branch_id, {}).get(bucket, 0)


def level_distribution(
    session: Session, principal: Principal, member_round: MemberRound, rules: RuleSet
) -> Distribution:
    """How many active members of each branch are at each level, 不予评星 or not scored (one query)."""
    bucket = case(
        (or_(Evaluation.disqualifier.is_not(None), Evaluation.rated.is_(False)), NOT_RATED),
        (Evaluation.level.is_(None), UNSCORED),
        else_=Evaluation.level,
    ).label("bucket")
    rows: Any = session.execute(
        select(Evaluation.round_branch_id, bucket, func.count())
        .join(Organisation, Evaluation.branch_id == Organisation.id)
        .where(
            Evaluation.round_id == member_round.id,
            Evaluation.status == EvaluationStatus.ACTIVE,
            org_scope(principal, Action.ROUND_VIEW),
        )
        .group_by(Evaluation.round_branch_id, bucket)
    )
    result = Distribution(columns=[])
    seen: set[int] = set()
    for round_branch_id, key, count in rows:
        key = int(key)
        seen.add(key)
        result.by_branch.setdefault(round_branch_id, {})[key] = int(count)
        result.total[key] = result.total.get(key, 0) + int(count)
    bands = sorted({band.level for band in rules.member.stars.bands}, reverse=True)
    levels = bands + ([0] if 0 not in bands and (0 in seen or min(b.min for b in rules.member.stars.bands) > 0) else [])
    levels += sorted((k for k in seen if k >= 0 and k not in levels), reverse=True)
    below = rules.member.below_label
    result.columns = [(level, member_level_text(level, True, None, below)) for level in levels]
    result.columns.append((NOT_RATED, member_level_text(None, False, None, below)))
    if UNSCORED in seen:
        result.columns.append((UNSCORED, _("未评定")))
    return result


@dataclass(frozen=True)
class FiveStarRow:
    round_branch_id: int
    member_no: str
    name: str
    branch_name: str
    parent_name: str
    total: Decimal | None


def five_star_rows(
    session: Session, principal: Principal, member_round: MemberRound, round_branch_id: int | None = None
) -> list[FiveStarRow]:
    """五星党员 of the branches that reported (finalised), in one query: the tenant's list, or one
    branch's with `round_branch_id`."""
    parent = aliased(Organisation)
    stmt = (
        select(
            Evaluation.round_branch_id,
            Member.member_no,
            Member.name,
            Organisation.name.label("branch_name"),
            parent.name.label("parent_name"),
            Evaluation.total,
        )
        .join(Member, Evaluation.member_id == Member.id)
        .join(RoundBranch, Evaluation.round_branch_id == RoundBranch.id)
        .join(Organisation, Evaluation.branch_id == Organisation.id)
        .outerjoin(parent, Organisation.parent_id == parent.id)
        .where(
            Evaluation.round_id == member_round.id,
            Evaluation.status == EvaluationStatus.ACTIVE,
            Evaluation.level == 5,
            Evaluation.disqualifier.is_(None),
            RoundBranch.step == BranchStep.FINALISED,
            org_scope(principal, Action.ROUND_VIEW),
        )
        .order_by(parent.sort_order, parent.name, Organisation.sort_order, Organisation.code, Member.member_no)
    )
    if round_branch_id is not None:
        stmt = stmt.where(Evaluation.round_branch_id == round_branch_id)
    return [
        FiveStarRow(row.round_branch_id, row.member_no, row.name, row.branch_name, row.parent_name or "", row.total)
        for row in session.execute(stmt)
    ]


def rules_version_number(session: Session, member_round: MemberRound) -> int | None:
    return session.scalar(select(RuleSetVersion.version).where(RuleSetVersion.id == member_round.rules_version_id))


# --- returning a branch's results --------------------------------------------------------------------


def return_branch(
    session: Session, round_branch: RoundBranch, *, reason: str | None, version: int | str | None
) -> RoundBranch:
    """The committee sends a branch's results back to 支部审评 (from 公示 or after 上报), with a reason
    the branch reads on its dashboard. The public page answers "not found" while the branch
    reviews again; when it submits again the same link shows the new notice period."""
    member_round = core.load_round(session, round_branch.round_id)
    core.ensure_open(member_round)
    core.check_version(round_branch, version)
    text = (reason or "").strip()
    if BRANCH_TRANSITIONS["return"].needs_reason and not text:
        raise ServiceError(_("请填写退回原因"), field="reason")
    if len(text) > RETURN_REASON_MAX:
        raise ServiceError(_("退回原因最长 %(n)d 个字", n=RETURN_REASON_MAX), field="reason")
    facts = core.facts_for(session, member_round, round_branch)
    why = refusal("return", facts)
    if why is not None:
        raise ServiceError(why)
    before = audit.snapshot(
        round_branch, ["step", "finalised_at", "notice_started_at", "notice_ends_at", "return_reason"]
    )
    round_branch.step = BranchStep.REVIEW
    round_branch.return_reason = text
    round_branch.returned_at = clock.now()
    round_branch.finalised_at = None
    _flush_or_conflict(session)
    audit.record(
        session,
        "round_branch.return",
        round_branch,
        before=before,
        after={"step": round_branch.step, "returned_at": round_branch.returned_at, "return_reason": text},
        reason=text,
    )
    return round_branch


# --- flags: four low periods in a row ------------------------------------------------------------------


def flag_threshold(rules: RuleSet | None) -> int:
    """The level at or below which a member counts as low (the rules' follow-up threshold; 2)."""
    if rules is None:
        return 2
    follow = rules.member.follow_up
    for value in (follow.talk_at_or_below, follow.mentor_at_or_below):
        if value is not None:
            return int(value)
    return 2


@dataclass
class FlaggedMember:
    member_id: int
    member_no: str
    name: str
    branch_name: str
    periods: list[tuple[str, str]] = field(default_factory=list)  # (period label, level), newest first


FLAG_RUN = 4


def flagged_members(session: Session, principal: Principal, threshold: int, below_label: str) -> list[FlaggedMember]:
    """Members not rated or at `threshold` stars or below in each of the last four rounds they were
    part of (counting rounds that closed and branches that reported), in one SQL statement.

    A window function numbers each member's counted evaluations from the newest; the last four are
    kept, and a second window counts how many there are and how many are low. Only flags: nothing
    happens to a member because of this list — people decide.
    """
    tenant_id = principal.tenant_id
    low = case(
        (or_(Evaluation.disqualifier.is_not(None), Evaluation.rated.is_(False), Evaluation.level.is_(None)), 1),
        (Evaluation.level <= threshold, 1),
        else_=0,
    )
    ranked = (
        select(
            Evaluation.member_id.label("member_id"),
            Evaluation.level.label("level"),
            Evaluation.rated.label("rated"),
            Evaluation.disqualifier.label("disqualifier"),
            MemberRound.period_key.label("period_key"),
            MemberRound.period_start.label("period_start"),
            low.label("low"),
            func.row_number()
            .over(partition_by=Evaluation.member_id, order_by=(MemberRound.period_start.desc(), MemberRound.id.desc()))
            .label("rn"),
        )
        .join(MemberRound, Evaluation.round_id == MemberRound.id)
        .join(RoundBranch, Evaluation.round_branch_id == RoundBranch.id)
        .where(
            Evaluation.tenant_id == tenant_id,
            Evaluation.status == EvaluationStatus.ACTIVE,
            or_(MemberRound.state == RoundState.CLOSED, RoundBranch.step == BranchStep.FINALISED),
        )
        .subquery("ranked")
    )
    last = (
        select(
            ranked,
            func.count().over(partition_by=ranked.c.member_id).label("n"),
            func.sum(ranked.c.low).over(partition_by=ranked.c.member_id).label("lows"),
        )
        .where(ranked.c.rn <= FLAG_RUN)
        .subquery("last_four")
    )
    rows = session.execute(
        select(
            last.c.member_id,
            last.c.period_key,
            last.c.level,
            last.c.rated,
            last.c.disqualifier,
            Member.member_no,
            Member.name,
            Organisation.name.label("branch_name"),
        )
        .join(Member, Member.id == last.c.member_id)
        .join(Organisation, Member.branch_id == Organisation.id)
        .where(
            last.c.n == FLAG_RUN,
            last.c.lows == FLAG_RUN,
            Member.status == MemberStatus.ACTIVE,
            org_scope(principal, Action.ROUND_VIEW),
        )
        .order_by(Organisation.sort_order, Organisation.code, Member.member_no, last.c.member_id, last.c.rn)
    )
    flagged: dict[int, FlaggedMember] = {}
    for row in rows:
        entry = flagged.get(row.member_id)
        if entry is None:
            entry = flagged[row.member_id] = FlaggedMember(row.member_id, row.member_no, row.name, row.branch_name)
        entry.periods.append(
            (period_label(row.period_key), member_level_text(row.level, row.rated, row.disqualifier, below_label))
        )
    return list(flagged.values())


def current_rule_set(session: Session, tenant: Tenant) -> RuleSet | None:
    version = current_rules(session, tenant)
    return version_rules(version) if version is not None else None


__all__ = [
    "NOT_RATED",
    "UNSCORED",
    "BranchProgress",
    "Distribution",
    "FiveStarRow",
    "FlaggedMember",
    "RoundRow",
    "branch_progress",
    "five_star_rows",
    "flag_threshold",
    "flagged_members",
    "level_distribution",
    "my_round_branches",
    "openable_periods",
    "return_branch",
    "rounds_overview",
]
