"""Opening a member round: one round row, then every rated branch and every active member of them
with two `INSERT … SELECT` statements (no row-by-row work, whatever the tenant's size).

The round pins the tenant's current rule-set version; its step deadlines come from the rules,
counted in the tenant's time zone with the Chinese working-day calendar where the rules say so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.enums import MemberStatus, OrgKind
from fivestar.errors import ConflictError, ServiceError
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
from fivestar.rules import RuleSet
from fivestar.rules.schedule import Period, member_period, member_round_deadlines
from fivestar.tenants.models import Tenant
from fivestar.tenants.services import current_rules, version_rules
from fivestar.timekeeping import clock

# Branch kinds whose members are rated (retirees' branches are not).
RATED_BRANCH_KINDS = (OrgKind.BRANCH,)


@dataclass(frozen=True)
class OpenedRound:
    round: MemberRound
    branches: int
    members: int


def previous_period(rules: RuleSet, today: dt.date) -> Period:
    """The latest period that has ended by `today`: a round rates the period just past."""
    current = member_period(rules, today)
    return member_period(rules, current.start - dt.timedelta(days=1))


def period_by_key(rules: RuleSet, key: str) -> Period:
    """The period named `key` (2026Q3, 2026H1, 2026) under the rules' cadence."""
    key = key.strip().upper()
    try:
        year = int(key[:4])
        if rules.member.cadence == "quarter" and key[4:5] == "Q":
            month = (int(key[5:]) - 1) * 3 + 1
        elif rules.member.cadence == "half_year" and key[4:5] == "H":
            month = (int(key[5:]) - 1) * 6 + 1
        elif rules.member.cadence == "year" and len(key) == 4:
            month = 1
        else:
            raise ValueError(key)
        period = member_period(rules, dt.date(year, month, 1))
    except (ValueError, IndexError):
        raise ServiceError(_("评定期次“%(key)s”格式不对，应如 2026Q3（季度）、2026H1（半年）或 2026（年度）", key=key),
                           field="period") from None
    if period.key != key:
        raise ServiceError(_("评定期次“%(key)s”格式不对", key=key), field="period")
    return period


def open_round(session: Session, tenant: Tenant, *, period_key: str | None = None) -> OpenedRound:
    """Open the member round for a period (default: the one just past) for every rated branch.

    Refuses a period that has not ended yet, and a period that already has a round (the database's
    unique key on (tenant, period) makes a second opening impossible even when two race).
    """
    version = current_rules(session, tenant)
    if version is None:
        raise ServiceError(_("本单位还没有评定规则"))
    rules = version_rules(version)
    timezone = tenant.timezone
    today = clock.today_in(timezone)
    period = period_by_key(rules, period_key) if period_key else previous_period(rules, today)
    if period.end >= today:
        raise ServiceError(
            _("%(key)s 期尚未结束（%(end)s 结束），结束后才能开启评定", key=period.key, end=period.end.isoformat()),
            field="period",
        )
    if session.scalar(select(MemberRound.id).where(MemberRound.period_key == period.key)) is not None:
        raise ConflictError(_("%(key)s 期党员评定已经开启", key=period.key), field="period")

    deadlines = member_round_deadlines(rules, today, is_working_day=clock.is_working_day)
    member_round = MemberRound(
        tenant_id=tenant.id,
        period_key=period.key,
        period_start=period.start,
        period_end=period.end,
        rules_version_id=version.id,
        state=RoundState.OPEN,
        opened_at=clock.now(),
        opened_by=audit.current_actor().name,
        self_due_at=clock.end_of_day(deadlines.self_assessment, timezone),
        joint_due_at=clock.end_of_day(deadlines.joint, timezone),
        review_due_at=clock.end_of_day(deadlines.review, timezone),
        report_due_at=clock.end_of_day(deadlines.report, timezone) if deadlines.report else None,
    )
    session.add(member_round)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(_("%(key)s 期党员评定已经开启", key=period.key), field="period") from None

    branches = _insert_branches(session, tenant.id, member_round.id)
    members = _insert_evaluations(session, tenant.id, member_round.id)
    audit.record(
        session,
        "member_round.open",
        member_round,
        after={
            "period": period.key,
            "rules_version": version.version,
            "branches": branches,
            "members": members,
            "self_due_at": member_round.self_due_at,
            "joint_due_at": member_round.joint_due_at,
            "review_due_at": member_round.review_due_at,
        },
    )
    return OpenedRound(member_round, branches, members)


def _insert_branches(session: Session, tenant_id: int, round_id: int) -> int:
    source = select(
        Organisation.tenant_id,
        literal(round_id).label("round_id"),
        Organisation.id,
        literal(BranchStep.SELF.value).label("step"),
        literal(1).label("version"),
    ).where(
        Organisation.tenant_id == tenant_id,
        Organisation.kind.in_(RATED_BRANCH_KINDS),
        Organisation.active.is_(True),
    )
    session.execute(
        insert(RoundBranch).from_select(["tenant_id", "round_id", "branch_id", "step", "version"], source)
    )
    return int(session.scalar(select(func.count()).where(RoundBranch.round_id == round_id)) or 0)


def _insert_evaluations(session: Session, tenant_id: int, round_id: int) -> int:
    source = (
        select(
            Member.tenant_id,
            literal(round_id).label("round_id"),
            RoundBranch.id,
            Member.id,
            Member.branch_id,
            literal(EvaluationStatus.ACTIVE.value).label("status"),
            literal(False).label("joined_during_round"),
            literal(SelfState.PENDING.value).label("self_state"),
            literal(1).label("version"),
        )
        .join(RoundBranch, (RoundBranch.branch_id == Member.branch_id) & (RoundBranch.round_id == round_id))
        .where(Member.tenant_id == tenant_id, Member.status == MemberStatus.ACTIVE)
    )
    session.execute(
        insert(Evaluation).from_select(
            [
                "tenant_id",
                "round_id",
                "round_branch_id",
                "member_id",
                "branch_id",
                "status",
                "joined_during_round",
                "self_state",
                "version",
            ],
            source,
        )
    )
    return int(session.scalar(select(func.count()).where(Evaluation.round_id == round_id)) or 0)
